"""The on-chain ballot: a full ballot built the way the resident client builds it, its canonical
encoding and hash, and rejection of any change to the signature."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from veche_core import blind_rsa, plaintext, sealing, token
from veche_core.ballot import Ballot, ballot_hash, decode_ballot, encode_ballot
from veche_core.errors import EncodingError, SignatureError
from veche_core.typed_data import poll_book_domain

CHAIN_ID = 31337
POLL_BOOK = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DOMAIN = poll_book_domain(CHAIN_ID, POLL_BOOK)
TOKEN_KEY = bytes.fromhex("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")
TOKEN = Account.from_key(TOKEN_KEY).address
ELECTION = sealing.generate_election_keypair()


@pytest.fixture(scope="module")
def ballot(issuer_key):
    public = issuer_key.public_key
    request = token.request_token(public, CHAIN_ID, POLL_BOOK, 7, 3, TOKEN)
    credential = token.finish_token(public, request, blind_rsa.blind_sign(issuer_key, request.blinded_msg))
    ciphertext = sealing.seal(ELECTION.public_key, plaintext.encode_choice([2], 5, 1))
    return Ballot(7, TOKEN, 1, 3, ciphertext, credential).sign(TOKEN_KEY, DOMAIN)


def test_verifier_path(ballot, issuer_key):
    """What a verifier does per ballot (checks 2, 3 and 8)."""
    token.verify_token_signature(
        issuer_key.public_key.encode(),
        CHAIN_ID,
        POLL_BOOK,
        ballot.poll_id,
        ballot.stratum,
        ballot.token,
        ballot.token_credential,
    )
    assert ballot.signer(DOMAIN) == TOKEN
    ballot.verify_signature(DOMAIN)
    opened = sealing.open_sealed(ELECTION.secret_key, ballot.ciphertext)
    assert plaintext.decode_choice(opened, 5, 1) == (2,)


def test_hash_is_keccak_of_abi_encode(ballot):
    expected = keccak(
        abi_encode(
            ["uint256", "address", "uint64", "uint32", "bytes", "bytes", "bytes"],
            [7, TOKEN, 1, 3, ballot.ciphertext, ballot.token_credential, ballot.signature],
        )
    )
    assert ballot.hash == ballot_hash(ballot) == expected


def test_encoding_round_trip_and_strictness(ballot):
    data = encode_ballot(ballot)
    assert decode_ballot(data) == ballot
    with pytest.raises(EncodingError):
        decode_ballot(data[:-1])
    with pytest.raises(EncodingError):
        decode_ballot(data + bytes(32))  # trailing word: not canonical
    dirty = bytearray(data)
    dirty[32] = 0x01  # dirty padding in the address word
    with pytest.raises(EncodingError):
        decode_ballot(bytes(dirty))


def test_sign_with_the_wrong_key_is_refused(ballot):
    with pytest.raises(SignatureError):
        ballot.sign(bytes.fromhex("11" * 32), DOMAIN)


def test_other_domain_or_field_does_not_recover_the_token(ballot):
    from dataclasses import replace

    assert ballot.signer(poll_book_domain(CHAIN_ID + 1, POLL_BOOK)) != TOKEN
    for changed in (
        replace(ballot, sequence=2),
        replace(ballot, poll_id=8),
        replace(ballot, stratum=4),
        replace(ballot, ciphertext=ballot.ciphertext[:-1]),
        replace(ballot, token_credential=ballot.token_credential[:-1]),
    ):
        with pytest.raises(SignatureError):
            changed.verify_signature(DOMAIN)


@settings(max_examples=40)
@given(data=st.data())
def test_any_bit_flip_in_the_signature_is_rejected(ballot, data):
    bit = data.draw(st.integers(0, 65 * 8 - 1))
    flipped = bytearray(ballot.signature)
    flipped[bit // 8] ^= 1 << (bit % 8)
    from dataclasses import replace

    tampered = replace(ballot, signature=bytes(flipped))
    try:
        signer = tampered.signer(DOMAIN)
    except SignatureError:
        return
    assert signer != TOKEN


@settings(max_examples=40)
@given(
    poll_id=st.integers(0, 2**256 - 1),
    token_address=st.binary(min_size=20, max_size=20),
    sequence=st.integers(0, 2**64 - 1),
    stratum=st.integers(0, 2**32 - 1),
    ciphertext=st.binary(max_size=100),
    credential=st.binary(max_size=300),
    signature=st.binary(max_size=70),
)
def test_encode_decode_round_trip(poll_id, token_address, sequence, stratum, ciphertext, credential, signature):
    ballot = Ballot(poll_id, token_address, sequence, stratum, ciphertext, credential, signature)
    assert decode_ballot(encode_ballot(ballot)) == ballot


def test_field_ranges():
    with pytest.raises(EncodingError):
        Ballot(7, TOKEN, 2**64, 3, b"", b"")
    with pytest.raises(EncodingError):
        Ballot(7, TOKEN, 1, 2**32, b"", b"")
    with pytest.raises(EncodingError):
        Ballot(7, b"short", 1, 3, b"", b"")

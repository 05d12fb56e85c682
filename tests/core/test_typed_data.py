"""EIP-712: the standard's Mail example through eth-account (so our use of it is right), then
every Veche type's digest equal to eth-account's, and recover_signer's rejections."""

from __future__ import annotations

import pytest
from core_vectors import load_vectors
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from veche_core import typed_data
from veche_core.errors import SignatureError
from veche_core.typed_data import (
    city_points_domain,
    eip712_message,
    poll_book_domain,
    recover_signer,
    sign_digest,
)

MAIL = load_vectors("eip712-example.json")
COW_KEY = keccak(b"cow")
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

POLL_BOOK = poll_book_domain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
CITY_POINTS = city_points_domain(31337, "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")
RESIDENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_mail_example():
    signable = encode_typed_data(full_message=MAIL["typed_data"])
    assert signable.header.hex() == MAIL["domain_separator"]
    assert signable.body.hex() == MAIL["struct_hash"]
    assert _hash_eip191_message(signable).hex() == MAIL["digest"]
    signed = Account.sign_message(signable, COW_KEY)
    assert (signed.v, signed.r, signed.s) == (MAIL["v"], int(MAIL["r"], 16), int(MAIL["s"], 16))
    assert Account.from_key(COW_KEY).address == MAIL["signer"]
    # and our signer/recoverer agree with eth-account on it
    digest = bytes.fromhex(MAIL["digest"])
    assert sign_digest(COW_KEY, digest) == bytes(signed.signature)
    assert recover_signer(digest, bytes(signed.signature)) == MAIL["signer"]


def _eth_account_digest(domain, primary_type, message):
    return _hash_eip191_message(encode_typed_data(full_message=eip712_message(domain, primary_type, message)))


CIPHERTEXT = bytes(range(51))
CREDENTIAL = bytes(289)


def test_ballot_digest():
    message = {
        "pollId": 7,
        "token": RESIDENT,
        "sequence": 3,
        "stratum": 12,
        "ciphertextHash": keccak(CIPHERTEXT),
        "tokenSignatureHash": keccak(CREDENTIAL),
    }
    assert typed_data.ballot_digest(POLL_BOOK, 7, RESIDENT, 3, 12, CIPHERTEXT, CREDENTIAL) == _eth_account_digest(
        POLL_BOOK, "Ballot", message
    )


def test_issuance_request_digest():
    blinded = bytes(range(256))
    message = {"pollId": 7, "stratum": 12, "blindedMessageHash": keccak(blinded), "deadline": 99}
    assert typed_data.issuance_request_digest(POLL_BOOK, 7, 12, blinded, 99) == _eth_account_digest(
        POLL_BOOK, "IssuanceRequest", message
    )


def test_key_share_digest():
    share = bytes(44)
    message = {"pollId": 7, "index": 2, "shareHash": keccak(share)}
    assert typed_data.key_share_digest(POLL_BOOK, 7, 2, share) == _eth_account_digest(POLL_BOOK, "KeyShare", message)


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=20, max_size=20), st.binary(min_size=33, max_size=33), st.integers(0, 2**64 - 1))
def test_trustee_key_digest(trustee, key, serial):
    address = "0x" + trustee.hex()
    message = {"trustee": address, "keyHash": keccak(key), "serial": serial}
    expected = _eth_account_digest(POLL_BOOK, "TrusteeKey", message)
    assert typed_data.trustee_key_digest(POLL_BOOK, address, key, serial) == expected
    assert typed_data.trustee_key_digest(POLL_BOOK, trustee, key, serial) == expected


@settings(max_examples=50, deadline=None)
@given(
    st.integers(0, 2**256 - 1),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=800),
)
def test_ceremony_message_digest(poll_id, attempt, index, kind, payload):
    message = {"pollId": poll_id, "attempt": attempt, "index": index, "kind": kind, "payloadHash": keccak(payload)}
    assert typed_data.ceremony_message_digest(POLL_BOOK, poll_id, attempt, index, kind, payload) == (
        _eth_account_digest(POLL_BOOK, "CeremonyMessage", message)
    )


def test_ceremony_digests_refuse_out_of_range_fields():
    with pytest.raises(ValueError):
        typed_data.ceremony_message_digest(POLL_BOOK, 1, 256, 0, 1, b"")
    with pytest.raises(ValueError):
        typed_data.trustee_key_digest(POLL_BOOK, RESIDENT, bytes(33), 2**64)


def test_redemption_digest():
    message = {"resident": RESIDENT, "rewardId": 5, "nonce": 1, "deadline": 2**40}
    assert typed_data.redemption_digest(CITY_POINTS, RESIDENT, 5, 1, 2**40) == _eth_account_digest(
        CITY_POINTS, "Redemption", message
    )


def test_donation_digest():
    message = {"resident": RESIDENT, "charityId": 4, "amount": 50, "nonce": 2, "deadline": 9}
    assert typed_data.donation_digest(CITY_POINTS, RESIDENT, 4, 50, 2, 9) == _eth_account_digest(
        CITY_POINTS, "Donation", message
    )


@settings(max_examples=25)
@given(
    poll_id=st.integers(0, 2**256 - 1),
    sequence=st.integers(0, 2**64 - 1),
    stratum=st.integers(0, 2**32 - 1),
    token=st.binary(min_size=20, max_size=20),
    ciphertext=st.binary(max_size=80),
    chain_id=st.integers(1, 2**64),
)
def test_ballot_digest_matches_eth_account(poll_id, sequence, stratum, token, ciphertext, chain_id):
    domain = poll_book_domain(chain_id, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
    message = {
        "pollId": poll_id,
        "token": "0x" + token.hex(),
        "sequence": sequence,
        "stratum": stratum,
        "ciphertextHash": keccak(ciphertext),
        "tokenSignatureHash": keccak(CREDENTIAL),
    }
    assert typed_data.ballot_digest(
        domain, poll_id, token, sequence, stratum, ciphertext, CREDENTIAL
    ) == _eth_account_digest(domain, "Ballot", message)


def test_domains_differ():
    assert POLL_BOOK.separator != CITY_POINTS.separator
    assert poll_book_domain(1, POLL_BOOK.verifying_contract).separator != POLL_BOOK.separator


# --- recover_signer ---------------------------------------------------------------------------

KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
DIGEST = keccak(b"veche")


def test_sign_and_recover():
    signature = sign_digest(KEY, DIGEST)
    assert len(signature) == 65 and signature[64] in (27, 28)
    assert recover_signer(DIGEST, signature) == Account.from_key(KEY).address


def test_high_s_is_rejected():
    signature = sign_digest(KEY, DIGEST)
    s = int.from_bytes(signature[32:64], "big")
    malleable = signature[:32] + (N - s).to_bytes(32, "big") + bytes([55 - signature[64]])
    with pytest.raises(SignatureError, match="upper half"):
        recover_signer(DIGEST, malleable)


@pytest.mark.parametrize("v", [0, 1, 26, 29, 255])
def test_bad_v_is_rejected(v):
    signature = sign_digest(KEY, DIGEST)
    with pytest.raises(SignatureError, match="v must be"):
        recover_signer(DIGEST, signature[:64] + bytes([v]))


@pytest.mark.parametrize("length", [0, 64, 66])
def test_wrong_length_is_rejected(length):
    with pytest.raises(SignatureError, match="65 bytes"):
        recover_signer(DIGEST, (sign_digest(KEY, DIGEST) * 2)[:length])


def test_zero_and_out_of_range_r_s_are_rejected():
    signature = sign_digest(KEY, DIGEST)
    for bad in (
        bytes(32) + signature[32:],
        signature[:32] + bytes(32) + signature[64:],
        N.to_bytes(32, "big") + signature[32:],
    ):
        with pytest.raises(SignatureError):
            recover_signer(DIGEST, bad)


@settings(max_examples=200)
@given(key=st.binary(min_size=32, max_size=32), digest=st.binary(min_size=32, max_size=32))
def test_signatures_are_always_low_s(key, digest):
    scalar = int.from_bytes(key, "big")
    if not 0 < scalar < N:
        return
    signature = sign_digest(key, digest)
    assert int.from_bytes(signature[32:64], "big") <= N // 2
    assert recover_signer(digest, signature) == Account.from_key(key).address


def test_the_issuance_digest_from_the_blinded_message_or_its_hash_is_one():
    from veche_core._keccak import keccak
    from veche_core.typed_data import issuance_request_digest, issuance_request_hash_digest, poll_book_domain

    domain = poll_book_domain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
    blinded = bytes(range(256))
    assert issuance_request_digest(domain, 4, 1, blinded, 99) == issuance_request_hash_digest(
        domain, 4, 1, keccak(blinded), 99
    )

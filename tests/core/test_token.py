"""Ballot-token message and credential: layout, round trips, the resident/issuer flow, and
rejection of any change to what was signed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veche_core import blind_rsa, token
from veche_core.errors import EncodingError, SignatureError

CHAIN_ID = 31337
POLL_BOOK = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
TOKEN = bytes.fromhex("70997970c51812dc3a010c7d01b50e0d17dc79c8")
POLL_ID = 7
STRATUM = 12


def issue(issuer_key, poll_id=POLL_ID, stratum=STRATUM, token_address=TOKEN):
    """The whole issuance: resident blinds, issuer signs blindly, resident unblinds."""
    public = issuer_key.public_key
    request = token.request_token(public, CHAIN_ID, POLL_BOOK, poll_id, stratum, token_address)
    blind_sig = blind_rsa.blind_sign(issuer_key, request.blinded_msg)
    return token.finish_token(public, request, blind_sig)


def test_message_layout():
    message = token.token_message(CHAIN_ID, POLL_BOOK, POLL_ID, STRATUM, TOKEN)
    assert len(message) == token.TOKEN_MESSAGE_LENGTH == 127
    assert message[:18] == b"veche/ballot-token" and message[18] == 0x01
    assert message[19:51] == CHAIN_ID.to_bytes(32, "big")
    assert message[51:71] == POLL_BOOK
    assert message[71:103] == POLL_ID.to_bytes(32, "big")
    assert message[103:107] == STRATUM.to_bytes(4, "big")
    assert message[107:] == TOKEN
    # hex-string addresses give the same bytes
    assert message == token.token_message(
        CHAIN_ID,
        "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        POLL_ID,
        STRATUM,
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    )


def test_issue_and_verify(issuer_key):
    credential = issue(issuer_key)
    assert len(credential) == token.credential_length(issuer_key.public_key) == 1 + 32 + 256
    token.verify_token_signature(issuer_key.public_key, CHAIN_ID, POLL_BOOK, POLL_ID, STRATUM, TOKEN, credential)
    # the encoded issuer key (as stored on chain) works as well
    token.verify_token_signature(
        issuer_key.public_key.encode(), CHAIN_ID, POLL_BOOK, POLL_ID, STRATUM, TOKEN, credential
    )


@pytest.mark.parametrize(
    "field, value",
    [
        ("chain_id", CHAIN_ID + 1),
        ("poll_book", bytes(20)),
        ("poll_id", POLL_ID + 1),
        ("stratum", STRATUM + 1),
        ("token_address", bytes(20)),
    ],
)
def test_credential_is_bound_to_every_field(issuer_key, field, value):
    credential = issue(issuer_key)
    args = dict(
        chain_id=CHAIN_ID,
        poll_book=POLL_BOOK,
        poll_id=POLL_ID,
        stratum=STRATUM,
        token_address=TOKEN,
    )
    args[field] = value
    with pytest.raises(SignatureError):
        token.verify_token_signature(issuer_key.public_key, credential=credential, **args)


def test_wrong_issuer_key_and_wrong_variant(issuer_key, psszero_issuer_key):
    credential = issue(issuer_key)
    other = blind_rsa.generate_private_key().public_key
    with pytest.raises(SignatureError):
        token.verify_token_signature(other, CHAIN_ID, POLL_BOOK, POLL_ID, STRATUM, TOKEN, credential)
    with pytest.raises(SignatureError):
        token.verify_token_signature(
            psszero_issuer_key.public_key, CHAIN_ID, POLL_BOOK, POLL_ID, STRATUM, TOKEN, credential
        )


def test_malformed_credentials(issuer_key):
    public = issuer_key.public_key
    credential = issue(issuer_key)
    for bad in (b"", b"\x02" + credential[1:], credential[:-1], credential + b"\x00"):
        with pytest.raises(EncodingError):
            token.decode_token_credential(bad, public)
        with pytest.raises(SignatureError):
            token.verify_token_signature(public, CHAIN_ID, POLL_BOOK, POLL_ID, STRATUM, TOKEN, bad)
    with pytest.raises(SignatureError, match="does not decode"):
        token.verify_token_signature(b"\x01garbage", CHAIN_ID, POLL_BOOK, POLL_ID, STRATUM, TOKEN, credential)


def test_message_field_ranges():
    with pytest.raises(EncodingError):
        token.token_message(CHAIN_ID, POLL_BOOK, POLL_ID, 1 << 32, TOKEN)
    with pytest.raises(EncodingError):
        token.token_message(-1, POLL_BOOK, POLL_ID, STRATUM, TOKEN)
    with pytest.raises(EncodingError):
        token.token_message(CHAIN_ID, POLL_BOOK[:19], POLL_ID, STRATUM, TOKEN)
    with pytest.raises(EncodingError):
        token.token_message(CHAIN_ID, "0x1234", POLL_ID, STRATUM, TOKEN)


@settings(max_examples=50)
@given(
    chain_id=st.integers(0, 2**256 - 1),
    poll_book=st.binary(min_size=20, max_size=20),
    poll_id=st.integers(0, 2**256 - 1),
    stratum=st.integers(0, 2**32 - 1),
    token_address=st.binary(min_size=20, max_size=20),
)
def test_message_round_trip(chain_id, poll_book, poll_id, stratum, token_address):
    message = token.token_message(chain_id, poll_book, poll_id, stratum, token_address)
    assert len(message) == token.TOKEN_MESSAGE_LENGTH
    assert token.decode_token_message(message) == token.TokenMessage(
        chain_id, poll_book, poll_id, stratum, token_address
    )


@settings(max_examples=30)
@given(prefix=st.binary(min_size=32, max_size=32), signature=st.binary(min_size=256, max_size=256))
def test_credential_round_trip(issuer_key, prefix, signature):
    encoded = token.encode_token_credential(prefix, signature)
    assert token.decode_token_credential(encoded, issuer_key.public_key) == token.TokenCredential(prefix, signature)


@pytest.fixture(scope="module")
def credential(issuer_key):
    return issue(issuer_key)


@settings(max_examples=50)
@given(data=st.data())
def test_any_bit_flip_in_credential_or_message_is_rejected(issuer_key, credential, data):
    """Flips in the version byte, the 32-byte prefix, the signature, or the signed message."""
    target = data.draw(st.sampled_from(["credential", "message"]))
    if target == "credential":
        bit = data.draw(st.integers(0, len(credential) * 8 - 1))
        flipped = bytearray(credential)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(SignatureError):
            token.verify_token_signature(
                issuer_key.public_key, CHAIN_ID, POLL_BOOK, POLL_ID, STRATUM, TOKEN, bytes(flipped)
            )
    else:
        message = token.token_message(CHAIN_ID, POLL_BOOK, POLL_ID, STRATUM, TOKEN)
        bit = data.draw(st.integers(0, len(message) * 8 - 1))
        flipped = bytearray(message)
        flipped[bit // 8] ^= 1 << (bit % 8)
        decoded = token.decode_token_credential(credential, issuer_key.public_key)
        with pytest.raises(SignatureError):
            blind_rsa.verify(issuer_key.public_key, decoded.msg_prefix + bytes(flipped), decoded.signature)


def test_request_hides_secrets(issuer_key):
    request = token.request_token(issuer_key.public_key, CHAIN_ID, POLL_BOOK, POLL_ID, STRATUM, TOKEN)
    assert request.inv.hex() not in repr(request)
    assert len(request.msg_prefix) == 32

"""Sealed boxes: layout, round trips, and any bit flip or wrong key makes opening fail."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veche_core import sealing
from veche_core.errors import SealingError

ELECTION = sealing.generate_election_keypair()


def test_round_trip_and_layout():
    ciphertext = sealing.seal(ELECTION.public_key, b"\x01\x04")
    assert len(ciphertext) == sealing.sealed_length(2) == 50
    assert sealing.open_sealed(ELECTION.secret_key, ciphertext) == b"\x01\x04"
    assert sealing.seal(ELECTION.public_key, b"\x01\x04") != ciphertext  # randomised
    assert sealing.public_key_from_secret(ELECTION.secret_key) == ELECTION.public_key
    assert ELECTION.secret_key.hex() not in repr(ELECTION)


@settings(max_examples=30)
@given(plaintext=st.binary(max_size=64))
def test_round_trip_any_plaintext(plaintext):
    assert sealing.open_ballot(ELECTION.secret_key, sealing.seal_ballot(ELECTION.public_key, plaintext)) == plaintext


@settings(max_examples=60)
@given(plaintext=st.binary(min_size=1, max_size=34), data=st.data())
def test_any_bit_flip_is_rejected(plaintext, data):
    ciphertext = bytearray(sealing.seal(ELECTION.public_key, plaintext))
    bit = data.draw(st.integers(0, len(ciphertext) * 8 - 1))
    ciphertext[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(SealingError):
        sealing.open_sealed(ELECTION.secret_key, bytes(ciphertext))


def test_wrong_key_and_malformed_input():
    other = sealing.generate_keypair()
    ciphertext = sealing.seal(ELECTION.public_key, b"x")
    with pytest.raises(SealingError):
        sealing.open_sealed(other.secret_key, ciphertext)
    with pytest.raises(SealingError):
        sealing.open_sealed(ELECTION.secret_key, ciphertext[:47])
    with pytest.raises(SealingError):
        sealing.open_sealed(ELECTION.secret_key[:31], ciphertext)
    with pytest.raises(SealingError):
        sealing.seal(ELECTION.public_key[:31], b"x")
    with pytest.raises(SealingError):
        sealing.public_key_from_secret(b"short")


def test_trustee_share_sealing():
    trustee = sealing.generate_trustee_keypair()
    sealed = sealing.seal_share(trustee.public_key, b"share bytes")
    assert sealing.open_share(trustee.secret_key, sealed) == b"share bytes"
    with pytest.raises(SealingError):
        sealing.open_share(ELECTION.secret_key, sealed)

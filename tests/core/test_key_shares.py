"""SLIP-39 key shares: the 45 SLIP-39 vectors through our combine path, the share encoding, and
every way a release can fail (too few shares, corrupted share, wrong election key)."""

from __future__ import annotations

import random

import pytest
from core_vectors import load_vectors
from hypothesis import given, settings
from hypothesis import strategies as st
from shamir_mnemonic import Share

from veche_core import key_shares, sealing
from veche_core.errors import KeyShareError

SLIP39_VECTORS = load_vectors("slip39-vectors.json")


@pytest.mark.parametrize("case", SLIP39_VECTORS, ids=[c[0] for c in SLIP39_VECTORS])
def test_slip39_vector(case):
    description, mnemonics, secret_hex, _xprv = case
    if secret_hex:
        assert key_shares.combine_mnemonics(mnemonics, b"TREZOR") == bytes.fromhex(secret_hex)
    else:
        with pytest.raises(KeyShareError):
            key_shares.combine_mnemonics(mnemonics, b"TREZOR")


def test_slip39_vector_count():
    assert len(SLIP39_VECTORS) == 45


def _poll(threshold=3, count=5):
    election = sealing.generate_election_keypair()
    shares = key_shares.split_secret(election.secret_key, threshold, count)
    return election, shares


def test_split_and_combine():
    election, shares = _poll(3, 5)
    assert len(shares) == 5 and {len(s) for s in shares} == {44}
    assert [key_shares.share_info(s).index for s in shares] == [0, 1, 2, 3, 4]
    assert {key_shares.share_info(s).threshold for s in shares} == {3}
    rng = random.Random(7)
    for _ in range(5):
        subset = rng.sample(shares, rng.randint(3, 5))
        assert key_shares.combine_shares(subset, election.public_key, 3) == election.secret_key


def test_fewer_than_k_shares():
    election, shares = _poll(3, 5)
    with pytest.raises(KeyShareError, match="fewer key shares than the threshold: 2 of 3"):
        key_shares.combine_shares(shares[:2], election.public_key)
    with pytest.raises(KeyShareError, match="fewer"):
        key_shares.combine_shares([shares[0], shares[0], shares[1]], election.public_key)
    with pytest.raises(KeyShareError, match="no key shares"):
        key_shares.combine_shares([], election.public_key)


def test_corrupted_share_is_caught_by_the_checksum():
    election, shares = _poll(2, 3)
    corrupted = bytearray(shares[1])
    corrupted[10] ^= 0x10
    with pytest.raises(KeyShareError, match="key share 1: .*corrupted"):
        key_shares.combine_shares([shares[0], bytes(corrupted)], election.public_key)


def test_wrong_election_key():
    election, shares = _poll(2, 3)
    other = sealing.generate_election_keypair()
    with pytest.raises(KeyShareError, match="does not match the published election public key"):
        key_shares.combine_shares(shares[:2], other.public_key)


def test_shares_of_another_poll_do_not_mix():
    election, shares = _poll(2, 3)
    _, foreign = _poll(2, 3)
    with pytest.raises(KeyShareError):
        key_shares.combine_shares([shares[0], foreign[1]], election.public_key)


def test_threshold_must_match_the_poll():
    election, shares = _poll(2, 3)
    with pytest.raises(KeyShareError, match="threshold other than the poll's"):
        key_shares.combine_shares(shares, election.public_key, threshold=3)


def test_a_bad_but_well_formed_share_is_skipped_when_enough_remain():
    """A trustee posting a valid-checksum share of another sharing cannot block the release."""
    election, shares = _poll(2, 3)
    # Same identifier and parameters, wrong value: re-share the wrong secret under share 2's id.
    good = Share.from_mnemonic(key_shares.decode_share(shares[2]))
    forged = Share(
        good.identifier,
        good.extendable,
        good.iteration_exponent,
        good.group_index,
        good.group_threshold,
        good.group_count,
        good.index,
        good.member_threshold,
        bytes(len(good.value)),
    )
    forged_bytes = key_shares.encode_share(forged.mnemonic())
    assert key_shares.combine_shares([shares[0], forged_bytes, shares[1]], election.public_key) == election.secret_key
    with pytest.raises(KeyShareError):
        key_shares.combine_shares([shares[0], forged_bytes], election.public_key)


@pytest.mark.parametrize("threshold, count", [(0, 3), (4, 3), (1, 3), (2, 17)])
def test_bad_trustee_parameters(threshold, count):
    with pytest.raises(KeyShareError):
        key_shares.split_secret(bytes(32), threshold, count)


def test_one_of_one():
    election, shares = _poll(1, 1)
    assert key_shares.combine_shares(shares, election.public_key) == election.secret_key


@settings(max_examples=10)
@given(threshold=st.integers(2, 6), extra=st.integers(0, 4), secret=st.binary(min_size=32, max_size=32))
def test_share_encoding_round_trip(threshold, extra, secret):
    shares = key_shares.split_secret(secret, threshold, threshold + extra)
    for share in shares:
        mnemonic = key_shares.decode_share(share)
        assert key_shares.encode_share(mnemonic) == share
    public = sealing.public_key_from_secret(secret)
    assert key_shares.combine_shares(shares[extra:], public) == secret


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: b"\x02" + d[1:],
        lambda d: d[:1] + bytes([d[1] + 1]) + d[2:],
        lambda d: d[:-1],
        lambda d: d + b"\x00",
        lambda d: d[:-1] + bytes([d[-1] | 0x01]),  # padding bit set
        lambda d: b"",
    ],
)
def test_malformed_share_encodings(mutate):
    _, shares = _poll(2, 2)
    with pytest.raises(KeyShareError):
        key_shares.decode_share(mutate(shares[0]))


def test_deal_and_release():
    trustees = [sealing.generate_trustee_keypair() for _ in range(4)]
    dealing = key_shares.deal(3, [t.public_key for t in trustees])
    released = [
        key_shares.open_trustee_share(t.secret_key, sealed) for t, sealed in zip(trustees, dealing.sealed_shares)
    ]
    secret = key_shares.combine_shares(released[1:], dealing.election_public_key, 3)
    assert sealing.public_key_from_secret(secret) == dealing.election_public_key
    with pytest.raises(KeyShareError):
        key_shares.open_trustee_share(trustees[0].secret_key, dealing.sealed_shares[1])


def test_messages_do_not_quote_share_words():
    election, shares = _poll(2, 3)
    words = set(key_shares.decode_share(shares[0]).split())
    corrupted = bytearray(shares[0])
    corrupted[20] ^= 0x01
    for attempt in ([bytes(corrupted), shares[1]], [shares[0]]):
        with pytest.raises(KeyShareError) as info:
            key_shares.combine_shares(attempt, election.public_key)
        assert not words & set(str(info.value).replace(":", " ").split())

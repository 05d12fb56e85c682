"""Ballot plaintext v1: layout, round trips, and every malformed input rejected."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veche_core.errors import EncodingError
from veche_core.plaintext import (
    check_poll_options,
    decode_choice,
    encode_choice,
    plaintext_length,
)


def test_layout():
    # option i <-> bit i of the big-endian bitmap; 10 options -> 2 bitmap bytes
    assert encode_choice([0], 10, 1) == bytes([0x01, 0x00, 0x01])
    assert encode_choice([9], 10, 1) == bytes([0x01, 0x02, 0x00])
    assert encode_choice([1, 8], 10, 3) == bytes([0x01, 0x01, 0x02])
    assert plaintext_length(2) == 2 and plaintext_length(8) == 2 and plaintext_length(9) == 3
    assert plaintext_length(255) == 33


def test_length_is_fixed_per_poll():
    lengths = {len(encode_choice([i], 12, 1)) for i in range(12)}
    lengths |= {len(encode_choice(list(range(5)), 12, 5))}
    assert lengths == {plaintext_length(12)}


@settings(max_examples=60)
@given(data=st.data())
def test_round_trip(data):
    option_count = data.draw(st.integers(2, 255))
    max_choices = data.draw(st.integers(1, option_count))
    choices = data.draw(st.lists(st.integers(0, option_count - 1), min_size=1, max_size=max_choices, unique=True))
    encoded = encode_choice(choices, option_count, max_choices)
    assert len(encoded) == plaintext_length(option_count)
    assert decode_choice(encoded, option_count, max_choices) == tuple(sorted(choices))


@settings(max_examples=60)
@given(option_count=st.integers(2, 40), max_choices=st.integers(1, 40), blob=st.binary(max_size=8))
def test_decode_accepts_only_what_encode_makes(option_count, max_choices, blob):
    max_choices = min(max_choices, option_count)
    try:
        choices = decode_choice(blob, option_count, max_choices)
    except EncodingError:
        return
    assert encode_choice(choices, option_count, max_choices) == blob


@pytest.mark.parametrize(
    "plaintext, reason",
    [
        (bytes([0x02, 0x00, 0x01]), "version"),
        (b"", "version"),
        (bytes([0x01, 0x01]), "length"),
        (bytes([0x01, 0x00, 0x00, 0x01]), "length"),
        (bytes([0x01, 0x04, 0x00]), "beyond"),  # bit 10 with 10 options
        (bytes([0x01, 0x00, 0x00]), "chooses 0"),
        (bytes([0x01, 0x00, 0x03]), "chooses 2"),  # two choices, single-choice poll
    ],
)
def test_malformed_plaintexts_are_rejected(plaintext, reason):
    with pytest.raises(EncodingError, match=reason):
        decode_choice(plaintext, 10, 1)


def test_multi_choice_limits():
    assert decode_choice(encode_choice([0, 1, 2], 5, 3), 5, 3) == (0, 1, 2)
    with pytest.raises(EncodingError):
        decode_choice(bytes([0x01, 0x0F]), 5, 3)  # 4 choices, max 3
    with pytest.raises(EncodingError):
        encode_choice([0, 1, 2, 3], 5, 3)
    with pytest.raises(EncodingError):
        encode_choice([], 5, 3)
    with pytest.raises(EncodingError):
        encode_choice([1, 1], 5, 3)
    with pytest.raises(EncodingError):
        encode_choice([5], 5, 3)


@pytest.mark.parametrize("option_count, max_choices", [(1, 1), (256, 1), (5, 0), (5, 6)])
def test_bad_poll_options(option_count, max_choices):
    with pytest.raises(EncodingError):
        check_poll_options(option_count, max_choices)

"""Ballot plaintext v1: a version byte and a bitmap of the chosen options.

Why a bitmap: one encoding serves single choice (exactly one bit) and up-to-m-of-n (1..m bits);
its length depends only on the poll's option count, so the sealed ciphertext's length reveals
nothing about the choice; and it is canonical (each set of choices has exactly one encoding),
so two verifiers can never disagree on what a plaintext means.

Layout (docs/protocol.md §"Ballot plaintext v1"): 0x01 ‖ B, where B is ceil(optionCount / 8)
bytes read as one big-endian unsigned integer, and option i (0-based) is chosen iff bit i of B
is set (bit 0 is the least significant bit of the last byte).
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import EncodingError

PLAINTEXT_VERSION = 0x01
MIN_OPTIONS = 2
MAX_OPTIONS = 255  # optionCount is a uint8 on chain


def check_poll_options(option_count: int, max_choices: int) -> None:
    """The poll parameters plaintext v1 supports: 2 ≤ optionCount ≤ 255, 1 ≤ maxChoices ≤ it."""
    if not MIN_OPTIONS <= option_count <= MAX_OPTIONS:
        raise EncodingError(f"option count must be {MIN_OPTIONS}..{MAX_OPTIONS}")
    if not 1 <= max_choices <= option_count:
        raise EncodingError("max choices must be between 1 and the option count")


def plaintext_length(option_count: int) -> int:
    if not MIN_OPTIONS <= option_count <= MAX_OPTIONS:
        raise EncodingError(f"option count must be {MIN_OPTIONS}..{MAX_OPTIONS}")
    return 1 + (option_count + 7) // 8


def encode_choice(choices: Iterable[int], option_count: int, max_choices: int) -> bytes:
    """The plaintext for a set of distinct 0-based option indices (1..max_choices of them)."""
    check_poll_options(option_count, max_choices)
    chosen = list(choices)
    if len(set(chosen)) != len(chosen):
        raise EncodingError("an option is chosen twice")
    if not 1 <= len(chosen) <= max_choices:
        raise EncodingError(f"choose between 1 and {max_choices} options")
    bitmap = 0
    for option in chosen:
        if not isinstance(option, int) or not 0 <= option < option_count:
            raise EncodingError("option index out of range")
        bitmap |= 1 << option
    return bytes([PLAINTEXT_VERSION]) + bitmap.to_bytes(plaintext_length(option_count) - 1, "big")


def decode_choice(plaintext: bytes, option_count: int, max_choices: int) -> tuple[int, ...]:
    """The sorted option indices; EncodingError for anything that encode_choice cannot make."""
    check_poll_options(option_count, max_choices)
    plaintext = bytes(plaintext)
    if not plaintext or plaintext[0] != PLAINTEXT_VERSION:
        raise EncodingError("unknown ballot plaintext version")
    if len(plaintext) != plaintext_length(option_count):
        raise EncodingError("ballot plaintext has the wrong length for this poll")
    bitmap = int.from_bytes(plaintext[1:], "big")
    if bitmap >> option_count:
        raise EncodingError("ballot plaintext sets a bit beyond the last option")
    chosen = tuple(i for i in range(option_count) if bitmap >> i & 1)
    if not 1 <= len(chosen) <= max_choices:
        raise EncodingError(f"ballot chooses {len(chosen)} options; allowed 1..{max_choices}")
    return chosen

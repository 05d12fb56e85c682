"""Private byte helpers shared by the wire formats (fixed-width big-endian integers, addresses).

Kept in one place so every encoding pads and range-checks the same way. The address helpers
behave as eth-utils' functions of the same names do for strings; they are here because importing
eth-utils takes a quarter of a second, which every `veche-verify` run would pay.
"""

from __future__ import annotations

import re
from typing import TypeGuard

from .abi import checksum_address
from .errors import EncodingError

_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def is_hex_address(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _HEX_ADDRESS.fullmatch(value) is not None


def is_address(value: object) -> bool:
    """A hex address whose letters are all of one case, or in its EIP-55 mixed case."""
    if not is_hex_address(value):
        return False
    body = value[2:]
    return body == body.lower() or body == body.upper() or checksum_address(bytes.fromhex(body)) == value


def to_canonical_address(value: str) -> bytes:
    if not is_hex_address(value):
        raise EncodingError(f"{value!r} is not a hex address")
    return bytes.fromhex(value[2:])


def to_checksum_address(value: str | bytes) -> str:
    """EIP-55 form of a hex address or of 20 raw bytes."""
    raw = bytes(value) if isinstance(value, (bytes, bytearray)) else to_canonical_address(value)
    if len(raw) != 20:
        raise EncodingError("an address is 20 bytes")
    return checksum_address(raw)


def uint_bytes(value: int, length: int, what: str = "value") -> bytes:
    """`value` as `length` big-endian bytes; EncodingError if it is negative or too large."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise EncodingError(f"{what} must be an integer")
    if not 0 <= value < 1 << (8 * length):
        raise EncodingError(f"{what} does not fit in {length} bytes")
    return value.to_bytes(length, "big")


def address_bytes(value: str | bytes, what: str = "address") -> bytes:
    """The 20 raw bytes of an address given as bytes or as a hex string."""
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    elif isinstance(value, str) and is_hex_address(value):
        raw = to_canonical_address(value)
    else:
        raise EncodingError(f"{what} must be 20 bytes or a hex address")
    if len(raw) != 20:
        raise EncodingError(f"{what} must be 20 bytes")
    return raw

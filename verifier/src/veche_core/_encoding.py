"""Private byte helpers shared by the wire formats (fixed-width big-endian integers, addresses).

Kept in one place so every encoding pads and range-checks the same way.
"""

from __future__ import annotations

from eth_utils import is_hex_address, to_canonical_address

from .errors import EncodingError


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

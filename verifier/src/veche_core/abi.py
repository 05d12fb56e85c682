"""Strict Solidity ABI decoding for the few types Veche's events use.

eth-abi is general and takes ~0.4 ms per BallotCast event; the verifier decodes every event of a
poll, so this decoder covers only uintN, bytes32, address, bytes, string (as its bytes: the
caller decides what invalid UTF-8 means), dynamic tuples of them and arrays of all these, and is
strict in one pass: every offset must be the canonical one (each tail starts where the previous
ended), every padding byte zero, every value in its type's range, and nothing may follow the
last tail — so exactly the canonical encoding decodes, and any other byte string is rejected.
The tests compare it with eth-abi and with `encode` on valid and mutated data.
"""

from __future__ import annotations

from typing import Any

from ._keccak import keccak
from .errors import EncodingError

_WORD = 32


_NIBBLE_CASE = str.maketrans("0123456789abcdef", "\x00" * 8 + "\x20" * 8)  # hash nibble ≥ 8: upper
_LETTERS = str.maketrans("0123456789abcdef", "\x00" * 10 + "\x20" * 6)  # only letters have a case


def checksum_address(raw: bytes) -> str:
    """EIP-55 mixed-case address of 20 raw bytes: a letter is upper-case where the matching
    nibble of keccak256(lower-case hex) is 8 or more (the flips done as one integer operation)."""
    lower = raw.hex()
    flips = int.from_bytes(keccak(lower.encode()).hex()[:40].translate(_NIBBLE_CASE).encode(), "big")
    flips &= int.from_bytes(lower.translate(_LETTERS).encode(), "big")
    return "0x" + (int.from_bytes(lower.encode(), "big") ^ flips).to_bytes(40, "big").decode()


def _uint_word(value: int, bits: int) -> bytes:
    if not 0 <= value < 1 << bits:
        raise EncodingError(f"value out of range for uint{bits}")
    return value.to_bytes(_WORD, "big")


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % _WORD)


def tuple_components(kind: str) -> list[str] | None:
    """The component types of a tuple type `(t1,t2,…)`, split at its top-level commas; None
    if `kind` is not a tuple."""
    if not (kind.startswith("(") and kind.endswith(")")):
        return None
    parts, depth, start = [], 0, 1
    for i, char in enumerate(kind[1:-1], 1):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(kind[start:i])
            start = i + 1
    parts.append(kind[start:-1])
    return [part for part in parts if part]


def _is_dynamic(kind: str) -> bool:
    if kind in ("bytes", "string") or kind.endswith("[]"):
        return True
    components = tuple_components(kind)
    if components is None:
        return False
    if not any(_is_dynamic(c) for c in components):  # inline in the heads: no event of Veche has one
        raise EncodingError(f"unsupported static tuple {kind}")
    return True


def _word(data: bytes, offset: int) -> bytes:
    if offset < 0 or offset + _WORD > len(data):
        raise EncodingError("ABI data is shorter than its layout")
    return data[offset : offset + _WORD]


UINT_BITS = {"uint": 256, **{f"uint{bits}": bits for bits in range(8, 257, 8)}}


def _decode_static(kind: str, word: bytes) -> Any:
    bits = UINT_BITS.get(kind)
    if bits is not None:
        value = int.from_bytes(word, "big")
        if value >> bits:
            raise EncodingError(f"value out of range for {kind}")
        return value
    if kind == "bytes32":
        return word
    if kind == "address":
        if any(word[:12]):
            raise EncodingError("an address has non-zero padding")
        return word[12:]
    raise EncodingError(f"unsupported ABI type {kind}")


def _encode_static(kind: str, value: Any) -> bytes:
    if kind.startswith("uint"):
        return _uint_word(value, int(kind[4:] or 256))
    if kind == "bytes32":
        if len(value) != _WORD:
            raise EncodingError("a bytes32 value is 32 bytes")
        return bytes(value)
    if kind == "address":
        if len(value) != 20:
            raise EncodingError("an address is 20 bytes")
        return bytes(12) + bytes(value)
    raise EncodingError(f"unsupported ABI type {kind}")


def word(value: int) -> bytes:
    """One unchecked 32-byte big-endian word, for the hand-laid encoders (ballot.py, calls.py)
    whose values were range-checked when their objects were built."""
    return value.to_bytes(_WORD, "big")


def bytes_tail(data: bytes) -> bytes:
    """The tail of a `bytes` value: its length word, then the bytes zero-padded to 32 (the
    encoding side of `decode_bytes_at`)."""
    return len(data).to_bytes(_WORD, "big") + data + bytes(-len(data) % _WORD)


def _decode_tuple(types: list[str], data: bytes, base: int) -> tuple[list[Any], int]:
    """The values of a tuple encoded at data[base:], and the offset where its encoding ends."""
    end = base + _WORD * len(types)  # the first tail starts right after the heads
    if end > len(data):
        raise EncodingError("ABI data is shorter than its layout")
    values = []
    for i, kind in enumerate(types):
        word = data[base + i * _WORD : base + (i + 1) * _WORD]
        if _is_dynamic(kind):
            if base + int.from_bytes(word, "big") != end:
                raise EncodingError("ABI data is not in canonical form (an offset)")
            value, end = _decode_dynamic(kind, data, end)
        else:
            value = _decode_static(kind, word)
        values.append(value)
    return values, end


def decode_bytes_at(data: bytes, at: int) -> tuple[bytes, int]:
    """The `bytes` value whose length word is at data[at:], and where its zero-padded tail ends
    (also for decoders that know their layout, such as events.ballot_cast)."""
    length = int.from_bytes(_word(data, at), "big")
    start = at + _WORD
    if length > len(data) - start:
        raise EncodingError("ABI bytes run past the end of the data")
    end = start + length + (-length % _WORD)
    if end > len(data) or any(data[start + length : end]):
        raise EncodingError("ABI data is not in canonical form (bytes padding)")
    return data[start : start + length], end


def _decode_dynamic(kind: str, data: bytes, at: int) -> tuple[Any, int]:
    if kind in ("bytes", "string"):
        return decode_bytes_at(data, at)
    components = tuple_components(kind)
    if components is not None:
        values, end = _decode_tuple(components, data, at)
        return tuple(values), end
    length = int.from_bytes(_word(data, at), "big")
    start = at + _WORD
    item = kind[:-2]
    if length > (len(data) - start) // _WORD:
        raise EncodingError("ABI array is longer than the data")
    if _is_dynamic(item):
        values, end = _decode_tuple([item] * length, data, start)
        return tuple(values), end
    return tuple(
        _decode_static(item, data[start + i * _WORD : start + (i + 1) * _WORD]) for i in range(length)
    ), start + length * _WORD


def _encode_dynamic(kind: str, value: Any) -> bytes:
    if kind == "string" and isinstance(value, str):
        value = value.encode()
    if kind in ("bytes", "string"):
        return _uint_word(len(value), 256) + _pad(value)
    components = tuple_components(kind)
    if components is not None:
        return encode(components, list(value))
    item = kind[:-2]
    if _is_dynamic(item):
        return _uint_word(len(value), 256) + encode([item] * len(value), list(value))
    return _uint_word(len(value), 256) + b"".join(_encode_static(item, v) for v in value)


def encode(types: list[str], values: list[Any]) -> bytes:
    heads, tails = [], []
    offset = _WORD * len(types)
    for kind, value in zip(types, values, strict=True):
        if _is_dynamic(kind):
            encoded = _encode_dynamic(kind, value)
            heads.append(_uint_word(offset, 256))
            tails.append(encoded)
            offset += len(encoded)
        else:
            heads.append(_encode_static(kind, value))
    return b"".join(heads) + b"".join(tails)


def decode(types: list[str], data: bytes) -> tuple[Any, ...]:
    """Values of `types` in canonical ABI `data`; addresses as 20 raw bytes, strings as their bytes."""
    values, end = _decode_tuple(types, data, 0)
    if end != len(data):
        raise EncodingError("ABI data is not in canonical form (trailing bytes)")
    return tuple(values)

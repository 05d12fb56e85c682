"""Strict Solidity ABI decoding for the few types Veche's events use.

eth-abi is general and takes ~0.4 ms per BallotCast event; the verifier decodes every event of a
poll, so this decoder covers only uintN, bytes32, address, bytes and arrays of them, and is
strict by construction: it decodes, re-encodes canonically and requires the bytes to be
identical, so any non-canonical offset, padding, trailing data or out-of-range value is
rejected. The tests compare it with eth-abi on valid and mutated data.
"""

from __future__ import annotations

from typing import Any

from ._keccak import keccak
from .errors import EncodingError

_WORD = 32


def checksum_address(raw: bytes) -> str:
    """EIP-55 mixed-case address of 20 raw bytes (with the fast keccak)."""
    hex_address = raw.hex()
    digest = keccak(hex_address.encode()).hex()
    return "0x" + "".join(c.upper() if int(d, 16) >= 8 else c for c, d in zip(hex_address, digest))


def _uint_word(value: int, bits: int) -> bytes:
    if not 0 <= value < 1 << bits:
        raise EncodingError(f"value out of range for uint{bits}")
    return value.to_bytes(_WORD, "big")


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % _WORD)


def _is_dynamic(kind: str) -> bool:
    return kind == "bytes" or kind.endswith("[]")


def _word(data: bytes, offset: int) -> bytes:
    if offset < 0 or offset + _WORD > len(data):
        raise EncodingError("ABI data is shorter than its layout")
    return data[offset : offset + _WORD]


def _decode_static(kind: str, word: bytes) -> Any:
    if kind.startswith("uint"):
        return int.from_bytes(word, "big")  # range is checked by the re-encoding
    if kind == "bytes32":
        return word
    if kind == "address":
        return word[12:]
    raise EncodingError(f"unsupported ABI type {kind}")


def _encode_static(kind: str, value: Any) -> bytes:
    if kind.startswith("uint"):
        return _uint_word(value, int(kind[4:] or 256))
    if kind == "bytes32":
        return value
    if kind == "address":
        return bytes(12) + value
    raise EncodingError(f"unsupported ABI type {kind}")


def _decode_dynamic(kind: str, data: bytes, offset: int) -> Any:
    length = int.from_bytes(_word(data, offset), "big")
    start = offset + _WORD
    if kind == "bytes":
        if start + length > len(data):
            raise EncodingError("ABI bytes run past the end of the data")
        return data[start : start + length]
    item = kind[:-2]
    if length > (len(data) - start) // _WORD:
        raise EncodingError("ABI array is longer than the data")
    if _is_dynamic(item):
        tail = data[start:]
        return tuple(_decode_dynamic(item, tail, int.from_bytes(_word(tail, i * _WORD), "big")) for i in range(length))
    return tuple(_decode_static(item, _word(data, start + i * _WORD)) for i in range(length))


def _encode_dynamic(kind: str, value: Any) -> bytes:
    if kind == "bytes":
        return _uint_word(len(value), 256) + _pad(value)
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
    """Values of `types` in canonical ABI `data`; addresses as 20 raw bytes."""
    values = []
    for i, kind in enumerate(types):
        word = _word(data, i * _WORD)
        if _is_dynamic(kind):
            values.append(_decode_dynamic(kind, data, int.from_bytes(word, "big")))
        else:
            values.append(_decode_static(kind, word))
    if encode(types, values) != data:
        raise EncodingError("ABI data is not in canonical form")
    return tuple(values)

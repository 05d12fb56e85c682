"""Call data of the contract functions Veche calls by raw bytes: the one definition of their
selectors and encodings.

The bulk calls carry hundreds of items a transaction, and web3's contract encoder validated
every item again on each of estimate_gas and build_transaction (a fifth of a core at 500
tokens/s). `encode_cast_ballots` is laid out by hand (~4 µs a ballot, web3's ~30); the
issuance call and the key ceremony's calls (protocol v2) use the core's strict ABI encoder. The
tests compare each with eth-abi (tests/core/test_calls.py) and every selector here with the
compiled ABI (tests/contracts/test_wire_formats.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from . import abi
from ._encoding import address_bytes
from ._keccak import keccak
from .abi import word
from .ballot import encode_ballot_fields
from .errors import EncodingError


def selector(signature: str) -> bytes:
    """The 4-byte selector of a canonical signature, e.g. `credit(uint256,address[],uint256)`
    (errors are selected the same way)."""
    return keccak(signature.encode())[:4]


def abi_signature(entry: dict[str, Any]) -> str:
    """The canonical signature of a function, error or event entry of a JSON ABI (structs
    spelled out as tuples), as the selector and topic0 hash it."""

    def kind(parameter: dict[str, Any]) -> str:
        type_: str = parameter["type"]
        if type_.startswith("tuple"):
            inner = ",".join(kind(component) for component in parameter["components"])
            return f"({inner}){type_[5:]}"
        return type_

    return f"{entry['name']}({','.join(kind(p) for p in entry.get('inputs', []))})"


CAST_BALLOTS = "castBallots(uint256,(address,uint64,uint32,bytes,bytes,bytes)[])"
ISSUANCE_RECORD = "(address,uint32,bytes32,uint64,bytes,uint32,bytes32[])"  # IPollBook.IssuanceRecord
RECORD_ISSUANCES = f"recordIssuances(uint256,{ISSUANCE_RECORD}[])"
REGISTER_TRUSTEE_KEY = "registerTrusteeKey(address,bytes,uint64,bytes)"
POST_CEREMONY_MESSAGE = "postCeremonyMessage(uint256,uint8,uint8,uint8,bytes,bytes)"
RESTART_CEREMONY = "restartCeremony(uint256,uint8[])"
BALANCE_OF = "balanceOf(address)"
EIP712_DOMAIN = "eip712Domain()"  # EIP-5267, as OpenZeppelin's EIP712 answers it

CAST_BALLOTS_SELECTOR = selector(CAST_BALLOTS)
RECORD_ISSUANCES_SELECTOR = selector(RECORD_ISSUANCES)
REGISTER_TRUSTEE_KEY_SELECTOR = selector(REGISTER_TRUSTEE_KEY)
POST_CEREMONY_MESSAGE_SELECTOR = selector(POST_CEREMONY_MESSAGE)
RESTART_CEREMONY_SELECTOR = selector(RESTART_CEREMONY)
BALANCE_OF_SELECTOR = selector(BALANCE_OF)
EIP712_DOMAIN_SELECTOR = selector(EIP712_DOMAIN)

# selector + pollId + offset of the array + array length
CAST_BALLOTS_OVERHEAD = 4 + 3 * 32


def ballot_calldata_size(ciphertext_len: int, credential_len: int, signature_len: int = 65) -> int:
    """The bytes one ballot adds to castBallots' calldata: its offset in the array head, six
    head words, three length words and the three byte strings padded to 32."""
    padded = sum(n + (-n % 32) for n in (ciphertext_len, credential_len, signature_len))
    return 32 + 6 * 32 + 3 * 32 + padded


def encode_cast_ballots(poll_id: int, items: Iterable[tuple[bytes, int, int, bytes, bytes, bytes]]) -> bytes:
    """Calldata of `castBallots(pollId, ballots)`, items being (token: 20 bytes, sequence,
    stratum, ciphertext, tokenSignature, signature)."""
    tails = [
        encode_ballot_fields(
            6 * 32, bytes(token), sequence, stratum, bytes(ciphertext), bytes(credential), bytes(signature)
        )
        for token, sequence, stratum, ciphertext, credential, signature in items
    ]
    offsets, position = [], 32 * len(tails)
    for tail in tails:
        offsets.append(word(position))
        position += len(tail)
    return b"".join([CAST_BALLOTS_SELECTOR, word(poll_id), word(64), word(len(tails)), *offsets, *tails])


class IssuanceRecord(NamedTuple):
    """One item of `recordIssuances` (IPollBook.IssuanceRecord, docs/protocol.md §3.12): the
    resident's signed IssuanceRequest and the proof that the resident is in the register."""

    resident: str | bytes  # hex address or 20 raw bytes
    stratum: int
    blinded_message_hash: bytes
    deadline: int
    signature: bytes
    leaf_index: int
    proof: Sequence[bytes]


def encode_record_issuances(poll_id: int, records: Iterable[IssuanceRecord]) -> bytes:
    """Calldata of `PollBook.recordIssuances(pollId, issuances)`; PollBook credits each
    resident's points in the same call."""
    items = [
        (
            address_bytes(r.resident, "resident"),
            r.stratum,
            bytes(r.blinded_message_hash),
            r.deadline,
            bytes(r.signature),
            r.leaf_index,
            [bytes(step) for step in r.proof],
        )
        for r in records
    ]
    return RECORD_ISSUANCES_SELECTOR + abi.encode(["uint256", f"{ISSUANCE_RECORD}[]"], [poll_id, items])


def encode_register_trustee_key(trustee: str | bytes, key: bytes, serial: int, signature: bytes) -> bytes:
    """Calldata of `PollBook.registerTrusteeKey(trustee, key, serial, signature)` (protocol v2),
    the trustee's signature over typed_data.trustee_key_digest; anyone may send it."""
    return REGISTER_TRUSTEE_KEY_SELECTOR + abi.encode(
        ["address", "bytes", "uint64", "bytes"],
        [address_bytes(trustee, "trustee"), bytes(key), serial, bytes(signature)],
    )


def encode_post_ceremony_message(
    poll_id: int, attempt: int, index: int, kind: int, payload: bytes, signature: bytes
) -> bytes:
    """Calldata of `PollBook.postCeremonyMessage(...)` (protocol v2), trustee `index`'s
    signature over typed_data.ceremony_message_digest; anyone may send it."""
    return POST_CEREMONY_MESSAGE_SELECTOR + abi.encode(
        ["uint256", "uint8", "uint8", "uint8", "bytes", "bytes"],
        [poll_id, attempt, index, kind, bytes(payload), bytes(signature)],
    )


def encode_restart_ceremony(poll_id: int, excluded: Iterable[int]) -> bytes:
    """Calldata of `PollBook.restartCeremony(pollId, excluded)` (protocol v2; POLL_ADMIN_ROLE)."""
    return RESTART_CEREMONY_SELECTOR + abi.encode(["uint256", "uint8[]"], [poll_id, list(excluded)])


def role_id(name: str) -> bytes:
    """An AccessControl role's id: keccak256 of its name (e.g. `RELAYER_ROLE`)."""
    return keccak(name.encode())


def encode_balance_of(account: str | bytes) -> bytes:
    """Calldata of `CityPoints.balanceOf(account)`."""
    return BALANCE_OF_SELECTOR + bytes(12) + address_bytes(account, "account")


def decode_eip712_domain(answer: bytes) -> tuple[str, str, int, bytes]:
    """(name, version, chainId, verifyingContract) from what `eip712Domain()` returns (EIP-5267:
    bytes1 fields, string name, string version, uint256 chainId, address verifyingContract,
    bytes32 salt, uint256[] extensions); EncodingError if it is not that."""
    _, name, version, chain_id, contract, _, _ = abi.decode(
        ["bytes32", "bytes", "bytes", "uint256", "address", "bytes32", "uint256[]"], answer
    )
    try:
        return name.decode("utf-8"), version.decode("utf-8"), chain_id, contract
    except UnicodeDecodeError:
        raise EncodingError("eip712Domain(): name or version is not UTF-8") from None

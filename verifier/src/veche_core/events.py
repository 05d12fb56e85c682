"""The contract events, as the verifier reads them: the one definition of their wire format.

Each event is declared once, as its Solidity signature with the indexed fields marked; topic0 and
the decoder follow from that. Decoding (veche_core.abi) refuses anything that does not match the
declaration exactly (a wrong topic count, trailing or missing data).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

from . import abi
from ._keccak import keccak
from .errors import EncodingError


@dataclass(frozen=True)
class EventSpec:
    name: str
    fields: tuple[tuple[str, str, bool], ...]  # (solidity type, name, indexed)

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(kind for kind, _, _ in self.fields)})"

    @cached_property
    def topic0(self) -> bytes:
        return keccak(self.signature.encode())

    @cached_property
    def data_types(self) -> list[str]:
        return [kind for kind, _, indexed in self.fields if not indexed]

    @cached_property
    def data_fields(self) -> list[tuple[str, str]]:
        return [(kind, name) for kind, name, indexed in self.fields if not indexed]

    @cached_property
    def indexed_fields(self) -> list[tuple[str, str]]:
        return [(kind, name) for kind, name, indexed in self.fields if indexed]

    @cached_property
    def data_names(self) -> list[str]:
        return [name for _, name in self.data_fields]

    @cached_property
    def data_has_addresses(self) -> bool:
        return any(kind.startswith("address") for kind, _ in self.data_fields)


def _spec(name: str, declaration: str) -> EventSpec:
    fields = []
    for part in declaration.split(","):
        words = part.split()
        fields.append((words[0], words[-1], "indexed" in words[1:-1]))
    return EventSpec(name, tuple(fields))


POLL_CREATED = _spec(
    "PollCreated",
    "uint256 indexed pollId, bytes32 metadataHash, uint8 optionCount, uint8 maxChoices,"
    " uint64 opensAt, uint64 closesAt, uint32 points, bytes32 electionKey, bytes[] issuerKeys,"
    " address[] trustees, uint8 threshold",
)
TOKEN_ISSUED = _spec(
    "TokenIssued", "uint256 indexed pollId, bytes32 indexed pseudonym, uint32 stratum"
)
BALLOT_CAST = _spec(
    "BallotCast",
    "uint256 indexed pollId, address indexed token, uint64 sequence, uint32 stratum,"
    " bytes ciphertext, bytes tokenSignature, bytes signature",
)
BALLOT_REJECTED = _spec(
    "BallotRejected",
    "uint256 indexed pollId, address indexed token, uint64 sequence, uint8 reason",
)
KEY_SHARE_SUBMITTED = _spec(
    "KeyShareSubmitted", "uint256 indexed pollId, uint8 indexed index, address trustee, bytes share"
)
RESULT_PUBLISHED = _spec(
    "ResultPublished", "uint256 indexed pollId, uint256[] counts, bytes32 datasetHash"
)
POINTS_CREDITED = _spec(
    "PointsCredited", "address indexed resident, uint256 indexed pollId, uint256 amount"
)
REWARD_REDEEMED = _spec(
    "RewardRedeemed",
    "address indexed resident, uint256 indexed rewardId, uint256 price, uint256 nonce",
)
POINTS_DONATED = _spec(
    "PointsDonated",
    "address indexed resident, uint256 indexed charityId, uint256 amount, uint256 nonce",
)

POLL_BOOK_EVENTS = (
    POLL_CREATED, TOKEN_ISSUED, BALLOT_CAST, BALLOT_REJECTED, KEY_SHARE_SUBMITTED, RESULT_PUBLISHED,
)
CITY_POINTS_EVENTS = (POINTS_CREDITED, REWARD_REDEEMED, POINTS_DONATED)
BY_TOPIC = {spec.topic0: spec for spec in POLL_BOOK_EVENTS + CITY_POINTS_EVENTS}


class DecodedEvent(NamedTuple):
    """(A named tuple: the verifier builds one per log, hundreds of thousands of them.)"""

    name: str
    args: dict[str, Any]
    block_number: int
    transaction_hash: bytes
    log_index: int


def _hex_bytes(value: str) -> bytes:
    """JSON-RPC DATA: 0x-prefixed hex, as every node sends it."""
    if value[:2] != "0x":
        raise EncodingError("hex data without its 0x prefix")
    return bytes.fromhex(value[2:])


def _topic_value(kind: str, topic: bytes) -> Any:
    if kind == "address":
        if any(topic[:12]):
            raise EncodingError("an indexed address topic has non-zero padding")
        return abi.checksum_address(topic[12:])
    bits = abi.UINT_BITS.get(kind)
    if bits is not None:
        value = int.from_bytes(topic, "big")
        if value >> bits:
            raise EncodingError(f"an indexed {kind} topic is out of range")
        return value
    if kind == "bytes32":
        return topic
    raise EncodingError(f"unsupported indexed type {kind}")


def decode_log(log: dict[str, Any]) -> DecodedEvent:
    """Decode one raw JSON-RPC log object into a known event; EncodingError otherwise."""
    try:
        return _decode_log(log)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, EncodingError):
            raise
        raise EncodingError(f"malformed log object: {exc!r}") from None


def _decode_log(log: dict[str, Any]) -> DecodedEvent:
    topics = [_hex_bytes(topic) for topic in log["topics"]]
    spec = BY_TOPIC.get(topics[0]) if topics else None
    if spec is None:
        raise EncodingError("log is not a known Veche event")
    indexed = spec.indexed_fields
    if len(topics) != 1 + len(indexed):
        raise EncodingError(f"{spec.name}: expected {1 + len(indexed)} topics, got {len(topics)}")
    args: dict[str, Any] = {
        name: _topic_value(kind, topic) for (kind, name), topic in zip(indexed, topics[1:])
    }
    try:
        values = abi.decode(spec.data_types, _hex_bytes(log["data"]))
    except EncodingError as exc:
        raise EncodingError(f"{spec.name}: data does not decode: {exc}") from None
    if not spec.data_has_addresses:
        args.update(zip(spec.data_names, values))
    else:
        for (kind, name), value in zip(spec.data_fields, values):
            if kind == "address":
                value = abi.checksum_address(value)
            elif kind == "address[]":
                value = tuple(abi.checksum_address(item) for item in value)
            args[name] = value
    return DecodedEvent(
        name=spec.name,
        args=args,
        block_number=int(log["blockNumber"], 16),
        transaction_hash=_hex_bytes(log["transactionHash"]),
        log_index=int(log["logIndex"], 16),
    )

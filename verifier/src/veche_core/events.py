"""The contract events, as the verifier reads them: the one definition of their wire format.

Each event is declared once, as its Solidity signature with the indexed fields marked; topic0 and
the decoder follow from that. Decoding (veche_core.abi) refuses anything that does not match the
declaration exactly (a wrong topic count, trailing or missing data). A test compares every
declaration with the compiled contracts' ABI (tests/contracts/test_wire_formats.py). Log filters
are spelled with `EventSpec.topic`, `uint_topic` and `address_topic`; readers of a transaction's
own logs (the relay's receipts) use `ballot_cast`, `ballot_rejected` and `poll_created_id`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property
from typing import Any, NamedTuple, TypeVar

from . import abi
from ._encoding import address_bytes
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
    def topic(self) -> str:
        """topic0 as JSON-RPC spells it (0x and lower-case hex), for log filters."""
        return "0x" + self.topic0.hex()

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
    for part in abi.tuple_components(f"({declaration})") or []:  # top-level commas (a struct is a tuple)
        words = part.split()
        fields.append((words[0], words[-1], "indexed" in words[1:-1]))
    return EventSpec(name, tuple(fields))


POLL_CREATED = _spec(
    "PollCreated",
    "uint256 indexed pollId, bytes32 metadataHash, uint8 optionCount, uint8 maxChoices,"
    " uint64 opensAt, uint64 closesAt, uint32 points, bytes32 electionKey, bytes[] issuerKeys,"
    " address[] trustees, uint8 threshold",
)
# Protocol v1's issuance record (pseudonyms): PollBook v2 no longer emits it, but the spec and its
# reader stay, so that polls of a v1 deployment are still read (and their issuances counted).
TOKENS_ISSUED = _spec("TokensIssued", "uint256 indexed pollId, bytes32[] pseudonyms, uint32[] strata")
# Protocol v2 (docs/protocol.md §3.11, §3.12): the register each stratum's issuances are proven
# against, committed by createPoll, and each issuance with the resident's signed request.
REGISTER_COMMITTED = _spec("RegisterCommitted", "uint256 indexed pollId, bytes32[] roots, uint32[] sizes")
ISSUANCE_RECORD = "(address,uint32,bytes32,uint64,bytes,uint32,bytes32[])"
ISSUANCES_RECORDED = _spec("IssuancesRecorded", f"uint256 indexed pollId, {ISSUANCE_RECORD}[] issuances")
BALLOT_CAST = _spec(
    "BallotCast",
    "uint256 indexed pollId, address indexed token, uint64 sequence, uint32 stratum,"
    " bytes ciphertext, bytes tokenSignature, bytes signature",
)
# One per castBallots call, after its BallotCast logs (the same transaction): the relay that
# carried them. A PollBook from before it emits none; its ballots' relay is then unknown.
BALLOTS_RELAYED = _spec("BallotsRelayed", "uint256 indexed pollId, address indexed relayer, uint256 accepted")
BALLOT_REJECTED = _spec(
    "BallotRejected",
    "uint256 indexed pollId, address indexed token, uint64 sequence, uint8 reason",
)
KEY_SHARE_SUBMITTED = _spec(
    "KeyShareSubmitted", "uint256 indexed pollId, uint8 indexed index, address trustee, bytes share"
)
RESULT_PUBLISHED = _spec("ResultPublished", "uint256 indexed pollId, uint256[] counts, bytes32 datasetHash")
# Protocol v2's key ceremony (docs/protocol.md, "The key ceremony on chain"; payloads in
# veche_core.ceremony): the trustees' static keys, each attempt, its messages, the certified key.
TRUSTEE_KEY_REGISTERED = _spec("TrusteeKeyRegistered", "address indexed trustee, uint64 serial, bytes key")
CEREMONY_STARTED = _spec("CeremonyStarted", "uint256 indexed pollId, uint8 attempt, uint8[] members, bytes[] keys")
CEREMONY_MESSAGE_POSTED = _spec(
    "CeremonyMessagePosted", "uint256 indexed pollId, uint8 attempt, uint8 index, uint8 kind, bytes payload"
)
ELECTION_KEY_CERTIFIED = _spec("ElectionKeyCertified", "uint256 indexed pollId, uint8 attempt, bytes electionKey")
# The relays (docs/protocol.md §3.8, §7): who may post ballots and sign receipts, and since when.
# OpenZeppelin AccessControl's role events (read for RELAYER_ROLE) and PollBook's RelayRegistered.
ROLE_GRANTED = _spec("RoleGranted", "bytes32 indexed role, address indexed account, address indexed sender")
ROLE_REVOKED = _spec("RoleRevoked", "bytes32 indexed role, address indexed account, address indexed sender")
RELAY_REGISTERED = _spec("RelayRegistered", "address indexed relayer, string name, string url")
POINTS_CREDITED = _spec("PointsCredited", "address indexed resident, uint256 indexed pollId, uint256 amount")
REWARD_REDEEMED = _spec(
    "RewardRedeemed",
    "address indexed resident, uint256 indexed rewardId, uint256 price, uint256 nonce",
)
POINTS_DONATED = _spec(
    "PointsDonated",
    "address indexed resident, uint256 indexed charityId, uint256 amount, uint256 nonce",
)


class BallotRejection(IntEnum):
    """IPollBook.BallotRejection, BallotRejected's `reason`: each value fixed by its member, as
    in the contract (a test compares the two)."""

    UnknownStratum = 0
    BadSignature = 1
    StaleSequence = 2  # retired: the contract stopped judging sequences and never emits it


RETIRED_REJECTIONS = frozenset({BallotRejection.StaleSequence})


def rejection_reason(code: int) -> str:
    """The name a rejected ballot's status reports: the member's name for a reason the contract
    emits; a retired or unknown code as its number (no PollBook in service emits one)."""
    try:
        reason = BallotRejection(code)
    except ValueError:
        return str(code)
    return str(code) if reason in RETIRED_REJECTIONS else reason.name


def uint_topic(value: int) -> str:
    """An indexed uint (a poll id) as a log filter's topic."""
    return "0x" + value.to_bytes(32, "big").hex()


def address_topic(address: str | bytes) -> str:
    """An indexed address (a resident) as a log filter's topic."""
    return "0x" + bytes(12).hex() + address_bytes(address).hex()


# OpenZeppelin's, not declared by IPollBook; read for PollBook's RELAYER_ROLE only.
ACCESS_CONTROL_EVENTS = (ROLE_GRANTED, ROLE_REVOKED)
# The PollBook-wide events of its relays: not per poll (no poll id topic).
RELAY_EVENTS = (*ACCESS_CONTROL_EVENTS, RELAY_REGISTERED)
POLL_BOOK_EVENTS = (
    POLL_CREATED,
    REGISTER_COMMITTED,
    TOKENS_ISSUED,
    ISSUANCES_RECORDED,
    BALLOT_CAST,
    BALLOTS_RELAYED,
    BALLOT_REJECTED,
    KEY_SHARE_SUBMITTED,
    RESULT_PUBLISHED,
    TRUSTEE_KEY_REGISTERED,
    CEREMONY_STARTED,
    CEREMONY_MESSAGE_POSTED,
    ELECTION_KEY_CERTIFIED,
    RELAY_REGISTERED,
)
# The per-poll events of the key ceremony (TrusteeKeyRegistered is per trustee, not per poll).
CEREMONY_EVENTS = (CEREMONY_STARTED, CEREMONY_MESSAGE_POSTED, ELECTION_KEY_CERTIFIED)
CITY_POINTS_EVENTS = (POINTS_CREDITED, REWARD_REDEEMED, POINTS_DONATED)
BY_TOPIC = {spec.topic0: spec for spec in POLL_BOOK_EVENTS + ACCESS_CONTROL_EVENTS + CITY_POINTS_EVENTS}


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
    if any(len(topic) != 32 for topic in topics):
        raise EncodingError("a topic is not 32 bytes")
    spec = BY_TOPIC.get(topics[0]) if topics else None
    if spec is None:
        raise EncodingError("log is not a known Veche event")
    indexed = spec.indexed_fields
    if len(topics) != 1 + len(indexed):
        raise EncodingError(f"{spec.name}: expected {1 + len(indexed)} topics, got {len(topics)}")
    args: dict[str, Any] = {name: _topic_value(kind, topic) for (kind, name), topic in zip(indexed, topics[1:])}
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


# --- The bulk events, decoded by their fixed layout -------------------------------------------
#
# A 100,000-ballot poll brings 100,000 BallotCast and 100,000 PointsCredited logs; `decode_log`
# spends most of its time on what they do not need (a dict per log, every topic decoded,
# addresses checksummed). These read only the fields the verifier uses, as flat tuples, from logs
# in the one form nodes send (lower-case hex, the declared topic count). Anything else goes to
# `decode_log`, so both accept exactly the same logs; the tests compare them on mutated logs.


class CastLog(NamedTuple):
    poll_id: int
    token: bytes  # 20 raw bytes
    sequence: int
    stratum: int
    ciphertext: bytes
    token_signature: bytes
    signature: bytes
    block_number: int
    log_index: int
    transaction_hash: bytes  # 32 bytes: the castBallots call, whose BallotsRelayed names the relay


BALLOT_CAST_TOPIC = BALLOT_CAST.topic
BALLOTS_RELAYED_TOPIC = BALLOTS_RELAYED.topic
TOKENS_ISSUED_TOPIC = TOKENS_ISSUED.topic
ISSUANCES_RECORDED_TOPIC = ISSUANCES_RECORDED.topic
POINTS_CREDITED_TOPIC = POINTS_CREDITED.topic
_ZERO_PADDING = bytes(12)


def _word(value: str) -> bytes:
    """32 bytes from "0x" + 64 hex digits; ValueError otherwise (bytes.fromhex skips spaces,
    hence the length check)."""
    if len(value) != 66 or value[:2] != "0x":
        raise ValueError
    word = bytes.fromhex(value[2:])
    if len(word) != 32:
        raise ValueError
    return word


_Fields = TypeVar("_Fields")  # what one event's fast and generic readers both return


def _position(log: dict[str, Any]) -> tuple[int, int, bytes]:
    """(block number, log index, transaction hash), read as decode_log reads them."""
    return int(log["blockNumber"], 16), int(log["logIndex"], 16), _hex_bytes(log["transactionHash"])


def _fast_or_generic(
    fast: Callable[[dict[str, Any]], _Fields], generic: Callable[[DecodedEvent], _Fields], log: dict[str, Any]
) -> _Fields:
    try:
        return fast(log)
    except (KeyError, TypeError, ValueError, IndexError):  # EncodingError is a ValueError
        return generic(decode_log(log))


def _cast_fast(log: dict[str, Any]) -> CastLog:
    topics = log["topics"]
    if len(topics) != 3 or topics[0] != BALLOT_CAST_TOPIC:
        raise ValueError
    token = _word(topics[2])
    data = log["data"]
    if token[:12] != _ZERO_PADDING or data[:2] != "0x":
        raise ValueError
    raw = bytes.fromhex(data[2:])
    # abi.decode's canonical layout, spelled out for (uint64, uint32, bytes, bytes, bytes): the
    # two numbers' padding, the first tail right after the five heads, each further tail right
    # after the previous one, zero padding, nothing after the last.
    if raw[:24] != _ZERO_24 or raw[32:60] != _ZERO_28 or raw[64:96] != _FIRST_TAIL:
        raise ValueError
    ciphertext, end = abi.decode_bytes_at(raw, 160)
    if int.from_bytes(raw[96:128], "big") != end:
        raise ValueError
    token_signature, end = abi.decode_bytes_at(raw, end)
    if int.from_bytes(raw[128:160], "big") != end:
        raise ValueError
    signature, end = abi.decode_bytes_at(raw, end)
    if end != len(raw):
        raise ValueError
    return CastLog(
        int.from_bytes(_word(topics[1]), "big"),
        token[12:],
        int.from_bytes(raw[24:32], "big"),
        int.from_bytes(raw[60:64], "big"),
        ciphertext,
        token_signature,
        signature,
        *_position(log),
    )


_ZERO_24, _ZERO_28, _FIRST_TAIL = bytes(24), bytes(28), (160).to_bytes(32, "big")


def _cast_generic(event: DecodedEvent) -> CastLog:
    if event.name != "BallotCast":
        raise EncodingError(f"a {event.name} where a BallotCast was asked for")
    a = event.args
    return CastLog(
        a["pollId"],
        bytes.fromhex(a["token"][2:]),
        a["sequence"],
        a["stratum"],
        a["ciphertext"],
        a["tokenSignature"],
        a["signature"],
        event.block_number,
        event.log_index,
        event.transaction_hash,
    )


def ballot_cast(log: dict[str, Any]) -> CastLog:
    """A BallotCast log's fields; EncodingError if it is not a well-formed BallotCast."""
    return _fast_or_generic(_cast_fast, _cast_generic, log)


def ballots_relayed(log: dict[str, Any]) -> tuple[int, bytes, bytes]:
    """A BallotsRelayed log's (poll id, relayer as 20 raw bytes, its transaction's hash);
    EncodingError if it is not a well-formed one. One log per batch: the generic decoder."""
    event = decode_log(log)
    if event.name != "BallotsRelayed":
        raise EncodingError(f"a {event.name} where a BallotsRelayed was asked for")
    return event.args["pollId"], bytes.fromhex(event.args["relayer"][2:]), event.transaction_hash


def tokens_issued(log: dict[str, Any]) -> tuple[int, tuple[int, ...]]:
    """A TokensIssued log's (poll id, the stratum of each issuance); EncodingError if it is not
    a well-formed one, or if its arrays differ in length (PollBook refuses such a batch). One
    log per batch of issuances: the generic decoder is fast enough."""
    event = decode_log(log)
    if event.name != "TokensIssued":
        raise EncodingError(f"a {event.name} where a TokensIssued was asked for")
    if len(event.args["pseudonyms"]) != len(event.args["strata"]):
        raise EncodingError("TokensIssued: pseudonyms and strata differ in length")
    return event.args["pollId"], event.args["strata"]


class IssuanceItem(NamedTuple):
    """One issuance of an IssuancesRecorded log: the resident's signed IssuanceRequest and its
    register proof (docs/protocol.md §3.12)."""

    resident: bytes  # 20 raw bytes
    stratum: int
    blinded_message_hash: bytes
    deadline: int
    signature: bytes
    leaf_index: int
    proof: tuple[bytes, ...]


def issuances_recorded(log: dict[str, Any]) -> tuple[int, list[IssuanceItem]]:
    """An IssuancesRecorded log's (poll id, its issuances); EncodingError if it is not a
    well-formed one. One log per batch: the generic decoder is fast enough."""
    event = decode_log(log)
    if event.name != "IssuancesRecorded":
        raise EncodingError(f"a {event.name} where an IssuancesRecorded was asked for")
    items = []
    for resident, stratum, blinded_hash, deadline, signature, index, proof in event.args["issuances"]:
        items.append(IssuanceItem(resident, stratum, blinded_hash, deadline, signature, index, proof))
    return event.args["pollId"], items


def register_committed(event: DecodedEvent) -> list[tuple[bytes, int]]:
    """A decoded RegisterCommitted's (root, size) per stratum; EncodingError if its arrays
    differ in length (PollBook refuses such a poll)."""
    roots, sizes = event.args["roots"], event.args["sizes"]
    if len(roots) != len(sizes):
        raise EncodingError("RegisterCommitted: roots and sizes differ in length")
    return list(zip(roots, sizes))


def _credited_fast(log: dict[str, Any]) -> tuple[int, bytes, int]:
    topics = log["topics"]
    if len(topics) != 3 or topics[0] != POINTS_CREDITED_TOPIC:
        raise ValueError
    resident = _word(topics[1])
    if resident[:12] != _ZERO_PADDING:
        raise ValueError
    _position(log)
    return int.from_bytes(_word(topics[2]), "big"), resident[12:], int.from_bytes(_word(log["data"]), "big")


def _credited_generic(event: DecodedEvent) -> tuple[int, bytes, int]:
    if event.name != "PointsCredited":
        raise EncodingError(f"a {event.name} where a PointsCredited was asked for")
    a = event.args
    return a["pollId"], bytes.fromhex(a["resident"][2:]), a["amount"]


def points_credited(log: dict[str, Any]) -> tuple[int, bytes, int]:
    """A PointsCredited log's (poll id, resident as 20 raw bytes, amount); EncodingError if it
    is not a well-formed one."""
    return _fast_or_generic(_credited_fast, _credited_generic, log)


class RejectedLog(NamedTuple):
    poll_id: int
    token: bytes  # 20 raw bytes
    sequence: int
    reason: int  # a BallotRejection value (see rejection_reason)


def ballot_rejected(log: dict[str, Any]) -> RejectedLog:
    """A BallotRejected log's fields; EncodingError if it is not a well-formed BallotRejected.
    Rare (one per refused ballot): the generic decoder is fast enough."""
    event = decode_log(log)
    if event.name != "BallotRejected":
        raise EncodingError(f"a {event.name} where a BallotRejected was asked for")
    a = event.args
    return RejectedLog(a["pollId"], bytes.fromhex(a["token"][2:]), a["sequence"], a["reason"])


def poll_created_id(logs: list[dict[str, Any]], poll_book: str) -> int | None:
    """The poll id of the one well-formed PollCreated that `poll_book` emitted among a
    transaction's logs (its receipt's); None if there is not exactly one."""
    contract = poll_book.lower()
    found = []
    for log in logs:
        topics = log.get("topics") or []
        if (
            str(log.get("address", "")).lower() != contract
            or not topics
            or str(topics[0]).lower() != POLL_CREATED.topic
        ):
            continue
        try:
            found.append(decode_log(log).args["pollId"])
        except EncodingError:
            continue
    return found[0] if len(found) == 1 else None


# --- The key ceremony (protocol v2) ---------------------------------------------------------
#
# A handful of logs per poll: read from decode_log's DecodedEvent (as register_committed), so the
# verifier's loop over the few events hands each over as it has it.


class TrusteeKeyLog(NamedTuple):
    trustee: str  # checksummed
    serial: int
    key: bytes  # 33 bytes SEC1-compressed, as PollBook checked its shape
    block_number: int
    log_index: int


class CeremonyStartLog(NamedTuple):
    poll_id: int
    attempt: int
    members: tuple[int, ...]  # poll trustee indices; members[m] is participant m + 1
    keys: tuple[bytes, ...]  # the members' static keys, in the same order
    block_number: int
    log_index: int


class CeremonyMessageLog(NamedTuple):
    poll_id: int
    attempt: int
    trustee_index: int  # the sender: its poll trustee index (the event's `index`)
    kind: int  # a ceremony.MessageKind value
    payload: bytes
    block_number: int
    log_index: int


class CertifiedKeyLog(NamedTuple):
    poll_id: int
    attempt: int
    election_key: bytes  # Y, 33 bytes
    block_number: int
    log_index: int


def _expect(event: DecodedEvent, name: str) -> dict[str, Any]:
    if event.name != name:
        raise EncodingError(f"a {event.name} where a {name} was asked for")
    return event.args


def trustee_key_registered(event: DecodedEvent) -> TrusteeKeyLog:
    """A decoded TrusteeKeyRegistered's fields."""
    a = _expect(event, "TrusteeKeyRegistered")
    return TrusteeKeyLog(a["trustee"], a["serial"], a["key"], event.block_number, event.log_index)


def ceremony_started(event: DecodedEvent) -> CeremonyStartLog:
    """A decoded CeremonyStarted's fields; EncodingError if its members and keys differ in
    length (PollBook never emits such a log). Whether the members are ascending, a subset of
    the previous attempt's and their keys the registered ones is the verifier's to judge."""
    a = _expect(event, "CeremonyStarted")
    if len(a["members"]) != len(a["keys"]):
        raise EncodingError("CeremonyStarted: members and keys differ in length")
    return CeremonyStartLog(a["pollId"], a["attempt"], a["members"], a["keys"], event.block_number, event.log_index)


def ceremony_message_posted(event: DecodedEvent) -> CeremonyMessageLog:
    """A decoded CeremonyMessagePosted's fields (the payload as posted: ceremony.decode_* read it)."""
    a = _expect(event, "CeremonyMessagePosted")
    return CeremonyMessageLog(
        a["pollId"], a["attempt"], a["index"], a["kind"], a["payload"], event.block_number, event.log_index
    )


def election_key_certified(event: DecodedEvent) -> CertifiedKeyLog:
    """A decoded ElectionKeyCertified's fields."""
    a = _expect(event, "ElectionKeyCertified")
    return CertifiedKeyLog(a["pollId"], a["attempt"], a["electionKey"], event.block_number, event.log_index)

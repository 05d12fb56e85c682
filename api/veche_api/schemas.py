"""Request and response bodies (camelCase on the wire). Bytes travel as 0x-hex; every field
is bounded, so no input reaches the database or the crypto with a size it cannot take.

The schemas convert to the protocol core's types at the boundary (`veche_core.ballot.Ballot`,
`veche_core.receipt.Receipt`); they never encode protocol bytes themselves.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from annotated_types import GroupedMetadata
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import core_schema
from starlette.convertors import Convertor, register_url_convertor

MAX_INT = 2**31 - 1  # ids (polls, rewards, charities, requests): a 32-bit INTEGER column everywhere
MAX_SEQUENCE = 2**63 - 1  # a uint64 on chain, bounded by the signed BIGINT column here
# Chain times (opensAt, closesAt: uint64 on chain) mean calendar moments to the API, which
# reads their UTC year: the last second of 9999 UTC bounds them (9999-12-31T23:59:59Z).
MAX_TIME = 253_402_300_799

ADDRESS_REGEX = "0x[0-9a-fA-F]{40}"
ADDRESS_PATTERN = f"^{ADDRESS_REGEX}$"
Address = Annotated[str, StringConstraints(pattern=ADDRESS_PATTERN)]
Hash32 = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{64}$")]
Signature = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")]


# --- text ----------------------------------------------------------------------------------

# Unicode category Cc is exactly U+0000-U+001F and U+007F-U+009F; Cs is U+D800-U+DFFF (a lone
# surrogate: JSON's "\ud800" escape can carry one, UTF-8 cannot encode it). PostgreSQL refuses
# NUL in text, so any of these used to reach the chain (createPoll) and then fail to store.
# The ranges are regex escapes, read alike by Python's re and by ECMA-262 (JSON schema).
_CONTROL_LINE = r"\x00-\x1f\x7f-\x9f"
_CONTROL_MULTILINE = r"\x00-\x08\x0b-\x1f\x7f-\x9f"  # tab (09) and line feed (0A) allowed
_REFUSED = {
    False: re.compile(rf"[{_CONTROL_LINE}\ud800-\udfff]"),
    True: re.compile(rf"[{_CONTROL_MULTILINE}\ud800-\udfff]"),
}


def clean_text(value: str, *, multiline: bool = False, max_length: int | None = None) -> str:
    """`value` in Unicode NFC, or ValueError saying what is refused: control characters
    (category Cc; a multi-line text may hold \\n and \\t) and lone surrogates (Cs). A bound
    applies to the normalised text, the one that is stored and hashed."""
    found = _REFUSED[multiline].search(value)
    if found:
        kind = "a lone surrogate" if unicodedata.category(found.group()) == "Cs" else "a control character"
        raise ValueError(f"{kind} (U+{ord(found.group()):04X}) at position {found.start()}")
    value = unicodedata.normalize("NFC", value)
    if max_length is not None and len(value) > max_length:
        raise ValueError(f"longer than {max_length} characters once normalised (NFC)")
    return value


@dataclass(frozen=True)
class _TextRules:
    """The validation `Text` adds after the length bounds, and the pattern that states it in
    the JSON schema (control characters only: a JSON-schema pattern cannot name a lone
    surrogate portably, so the description says it)."""

    multiline: bool
    max_length: int

    def __get_pydantic_core_schema__(self, source, handler):
        return core_schema.no_info_after_validator_function(
            lambda v: clean_text(v, multiline=self.multiline, max_length=self.max_length), handler(source)
        )

    def __get_pydantic_json_schema__(self, schema, handler):
        out = handler(schema)
        out["pattern"] = f"^[^{_CONTROL_MULTILINE if self.multiline else _CONTROL_LINE}]*$"
        lines = "; tab and line feed allowed" if self.multiline else ""
        out.setdefault("description", f"Unicode text, stored in NFC; no control characters{lines}; no lone surrogates")
        return out


@dataclass(frozen=True)
class Text(GroupedMetadata):
    """The one type of free text a person sends (a question, an option, a district, a name, a
    description), as `Annotated[str, Text(500)]`: bounded, normalised to NFC, without control
    characters or lone surrogates. (The length bounds, then the rules: what pydantic reads from
    `Annotated[str, StringConstraints(...), _TextRules(...)]`.)"""

    max_length: int
    min_length: int = 1
    multiline: bool = False

    def __iter__(self) -> Iterator[object]:
        yield from StringConstraints(min_length=self.min_length, max_length=self.max_length)
        yield _TextRules(self.multiline, self.max_length)


# The JSON-schema key that marks a district: main.create_app's OpenAPI schema lists the
# deployment's own districts (Settings.districts) there as an enum.
DISTRICT_MARK = "x-veche-district"


class _ConfiguredDistrict:
    def __get_pydantic_json_schema__(self, schema, handler):
        return {**handler(schema), DISTRICT_MARK: True}


District = Annotated[str, Text(100), _ConfiguredDistrict()]


class AddressConvertor(Convertor):
    """`{name:address}` in a route path matches only an address, so `/points/{address}` does
    not shadow `/points/donations` (a shadowed path answered OPTIONS with the other route's
    405 and `Allow: GET`). Registered with Starlette when this module is imported, before any
    route is declared."""

    regex = ADDRESS_REGEX

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("address", AddressConvertor())


@dataclass(frozen=True)
class HexBytes(GroupedMetadata):
    """Bytes as 0x-hex, `Annotated[str, HexBytes(max_bytes, min_bytes)]`: whole bytes, bounded."""

    max_bytes: int
    min_bytes: int = 0

    def __iter__(self) -> Iterator[object]:
        yield from StringConstraints(
            pattern=r"^0x([0-9a-fA-F]{2})*$", min_length=2 + 2 * self.min_bytes, max_length=2 + 2 * self.max_bytes
        )


def unhex(value: str) -> bytes:
    return bytes.fromhex(value[2:])


# The integers a float spells exactly: past 2**53 the float JSON parsed is already rounded.
EXACT_FLOAT = 2**53


class Model(BaseModel):
    """A request body. Strict: JSON's true is not the integer 1, nor is "1" (pydantic's lax mode
    takes both), and a string is only a string. A number with no fractional part is an integer,
    as JSON Schema (draft 6 and later, OpenAPI 3.1) defines it and as the published schema
    therefore promises: 2.0 is 2, but 2.5 is refused, and so is a float beyond 2**53, which
    cannot spell an integer exactly. Nested models validate from JSON objects the same way
    (FastAPI and main.FastPost both validate what json.loads gives)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _whole_numbers(cls, data):
        if type(data) is dict and float in map(type, data.values()):  # rare: leave the fast path alone
            return {
                key: int(value) if type(value) is float and value.is_integer() and abs(value) <= EXACT_FLOAT else value
                for key, value in data.items()
            }
        return data


class Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class ErrorDetail(Out):
    code: str = Field(description="stable: `<area>.<problem>`; clients branch on it")
    message: str = Field(description="for people; may change")


class ErrorOut(Out):
    """Every error answer (errors.py renders it): `{"error": {"code", "message"}}`."""

    error: ErrorDetail


# --- operations ----------------------------------------------------------------------------


class DatabaseHealth(Out):
    ok: bool


class ChainHealth(Out):
    ok: bool
    chain_id: int = Field(description="the deployment's chain id")
    block_number: int | None = Field(default=None, description="the node's head; absent when it does not answer")
    last_block_age: int | None = Field(
        default=None, description="seconds since the head's timestamp; absent when the node does not answer"
    )


class QuarantineEntry(Out):
    kind: str = Field(description="the kind of work set aside (`QuarantineKind`)")
    ref: int = Field(description="the ChainTx id, poll id or points request id the work is about")
    reason: str
    failures: int
    since: int
    next_try: int


class RelayHealth(Out):
    """The relay as the process running it wrote it to the database. Only `lagSeconds` and
    `queue` are there when the database does not answer."""

    lag_seconds: float | None = Field(description="age of the oldest unconfirmed ballot; null without a database")
    queue: dict[str, int] = Field(description="ballots per status")
    running: bool | None = Field(default=None, description="some process runs the relay (a fresh heartbeat)")
    heartbeat_age: float | None = None
    chain_checked: bool | None = None
    last_error: str | None = None
    last_error_at: int | None = None
    quarantined: int | None = Field(default=None, description="work items quarantined")
    quarantine: list[QuarantineEntry] | None = Field(default=None, description="the first of them")


class HealthOut(Out):
    """`GET /health`, with 200 or (this process cannot serve: no database or no node) 503."""

    status: Literal["ok", "degraded"]
    problems: list[str]
    database: DatabaseHealth
    chain: ChainHealth
    relay: RelayHealth


class DeploymentOut(Out):
    """The deployment file (`veche_core.deployment.Deployment`)."""

    version: int
    chain_id: int
    poll_book: Address
    city_points: Address
    start_block: int


class RelayOut(Out):
    """A relay of the PollBook (docs/protocol.md §3.8): a key that holds, or held, RELAYER_ROLE."""

    address: Address
    name: str | None = Field(description="who runs it, as it registered (null: never registered)")
    url: str | None = Field(description="where it takes ballots (`POST {url}/ballots`); null: never registered")
    active: bool = Field(description="it holds the relayer role now")
    city: bool = Field(description="this API's own relay: the city's, which also issues the tokens")


class RelaysOut(Out):
    """`GET /relays`: the chain's relays, read from PollBook's events; active ones first."""

    relays: list[RelayOut]


# --- residents -----------------------------------------------------------------------------


class ResidentBase(Model):
    address: Address
    district: District
    birth_year: int = Field(ge=1880, le=2100)


class ResidentCreate(ResidentBase):
    pass


class ResidentPublic(Out):
    address: Address
    district: str
    birth_year: int
    enrolled_at: int


class ImportRow(Out):
    line: int
    address: str | None = None
    error: str | None = None


class ImportReport(Out):
    imported: int
    unchanged: int = 0  # rows already enrolled exactly as in the file
    errors: list[ImportRow]


# --- polls ---------------------------------------------------------------------------------


class Audience(Model):
    """Who may vote: `districts` null means citywide; ages are inclusive, in whole years."""

    districts: list[District] | None = Field(default=None, min_length=1, max_length=64)
    min_age: int | None = Field(default=None, ge=0, le=150)
    max_age: int | None = Field(default=None, ge=0, le=150)


class Trustee(Model):
    """A poll's trustee. v2 polls (the default): the address only; its P-256 static key is the one
    registered on chain (`POST /trustees/keys`). v1 polls (`"keyCeremony": false`): also its X25519
    `publicKey`, which the dealt share is sealed to."""

    address: Address
    public_key: Annotated[str, HexBytes(32, 32)] | None = None  # X25519, v1 only


class PollCreate(Model):
    """A poll to create. `opensAt` and `closesAt` are Unix seconds (chain time), at most
    253402300799, the last second of the year 9999 UTC: a calendar bound that every reader of
    the poll (age limits, the pages, the CLI) can represent."""

    question: Annotated[str, Text(2000, multiline=True)]
    options: list[Annotated[str, Text(500)]] = Field(min_length=2, max_length=255)
    max_choices: int = Field(default=1, ge=1, le=255)
    audience: Audience = Field(default_factory=Audience)
    opens_at: int = Field(ge=0, le=MAX_TIME)
    closes_at: int = Field(ge=0, le=MAX_TIME)
    points: int = Field(default=20, ge=0, le=1_000_000)
    # PollBook's bounds; v1 (SLIP-39) narrows them to 16 trustees, and threshold 1 only for one.
    trustees: list[Trustee] = Field(min_length=1, max_length=255)
    threshold: int = Field(ge=1, le=255)
    key_ceremony: bool = Field(
        default=True,
        description="true (the default, protocol v2): the trustees make the election key in a key ceremony "
        "on chain, which must end before opensAt (VECHE_CEREMONY_SECONDS); false (protocol v1, kept for "
        "compatibility): the API deals the key, and so holds the secret at creation — the verifier says so",
    )


class StratumPublic(Out):
    """A stratum of a poll (its index is the stratum on chain): the districts it holds, merged
    at creation so that each holds at least the poll's `minStratum` eligible residents."""

    name: str = Field(description="its districts, joined by ' + '")
    districts: list[str]
    register_size: int | None = Field(description="eligible residents when the poll was created (null: not counted)")


class PollPublic(Out):
    id: int
    question: str
    options: list[str]
    max_choices: int
    audience: dict[str, Any]
    strata: list[StratumPublic]
    min_stratum: int = Field(description="the least eligible residents of a stratum when the poll was created")
    opens_at: int
    closes_at: int
    points: int
    version: int = Field(description="1: the election key was dealt at creation; 2: the trustees' ceremony makes it")
    election_key: str | None = Field(
        description="what ballots are sealed to: v1 the X25519 key (32 bytes), v2 the certified joint P-256 key "
        "(33 bytes, SEC1 compressed); null while a v2 poll's ceremony has not certified it"
    )
    issuer_keys: list[str]
    trustees: list[Address]
    threshold: int
    metadata_hash: str
    chain_id: int
    poll_book: Address
    status: str
    resident_stratum: int | None = None


class PollCreated(Out):
    poll: PollPublic
    sealed_shares: list[str]
    transaction_hash: str


class EligiblePollsQuery(Model):
    """`POST /polls/eligible`: the resident's address travels in the body, never in a URL."""

    resident: Address
    include_closed: bool = False


# --- tokens --------------------------------------------------------------------------------


class IssuanceRequestIn(Model):
    resident: Address
    poll_id: int = Field(ge=1, le=MAX_INT)
    stratum: int = Field(ge=0, le=2**32 - 1)
    blinded_message: Annotated[str, HexBytes(512, 1)]
    deadline: int = Field(ge=0, le=2**63 - 1)
    signature: Signature


class IssuanceOut(Out):
    poll_id: int
    stratum: int
    blind_signature: str
    leaf_index: int = Field(description="the resident's position in the stratum's committed register")
    proof: list[str] = Field(
        description="the register proof the relay records with the request (docs/protocol.md §3.11), for the "
        "resident to check against the poll's RegisterCommitted"
    )


# --- ballots -------------------------------------------------------------------------------


class BallotIn(Model):
    """A ballot as `veche_core.ballot.Ballot`; `chainId` optional (rejected if not ours)."""

    poll_id: int = Field(ge=1, le=MAX_INT)
    token: Address
    sequence: int = Field(ge=1, le=MAX_SEQUENCE)
    stratum: int = Field(ge=0, le=2**32 - 1)
    ciphertext: Annotated[str, HexBytes(512, 1)]
    token_signature: Annotated[str, HexBytes(1024, 1)]
    signature: Signature
    chain_id: int | None = Field(default=None, ge=0, le=2**64)


class ReceiptOut(Out):
    """`veche_core.receipt.Receipt.to_dict()`: the relayer's signed acknowledgement, with the
    transaction and block once the ballot is on chain."""

    version: int
    chain_id: int
    poll_book: Address
    poll_id: int
    token: Address
    sequence: int
    ballot_hash: Hash32
    accepted_at: int
    relayer: Address
    signature: Signature
    transaction_hash: Hash32 | None = None
    block_number: int | None = None


class BallotStatus(Out):
    ballot_hash: Hash32
    status: str
    reason: str | None = None
    receipt: ReceiptOut


# --- key shares, points --------------------------------------------------------------------


class KeyShareIn(Model):
    index: int = Field(ge=0, le=255)
    share: Annotated[str, HexBytes(256, 1)]
    signature: Signature


class RedemptionIn(Model):
    resident: Address
    reward_id: int = Field(ge=1, le=MAX_INT)
    nonce: int = Field(ge=0, le=MAX_INT)
    deadline: int = Field(ge=0, le=2**63 - 1)
    signature: Signature


class DonationIn(Model):
    resident: Address
    charity_id: int = Field(ge=1, le=MAX_INT)
    amount: int = Field(ge=1, le=2**62)
    nonce: int = Field(ge=0, le=MAX_INT)
    deadline: int = Field(ge=0, le=2**63 - 1)
    signature: Signature


class PointsRequestOut(Out):
    id: int
    kind: str
    resident: Address
    status: str
    reason: str | None = None
    transaction_hash: str | None = None
    block_number: int | None = None


class RewardCreate(Model):
    name: Annotated[str, Text(200)]
    description: Annotated[str, Text(2000, min_length=0, multiline=True)] = ""
    price: int = Field(ge=1, le=2**62)
    stock: int = Field(ge=0, le=2**62)


class CharityCreate(Model):
    name: Annotated[str, Text(200)]
    description: Annotated[str, Text(2000, min_length=0, multiline=True)] = ""
    account: Address


class PointsCreditedEntry(Out):
    event: Literal["PointsCredited"]
    block: int
    transaction_hash: Hash32
    poll_id: int
    amount: int


class RewardRedeemedEntry(Out):
    event: Literal["RewardRedeemed"]
    block: int
    transaction_hash: Hash32
    reward_id: int
    amount: int = Field(description="minus the reward's price")


class PointsDonatedEntry(Out):
    event: Literal["PointsDonated"]
    block: int
    transaction_hash: Hash32
    charity_id: int
    amount: int = Field(description="minus the amount donated")


PointsEntry = Annotated[PointsCreditedEntry | RewardRedeemedEntry | PointsDonatedEntry, Field(discriminator="event")]


class PointsOut(Out):
    resident: Address
    balance: int
    nonce: int = Field(description="the nonce the resident's next signed redemption or donation carries")
    history: list[PointsEntry] = Field(
        description="the resident's point events (credits, redemptions, donations) read from the chain"
    )


class RewardCreated(Out):
    id: int
    metadata_hash: Hash32
    price: int
    stock: int


class RewardOut(Out):
    id: int
    name: str | None
    description: str | None
    metadata_hash: Hash32
    price: int
    stock: int
    active: bool


class CharityCreated(Out):
    id: int
    account: Address
    metadata_hash: Hash32


class CharityOut(Out):
    id: int
    name: str | None
    description: str | None
    account: Address
    metadata_hash: Hash32
    active: bool
    balance: int


class KeyShareOut(Out):
    poll_id: int
    index: int
    transaction_hash: Hash32


# --- protocol v2: trustee keys and the key ceremony ----------------------------------------

Point = Annotated[str, StringConstraints(pattern=r"^0x0[23][0-9a-fA-F]{64}$")]  # SEC1-compressed P-256


class TrusteeKeyIn(Model):
    """A trustee's signed registration (EIP-712 `TrusteeKey(trustee, keccak256(key), serial)`)."""

    trustee: Address
    key: Point
    serial: int = Field(ge=1, le=2**64 - 1, description="the trustee's current serial + 1 (1 the first time)")
    signature: Signature


class TrusteeKeyOut(Out):
    trustee: Address
    key: str | None = Field(description="the registered static key (33 bytes), null if none")
    serial: int = Field(description="the registration's serial (0: none; the next one is serial + 1)")
    transaction_hash: Hash32 | None = None


class CeremonyMessageIn(Model):
    """A trustee's signed ceremony message (EIP-712 `CeremonyMessage(pollId, attempt, index, kind,
    keccak256(payload))`)."""

    attempt: int = Field(ge=1, le=255)
    index: int = Field(ge=0, le=255, description="the sender's poll trustee index")
    kind: int = Field(ge=0, le=255, description="1 round 1, 2 complaint, 3 certification")
    payload: Annotated[str, HexBytes(4096, 1)]
    signature: Signature


class CeremonyMessageOut(Out):
    poll_id: int
    attempt: int
    index: int
    kind: int
    transaction_hash: Hash32
    replay: bool = Field(default=False, description="this very message was on chain already (nothing sent)")
    certified: bool = Field(description="the poll's election key is certified")
    election_key: str | None


class CeremonyRestartIn(Model):
    excluded: list[Annotated[int, Field(ge=0, le=255)]] = Field(default_factory=list, max_length=255)


class CeremonyMessagePublic(Out):
    index: int = Field(description="the sender's poll trustee index")
    kind: int
    payload: str
    block_number: int
    transaction_hash: Hash32


class CeremonyMember(Out):
    index: int = Field(description="poll trustee index")
    member: int = Field(description="the DKG participant id in this attempt (1..n)")
    address: Address
    key: str = Field(description="its static key in this attempt (33 bytes)")
    round1: bool
    certified: bool
    complained_about: list[int] = Field(description="the trustee indices this member accused in this attempt")
    next: str = Field(
        description='"round1", "wait", "certify" (round 2, then a complaint or the certification), "done", '
        '"frozen: the administrator must restart" or "closed: the poll opened without a certified key"'
    )


class CeremonyFault(Out):
    index: int
    address: Address
    cause: str


class CeremonyState(Out):
    """A v2 poll's key ceremony as the chain holds it (the current attempt)."""

    poll_id: int
    attempt: int
    threshold: int
    opens_at: int
    round1_deadline: int = Field(
        description="chain time from which a member that has posted no round 1 is at fault: halfway from the "
        "attempt's start to opensAt"
    )
    members: list[CeremonyMember]
    excluded: list[int] = Field(description="poll trustee indices left out of this attempt")
    frozen: bool = Field(description="a complaint was posted in this attempt: it can no longer certify")
    certified: bool
    election_key: str | None
    at_fault: list[CeremonyFault] = Field(
        description="members this attempt shows at fault (no round 1 by the round-1 deadline, a malformed one, "
        "a complaint that holds against them, or a complaint of theirs the evidence refutes): whom a restart "
        "may exclude"
    )
    messages: list[CeremonyMessagePublic] = Field(description="the attempt's messages, in chain order")


class ReceiptCodeOut(Out):
    code: str = Field(description="the receipt's short code, in groups of four")
    ballot_hashes: list[Hash32]


def schema_models() -> list[type[BaseModel]]:
    """Every request and response model defined here (main's OpenAPI schema reads their own
    JSON schemas)."""
    return [
        m
        for m in globals().values()
        if isinstance(m, type) and issubclass(m, BaseModel) and m not in (Model, Out) and m.__module__ == __name__
    ]


class StratumCounts(Out):
    """A stratum's counted ballots and their counts per option. Every stratum is shown: each was
    made at creation to hold at least the poll's `minStratum` eligible residents."""

    stratum: int
    name: str
    districts: list[str]
    register_size: int | None
    ballots: int
    counts: list[int]


class TallyOut(Out):
    poll_id: int
    counts: list[int]
    dataset_hash: str
    ballots_counted: int
    per_stratum: list[StratumCounts]
    transaction_hash: str | None = None


class DatasetRowOut(Out):
    token: Address
    stratum: int
    choice: list[int]
    block: int


class DatasetOut(Out):
    """The anonymised dataset as JSON (`veche_core.dataset.to_json`)."""

    version: int
    poll_id: int
    dataset_hash: Hash32
    rows: list[DatasetRowOut]

    @model_validator(mode="after")
    def _consistent(self):
        return self

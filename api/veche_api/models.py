"""Database tables (SQLModel). The API's request and response schemas are in `schemas.py`.

Integers that mirror uint64/uint256 chain values are bounded by the schemas to what a signed
64-bit column holds (both SQLite and PostgreSQL use BIGINT).

The relay is a write-ahead log: a `ChainTx` row holds a signed raw transaction, its nonce and
hash *before* it is broadcast, and the items it carries (ballots, issuances, points requests, a
poll being created) point at it. After a crash the relay reads the receipt of every unfinished
ChainTx, or sends the same raw bytes again; nothing is ever signed twice for the same items with
different nonces. A transaction left unmined is re-signed at a higher fee with the SAME nonce
(a `TxVersion` keeps each earlier hash), so at most one version can ever be mined.

Statuses and kinds are `StrEnum`s nested in their table (`Ballot.Status.CONFIRMED`,
`ChainTx.Kind.POLL`): the columns stay plain text, and the relay has one handler per
`ChainTx.Kind` (relay/loop.py refuses to start without one for each).
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Column, Index, LargeBinary, Table, UniqueConstraint
from sqlmodel import Field, SQLModel


def _now() -> int:
    return int(time.time())


def _big(**kw: Any) -> Any:
    return Field(sa_column=Column(BigInteger, **kw))


def table_of(model: type[SQLModel]) -> Table:
    """A table model's Core table, for the bulk statements that skip the ORM."""
    # SQLAlchemy's declarative mapping sets `__table__` on every table model; sqlmodel's
    # SQLModel does not declare it in its types.
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


class Resident(SQLModel, table=True):
    # A poll's register is counted per (district, birth year) when it is created
    # (eligibility.count_eligible): this index answers that without reading the table
    # (1,000,000 residents in SQLite: 0.7 s; 10.5 s without it).
    __table_args__ = (Index("ix_resident_district_birth_year", "district", "birth_year"),)

    address: str = Field(primary_key=True, max_length=42)  # checksummed
    district: str = Field(max_length=100)
    birth_year: int
    enrolled_at: int = Field(default_factory=_now)


class Poll(SQLModel, table=True):
    id: int = Field(primary_key=True)  # the chain's poll id
    question: str
    options_json: str
    max_choices: int
    audience_json: str
    strata_json: str  # strata.PollStrata: the districts of each stratum (index = stratum), register sizes
    opens_at: int = _big(nullable=False)
    closes_at: int = _big(nullable=False)
    points: int
    version: int = 1  # 2: the trustees' key ceremony makes the election key
    election_key: str | None = None  # hex; v2: the certified joint key, None until certified
    trustees_json: str
    threshold: int
    metadata_hash: str  # hex
    created_at: int = Field(default_factory=_now)
    create_tx: str
    # Filled in by close-and-publish.
    published: bool = False
    counts_json: str | None = None
    per_stratum_json: str | None = None
    dataset_hash: str | None = None
    dataset_csv: str | None = None
    publish_tx: str | None = None


class IssuerKey(SQLModel, table=True):
    poll_id: int = Field(primary_key=True, foreign_key="poll.id")
    stratum: int = Field(primary_key=True)
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sealed_private_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class RegisterEntry(SQLModel, table=True):
    """A poll's committed register (docs/protocol.md §3.11): resident `address` is leaf `index`
    of stratum `stratum`'s tree, whose root and size went to createPoll. Fixed at creation."""

    __table_args__ = (UniqueConstraint("poll_id", "address"),)

    poll_id: int = Field(primary_key=True, foreign_key="poll.id")
    stratum: int = Field(primary_key=True)
    index: int = Field(primary_key=True)
    address: str = Field(max_length=42)


class ChainTx(SQLModel, table=True):
    """One signed transaction of the API's own accounts, written before it is broadcast."""

    __table_args__ = (UniqueConstraint("sender", "nonce"), Index("ix_chaintx_status", "status"))

    class Kind(StrEnum):
        """What the transaction carries (and so which relay handler finishes it)."""

        BALLOTS = "ballots"  # castBallots: a poll's batch of Ballot rows
        ISSUANCES = "issuances"  # recordIssuances: Issuance rows' records
        CREDITS = "credits"  # retired (v1's CityPoints.credit): recordIssuances credits since v2
        REDEEM = "redeem"  # one PointsRequest
        DONATE = "donate"  # one PointsRequest
        POLL = "poll"  # createPoll: one PollCreation

    class Status(StrEnum):
        SIGNED = "signed"  # written, maybe not broadcast
        SENT = "sent"
        MINED = "mined"
        REVERTED = "reverted"
        DROPPED = "dropped"  # its nonce went to a transaction that is not ours

    id: int | None = Field(default=None, primary_key=True)
    sender: str = Field(max_length=42)
    nonce: int = _big(nullable=False)
    kind: str  # a Kind
    poll_id: int | None = None
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # the latest version signed
    tx_hash: str = Field(max_length=66, index=True)  # the latest version's; once mined, the mined one's
    # signed → sent → mined | reverted | dropped
    status: str = Status.SIGNED
    item_count: int = 0
    attempts: int = 0
    last_error: str | None = None
    created_at: float = Field(default_factory=time.time)
    sent_at: float | None = None
    block_number: int | None = None


class TxVersion(SQLModel, table=True):
    """An earlier version of a ChainTx: the same nonce and calldata at a lower gas price,
    replaced because it sat unmined. A node may still mine it instead of the latest, so the
    receipt of any version finishes the ChainTx (one nonce: at most one version is mined)."""

    id: int | None = Field(default=None, primary_key=True)
    chain_tx_id: int = Field(foreign_key="chaintx.id", index=True)
    tx_hash: str = Field(max_length=66)
    gas_price: int = _big(nullable=False)
    replaced_at: float = Field(default_factory=time.time)


class PollCreation(SQLModel, table=True):
    """A poll on its way to the chain, written with its signed createPoll transaction before
    the broadcast: after a crash the relay finishes it from the receipt (the poll id is the
    PollCreated event's), so the chain never holds a poll whose issuer keys the API lost.

    The issuer private keys are sealed as for `IssuerKey`, under the context of poll id
    `DRAFT_POLL_BASE + id` (no chain poll id gets there), and sealed again under the real poll
    id when the poll is created. The trustees' sealed shares are kept so that the admin can
    fetch them again (`GET /admin/polls/{id}/creation`) if the creating request's answer was
    lost: without them a poll could never be counted. Only each trustee can open its share."""

    class Status(StrEnum):
        PENDING = "pending"
        CREATED = "created"
        FAILED = "failed"

    id: int | None = Field(default=None, primary_key=True)
    tx_id: int = Field(index=True)
    status: str = Status.PENDING  # pending → created | failed
    reason: str | None = None
    poll_id: int | None = None
    poll_json: str  # the Poll columns but id and create_tx
    issuer_keys_json: str  # [[public key hex, draft-sealed private key hex], ...] by stratum
    sealed_shares_json: str
    register_json: str = "[]"  # per stratum, the register's addresses in leaf order
    created_at: float = Field(default_factory=time.time)


DRAFT_POLL_BASE = 2**255


class Issuance(SQLModel, table=True):
    """One token per resident and poll (the unique constraint is the rule).

    `blinded_message_hash` (keccak256 of the blinded message, as in the signed request) and the
    `blind_signature` answered make a retry of the same request get the same answer without a
    second RSA signature. Storing them reveals nothing the issuer did not already see: they are
    exactly the issuer's view of the exchange, and RFC 9474's blindness holds against a signer
    that keeps its whole view. The blinded message is the token message times a random r^e mod
    n, so it and its signature are independent of the token; only the resident's `inv` (never
    sent) turns the blind signature into the token's signature."""

    __table_args__ = (UniqueConstraint("poll_id", "resident"), Index("ix_issuance_status", "status"))

    class Status(StrEnum):
        PENDING = "pending"
        SENT = "sent"
        RECORDED = "recorded"  # recorded on chain and credited
        FAILED = "failed"

    id: int | None = Field(default=None, primary_key=True)
    poll_id: int = Field(foreign_key="poll.id")
    resident: str = Field(max_length=42)
    stratum: int
    pseudonym: str | None = Field(default=None, max_length=66)  # v1 records only
    blinded_message_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # The signed request and the resident's leaf: what recordIssuances puts on chain (§3.12).
    deadline: int = _big(nullable=False)
    request_signature: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf_index: int = _big(nullable=False)
    blind_signature: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    issued_at: int = Field(default_factory=_now)
    status: str = Status.PENDING  # pending → sent → recorded | failed
    record_tx_id: int | None = None
    credit_tx_id: int | None = None
    recorded: bool = False
    credited: bool = False
    reason: str | None = None


class TokenState(SQLModel, table=True):
    """The highest sequence accepted per (poll, token): updated with a conditional UPDATE."""

    poll_id: int = Field(primary_key=True)
    token: str = Field(primary_key=True, max_length=42)
    last_sequence: int = _big(nullable=False)


class Ballot(SQLModel, table=True):
    """An accepted ballot and its way to the chain: the relay queue."""

    __table_args__ = (
        UniqueConstraint("poll_id", "token", "sequence"),
        Index("ix_ballot_status_id", "status", "id"),
    )

    class Status(StrEnum):
        ACCEPTED = "accepted"  # queued for the relay
        SENT = "sent"
        CONFIRMED = "confirmed"
        REJECTED = "rejected"  # by the contract (BallotRejected)
        FAILED = "failed"  # given up on; `reason` says why (poll.closed, chain.<error>, missing from the receipt)

    id: int | None = Field(default=None, primary_key=True)
    ballot_hash: str = Field(max_length=66, unique=True)
    poll_id: int
    token: str = Field(max_length=42)
    sequence: int = _big(nullable=False)
    stratum: int = _big(nullable=False)
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    token_credential: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signature: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    accepted_at: int = _big(nullable=False)
    queued_at: float = Field(default_factory=time.time)
    receipt_signature: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # accepted → sent → confirmed | rejected | failed
    status: str = Status.ACCEPTED
    reason: str | None = None
    tx_id: int | None = None
    tx_hash: str | None = None
    block_number: int | None = None


class PointsRequest(SQLModel, table=True):
    """A resident-signed redemption or donation, relayed to CityPoints."""

    __table_args__ = (UniqueConstraint("resident", "nonce"),)

    class Status(StrEnum):
        PENDING = "pending"
        SENT = "sent"
        CONFIRMED = "confirmed"
        FAILED = "failed"

    id: int | None = Field(default=None, primary_key=True)
    kind: str  # ChainTx.Kind.REDEEM or DONATE
    resident: str = Field(max_length=42)
    target_id: int  # reward id or charity id
    amount: int = _big(nullable=False)  # donation amount (0 for a redemption)
    nonce: int = _big(nullable=False)
    deadline: int = _big(nullable=False)
    signature: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: int = Field(default_factory=_now)
    status: str = Status.PENDING  # pending → sent → confirmed | failed
    reason: str | None = None
    tx_id: int | None = None
    tx_hash: str | None = None
    block_number: int | None = None


class Reward(SQLModel, table=True):
    id: int = Field(primary_key=True)  # the chain's reward id
    name: str
    description: str = ""
    metadata_hash: str


class Charity(SQLModel, table=True):
    id: int = Field(primary_key=True)  # the chain's charity id
    name: str
    description: str = ""
    account: str = Field(max_length=42)
    metadata_hash: str


class RelayStatus(SQLModel, table=True):
    """The relay's own account of itself, written by the process that runs it (one row): every
    API process answers /health from here, not from its own standby thread."""

    id: int = Field(default=1, primary_key=True)
    holder: str = Field(max_length=200)  # host:pid of the process running the relay
    started_at: float
    heartbeat_at: float  # written about once a second while the relay loop runs (or backs off)
    last_error: str | None = Field(default=None, max_length=400)  # scrubbed of credentials
    last_error_at: float | None = None
    chain_checked: bool = False  # the node answered with the deployment's chain id


class Quarantine(SQLModel, table=True):
    """Work the relay set aside because it failed three times in a row for a reason that is not
    an unreachable node or database — one bad item must not stop the rest. The items keep their
    own status (a quarantined poll's ballots stay `accepted`); the relay tries again every
    `quarantine_retry` seconds and deletes the row when the work succeeds."""

    __table_args__ = (UniqueConstraint("kind", "ref"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # QuarantineKind
    ref: int = _big(
        nullable=False
    )  # ChainTx id (finish), poll id (ballots, issuances, credits), PointsRequest id (points)
    reason: str = Field(max_length=400)  # the exception's type and message, scrubbed of credentials
    failures: int = 0
    since: float = Field(default_factory=time.time)
    retry_at: float


class RateBucket(SQLModel, table=True):
    """One rate-limit bucket (ratelimit.py): shared by every API process through the database."""

    key: str = Field(primary_key=True, max_length=200)  # "<limiter>:<resident or poll:token>"
    tokens: float
    at: float = Field(index=True)

"""What the verifier reads from the chain, as typed records: the data every other module of the
verifier shares (chain.py fills them, work.py's workers send ballots back in them, election_key
rebuilds a poll's key from them, checks.py judges them). Data only: this module imports nothing
of the verifier, so the others import it and not each other.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from veche_core.deployment import Deployment
from veche_core.events import CeremonyMessageLog, CeremonyStartLog, CertifiedKeyLog
from veche_core.relays import Relay


class CastBallot(NamedTuple):
    """One BallotCast as a worker left it: what the checks after the scan need (no ciphertext,
    no signatures), with the worker's findings for checks 2 and 3 and, when the election key
    was rebuilt before the scan, the ballot's choice (check 8). Workers send these as plain
    tuples (they pickle ~8x faster than named ones) and this process names them."""

    token: str  # lower-case 0x-hex, as in the dataset (reports show EIP-55)
    sequence: int
    stratum: int
    block_number: int
    log_index: int
    token_error: str | None  # check 2
    signature_error: str | None  # check 3
    choice: tuple[int, ...] | str | None = None  # the options, why it is invalid, or not opened
    ballot_hash: bytes | None = None  # keccak256 of the ballot's encoding, when asked for (receipts)
    digest: bytes | None = None  # its EIP-712 digest: what the token signed (None if it did not decode)
    relayer: str | None = None  # lower-case 0x-hex: the relay its BallotsRelayed names (None: not named)


class IssuanceCheck(NamedTuple):
    """One recorded issuance (an IssuancesRecorded item) as a worker judged it for check 13:
    its resident and stratum, and why its request or register proof is not valid (None: valid)."""

    resident: bytes  # 20 raw bytes
    stratum: int
    error: str | None


#: CastBallot's fields as the plain tuple a worker sends (`CastBallot._make` names them).
CastFields = tuple[
    str,
    int,
    int,
    int,
    int,
    str | None,
    str | None,
    tuple[int, ...] | str | None,
    bytes | None,
    bytes | None,
    str | None,
]


@dataclass(frozen=True)
class PollParameters:
    """A poll's PollCreated event as the chain holds it (check 1 judges it, not this class)."""

    metadata_hash: bytes
    option_count: int
    max_choices: int
    opens_at: int
    closes_at: int
    points: int
    election_key: bytes  # v1: the dealt X25519 public key; v2: zero (the trustees' ceremony makes it)
    issuer_keys: tuple[bytes, ...]  # §3.1 encodings, one per stratum (not decoded here)
    trustees: tuple[str, ...]  # EIP-55 addresses
    threshold: int
    block: int  # where the poll was created

    @classmethod
    def from_event(cls, args: dict[str, Any], block: int) -> PollParameters:
        return cls(
            metadata_hash=args["metadataHash"],
            option_count=args["optionCount"],
            max_choices=args["maxChoices"],
            opens_at=args["opensAt"],
            closes_at=args["closesAt"],
            points=args["points"],
            election_key=args["electionKey"],
            issuer_keys=tuple(args["issuerKeys"]),
            trustees=tuple(args["trustees"]),
            threshold=args["threshold"],
            block=block,
        )

    @property
    def version(self) -> int:
        """2 when the trustees make the key on chain (docs/protocol.md §3.13), else 1 (dealt)."""
        return 2 if self.election_key == bytes(32) else 1


@dataclass
class CeremonyRecord:
    """A v2 poll's key ceremony as the chain holds it (ceremony.judge judges it)."""

    starts: list[CeremonyStartLog] = field(default_factory=list)
    messages: list[CeremonyMessageLog] = field(default_factory=list)
    certified: list[CertifiedKeyLog] = field(default_factory=list)
    certified_at: int | None = None  # the timestamp of the block that certified the key
    started_at: dict[int, int] = field(default_factory=dict)  # attempt → its CeremonyStarted block's timestamp


@dataclass(frozen=True)
class CertifiedKey:
    """The certified attempt, as the release (check 15) and the ballots (check 16) need it."""

    attempt: int
    members: tuple[int, ...]  # poll trustee indices; members[m - 1] is member id m
    group_key: bytes  # Y, 33 bytes
    verification_shares: tuple[bytes, ...]  # Y_m, by member id - 1

    def member_id(self, index: int) -> int | None:
        return self.members.index(index) + 1 if index in self.members else None


@dataclass
class CeremonyOutcome:
    """Check 14's findings (ceremony.judge), and the certified key when the ceremony's transcript holds."""

    failures: list[str] = field(default_factory=list)
    certified: CertifiedKey | None = None
    attempts: int = 0
    excluded: list[str] = field(default_factory=list)  # who was excluded, and the cause shown
    pending: str | None = None  # no key certified yet: why (not a failure while the poll is not open)


@dataclass
class PollRecord:
    poll_id: int
    created: PollParameters | None = None
    issued: Counter[int] = field(
        default_factory=Counter
    )  # stratum -> issuances (TokensIssued + IssuancesRecorded entries)
    register: list[tuple[bytes, int]] | None = None  # RegisterCommitted: (root, size) per stratum
    issuances: list[IssuanceCheck] = field(default_factory=list)  # every IssuancesRecorded item, in chain order
    pseudonymous: int = 0  # protocol v1 TokensIssued entries: no request, no register behind them
    ballots: list[CastBallot] = field(default_factory=list)  # every BallotCast, in chain order
    shares: list[dict[str, Any]] = field(default_factory=list)  # index, trustee, share, block
    results: list[dict[str, Any]] = field(default_factory=list)  # counts, datasetHash, block
    credits: list[tuple[bytes, int]] = field(default_factory=list)  # (resident's 20 bytes, amount)
    undecodable: list[str] = field(default_factory=list)  # logs that did not decode
    election_key: Rebuilt | None = None  # rebuilt from the shares before the scan opened the ballots
    ceremony: CeremonyRecord = field(default_factory=CeremonyRecord)  # v2 polls
    ceremony_outcome: CeremonyOutcome | None = None  # v2: check 14's judgement, made before the shares are used


@dataclass
class ChainSnapshot:
    """Every poll of a deployment, read at one head block."""

    deployment: Deployment
    chain_id: int
    head: int
    head_hash: str  # so that two observers can tell they read the same chain
    head_time: int  # the head block's timestamp: the chain's "now" (is a poll still open?)
    polls: dict[int, PollRecord]
    block_timestamps: dict[int, int]
    balances_by_events: dict[str, int] = field(default_factory=dict)  # when every poll was read
    relays: dict[str, Relay] = field(default_factory=dict)  # by lower-case address: every RELAYER_ROLE holder


@dataclass
class Rebuilt:
    secret: bytes | None  # None: not enough usable shares, or they do not give the election key (v1:
    # the X25519 secret; v2: the joint secret scalar, 32 bytes big-endian)
    failures: list[str] = field(default_factory=list)
    missing: str | None = None  # why it could not even be tried

"""Chain state of polls, read from a node's JSON-RPC alone: events in, typed records out.

Nothing here judges: the records hold what the chain says, malformed parts included, so that the
checks can fail on them by number instead of this module raising. Two phases: this process
reads the few per-poll events (parameters, shares, results, points); the bulk — every TokenIssued
and BallotCast — is read, decoded and signature-checked by the worker processes, each over its
own block range (work.scan_range), so reading scales with the cores too.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from veche_core._keccak import keccak

from veche_core import events
from veche_core.deployment import Deployment
from veche_core.errors import EncodingError
from veche_core.rpc import RpcClient

# The events every resident produces: read in bulk by the worker processes.
BULK_EVENTS = (events.TOKEN_ISSUED, events.BALLOT_CAST)


@dataclass(frozen=True)
class CastBallot:
    """One BallotCast event: the whole ballot and where it was included."""

    token: str
    sequence: int
    stratum: int
    ciphertext: bytes
    token_signature: bytes
    signature: bytes
    block_number: int
    log_index: int
    transaction_hash: bytes

    @property
    def position(self) -> tuple[int, int]:
        return (self.block_number, self.log_index)


@dataclass(frozen=True)
class Examined:
    """A BallotCast as a worker left it: decoded (or None) with its check 2 and 3 findings."""

    ballot: CastBallot | None
    token_error: str | None
    signature_error: str | None
    block_number: int


@dataclass
class PollRecord:
    poll_id: int
    created: dict[str, Any] | None = None
    issued: Counter = field(default_factory=Counter)  # stratum -> TokenIssued events
    examined: list[Examined] = field(default_factory=list)  # every BallotCast, with checks 2 and 3
    rejected: list[dict[str, Any]] = field(default_factory=list)
    shares: list[dict[str, Any]] = field(default_factory=list)  # index, trustee, share, block
    results: list[dict[str, Any]] = field(default_factory=list)  # counts, datasetHash, block
    credits: list[tuple[str, int]] = field(default_factory=list)  # (resident, amount)
    undecodable: list[str] = field(default_factory=list)  # logs that did not decode


@dataclass
class ChainSnapshot:
    """Every poll of a deployment, read at one head block."""

    deployment: Deployment
    chain_id: int
    head: int
    polls: dict[int, PollRecord]
    block_timestamps: dict[int, int]
    balances_by_events: dict[str, int] = field(default_factory=dict)


def read_snapshot(
    client: RpcClient,
    deployment: Deployment,
    poll_id: int | None = None,
    *,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> ChainSnapshot:
    """Every Veche event of the deployment (or of one poll) up to the current head.

    `progress(done, total)` is told as block ranges of the bulk phase complete.
    """
    chain_id = client.chain_id()
    head = client.block_number()
    poll_topic = None if poll_id is None else "0x" + poll_id.to_bytes(32, "big").hex()
    polls: dict[int, PollRecord] = {}
    balances: dict[str, int] = defaultdict(int)
    undecodable: list[str] = []

    def record(pid: int) -> PollRecord:
        return polls.setdefault(pid, PollRecord(pid))

    few = [spec for spec in events.POLL_BOOK_EVENTS if spec not in BULK_EVENTS]
    poll_book_topics: list[Any] = [["0x" + spec.topic0.hex() for spec in few]]
    if poll_topic:
        poll_book_topics.append(poll_topic)
    for log in client.iter_logs(deployment.poll_book, poll_book_topics, deployment.start_block, head):
        event = _decode_noting(log, undecodable)
        if event is None:
            continue
        args = event.args
        poll = record(args["pollId"])
        if event.name == "PollCreated":
            if poll.created is None:
                poll.created = {**args, "block": event.block_number}
            else:
                poll.undecodable.append("a second PollCreated for the same poll id")
        elif event.name == "BallotRejected":
            poll.rejected.append({**args, "block": event.block_number})
        elif event.name == "KeyShareSubmitted":
            poll.shares.append({**args, "block": event.block_number})
        elif event.name == "ResultPublished":
            poll.results.append({**args, "block": event.block_number})

    credit_topics = [["0x" + spec.topic0.hex() for spec in events.CITY_POINTS_EVENTS]]
    for log in client.iter_logs(deployment.city_points, credit_topics, deployment.start_block, head):
        event = _decode_noting(log, undecodable)
        if event is None:
            continue
        args = event.args
        resident = args["resident"]
        if event.name == "PointsCredited":
            balances[resident] += args["amount"]
            if poll_id is None or args["pollId"] == poll_id:
                record(args["pollId"]).credits.append((resident, args["amount"]))
        elif event.name == "RewardRedeemed":
            balances[resident] -= args["price"]
        elif event.name == "PointsDonated":
            balances[resident] -= args["amount"]

    from . import work  # the bulk phase runs in worker processes

    stamps: dict[int, int] = {}
    for part in work.scan(client.url, deployment, polls, poll_topic, head, workers, progress):
        stamps.update(part.block_timestamps)
        undecodable.extend(part.undecodable)
        for pid, stratum_counts in part.issued.items():
            record(pid).issued.update(stratum_counts)
        for pid, examined in part.examined.items():
            record(pid).examined.extend(examined)
    for poll in polls.values():
        poll.undecodable.extend(undecodable)
        poll.examined.sort(key=lambda e: (e.block_number, e.ballot.log_index if e.ballot else -1))
    return ChainSnapshot(
        deployment=deployment,
        chain_id=chain_id,
        head=head,
        polls=polls,
        block_timestamps=stamps,
        balances_by_events=dict(balances),
    )


def _decode_noting(log: dict, undecodable: list[str]) -> events.DecodedEvent | None:
    """The decoded event, or None with the reason noted (check 1 then fails: fail closed)."""
    try:
        return events.decode_log(log)
    except EncodingError as exc:
        undecodable.append(f"block {log.get('blockNumber')}: {exc}")
        return None


def decode_ballot(event: events.DecodedEvent) -> CastBallot:
    """A decoded BallotCast event as the verifier's record."""
    args = event.args
    return CastBallot(
        token=args["token"],
        sequence=args["sequence"],
        stratum=args["stratum"],
        ciphertext=args["ciphertext"],
        token_signature=args["tokenSignature"],
        signature=args["signature"],
        block_number=event.block_number,
        log_index=event.log_index,
        transaction_hash=event.transaction_hash,
    )


def _selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


def has_role(client: RpcClient, contract: str, role: str, account: str) -> bool:
    """AccessControl.hasRole(keccak256(role), account), read with eth_call."""
    data = _selector("hasRole(bytes32,address)") + keccak(role.encode()) + bytes(12) + bytes.fromhex(account[2:])
    return int.from_bytes(client.eth_call(contract, data), "big") == 1


def balances(client: RpcClient, city_points: str, residents: list[str]) -> dict[str, int]:
    """CityPoints.balanceOf for many residents, in JSON-RPC batches."""
    selector = _selector("balanceOf(address)")
    out: dict[str, int] = {}
    for start in range(0, len(residents), 500):
        part = residents[start : start + 500]
        answers = client.batch(
            "eth_call",
            [[{"to": city_points, "data": "0x" + (selector + bytes(12) + bytes.fromhex(r[2:])).hex()}, "latest"] for r in part],
        )
        out.update({r: int(a, 16) for r, a in zip(part, answers)})
    return out

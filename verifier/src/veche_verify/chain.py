"""Chain state of polls, read from a node's JSON-RPC alone: events in, typed records out.

Nothing here judges: the records hold what the chain says, malformed parts included, so that the
checks can fail on them by number instead of this module raising. Two phases: this process
reads the few per-poll events (parameters, shares, results, redemptions, donations) and rebuilds
each poll's election key from its shares; the bulk — every TokensIssued, BallotCast and
PointsCredited — is read, decoded, signature-checked and opened by the worker processes, each
over its own block range (work.scan_range), so reading scales with the cores too. A ballot
crosses back to this process as a small record (no ciphertext, no signatures): what the checks
after the scan need.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from multiprocessing.context import BaseContext
from typing import Any

from veche_core import calls, events
from veche_core.abi import checksum_address
from veche_core.deployment import Deployment
from veche_core.errors import EncodingError, VecheError
from veche_core.relays import read_relays
from veche_core.rpc import RpcClient, RpcError

from . import ceremony, election_key, work
from .records import CastBallot, ChainSnapshot, PollParameters, PollRecord

# The events every resident produces: read in bulk by the worker processes (work.scan_range),
# a block range each.
BULK_EVENTS = (*work.POLL_BOOK_BULK_EVENTS, events.POINTS_CREDITED)


class DeploymentMismatchError(VecheError):
    """The deployment file does not describe the chain the node serves: nothing can be verified."""


#: The EIP-712 domain name each contract of a deployment answers with (docs/protocol.md §4).
CONTRACT_NAMES = {"PollBook": "Veche PollBook", "CityPoints": "Veche CityPoints"}


def check_deployment(client: RpcClient, deployment: Deployment) -> None:
    """DeploymentMismatchError unless the node serves the deployment's chain and, at its two
    addresses, a PollBook and a CityPoints of it (each contract's EIP-5267 `eip712Domain()`:
    its name, version 1, this chain id and its own address). A setup mistake, never a verdict."""
    chain_id = client.chain_id()
    if chain_id != deployment.chain_id:
        raise DeploymentMismatchError(
            f"the node serves chain {chain_id}, the deployment file is for chain {deployment.chain_id}"
        )
    for kind, address in (("PollBook", deployment.poll_book), ("CityPoints", deployment.city_points)):
        if not client.get_code(address):
            raise DeploymentMismatchError(f"no contract at the {kind} address {address} on chain {chain_id}")
        try:
            name, version, domain_chain, contract = calls.decode_eip712_domain(
                client.eth_call(address, calls.EIP712_DOMAIN_SELECTOR)
            )
        except (RpcError, EncodingError):
            raise DeploymentMismatchError(f"the contract at {address} is not a Veche {kind}") from None
        if (name, version, domain_chain, "0x" + contract.hex()) != (
            CONTRACT_NAMES[kind],
            "1",
            chain_id,
            address.lower(),
        ):
            raise DeploymentMismatchError(
                f"the contract at {address} is not the deployment's {kind}: its EIP-712 domain is "
                f"{name!r} version {version!r} of chain {domain_chain} at {checksum_address(contract)}"
            )


def read_snapshot(
    client: RpcClient,
    deployment: Deployment,
    poll_id: int | None = None,
    *,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    ballot_hashes: bool = False,
    mp_context: BaseContext | None = None,
) -> ChainSnapshot:
    """Every Veche event of the deployment (or of one poll) up to the current head.

    `progress(done, total)` is told as block ranges of the bulk phase complete; `ballot_hashes`
    keeps each ballot's hash (for receipts); `mp_context` starts the worker processes (see
    work.py: a caller with threads of its own passes one that does not fork it)."""

    chain_id = client.chain_id()
    head, head_hash = client.head_block()
    head_time = client.block_timestamps([head])[head]
    poll_topic = None if poll_id is None else events.uint_topic(poll_id)
    polls: dict[int, PollRecord] = {}
    spent: dict[str, int] = defaultdict(int)
    undecodable: list[str] = []

    def record(pid: int) -> PollRecord:
        return polls.setdefault(pid, PollRecord(pid))

    # BallotRejected is not read: a refused ballot is not cast, so nothing is counted from it; nor
    # TrusteeKeyRegistered: PollBook copies each trustee's key into its poll's CeremonyStarted.
    unread = (*BULK_EVENTS, events.BALLOT_REJECTED, events.TRUSTEE_KEY_REGISTERED, *events.RELAY_EVENTS)
    few = [spec for spec in events.POLL_BOOK_EVENTS if spec not in unread]
    poll_book_topics: list[Any] = [[spec.topic for spec in few]]
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
                poll.created = PollParameters.from_event(args, event.block_number)
            else:
                poll.undecodable.append("a second PollCreated for the same poll id")
        elif event.name == "RegisterCommitted":
            try:
                committed = events.register_committed(event)
            except EncodingError as exc:
                poll.undecodable.append(str(exc))
                continue
            if poll.register is None:
                poll.register = committed
            else:
                poll.undecodable.append("a second RegisterCommitted for the same poll id")
        elif event.name == "CeremonyStarted":
            try:
                poll.ceremony.starts.append(events.ceremony_started(event))
            except EncodingError as exc:
                poll.undecodable.append(str(exc))
        elif event.name == "CeremonyMessagePosted":
            poll.ceremony.messages.append(events.ceremony_message_posted(event))
        elif event.name == "ElectionKeyCertified":
            poll.ceremony.certified.append(events.election_key_certified(event))
        elif event.name == "KeyShareSubmitted":
            poll.shares.append({**args, "block": event.block_number})
        elif event.name == "ResultPublished":
            poll.results.append({**args, "block": event.block_number})

    if poll_id is None:  # balances are audited over every poll only
        spending = [[spec.topic for spec in events.CITY_POINTS_EVENTS if spec not in BULK_EVENTS]]
        for log in client.iter_logs(deployment.city_points, spending, deployment.start_block, head):
            event = _decode_noting(log, undecodable)
            if event is not None:
                args = event.args
                spent[args["resident"]] += args["price"] if event.name == "RewardRedeemed" else args["amount"]

    secrets: dict[int, bytes] = {}
    for pid, poll in polls.items():
        if poll.created is not None and poll.created.version == 2:  # check 14, before the shares are used
            certified, starts = poll.ceremony.certified, poll.ceremony.starts
            blocks = {s.block_number for s in starts} | {c.block_number for c in certified}
            times = client.block_timestamps(sorted(blocks))
            if certified:
                poll.ceremony.certified_at = times[certified[0].block_number]
            poll.ceremony.started_at = {s.attempt: times[s.block_number] for s in starts}
            poll.ceremony_outcome = ceremony.judge(poll.ceremony, poll.created, chain_id, deployment.poll_book, pid)
        poll.election_key = election_key.rebuild(poll)
        if poll.election_key.secret is not None:
            secrets[pid] = poll.election_key.secret

    stamps: dict[int, int] = {}
    for part in work.scan(
        client.url, deployment, polls, secrets, poll_topic, head, workers, progress, ballot_hashes, mp_context
    ):
        stamps.update(part.block_timestamps)
        undecodable.extend(part.undecodable)
        for pid, stratum_counts in part.issued.items():
            record(pid).issued.update(stratum_counts)
        for pid, count in part.pseudonymous.items():
            record(pid).pseudonymous += count
        for pid, checked in part.issuances.items():
            record(pid).issuances.extend(checked)
        for pid, cast in part.cast.items():
            record(pid).ballots.extend(map(CastBallot._make, cast))
        for pid, credits in part.credits.items():
            record(pid).credits.extend(credits)
    balances: dict[str, int] = {}
    if poll_id is None:
        credited: dict[bytes, int] = defaultdict(int)
        for poll in polls.values():
            for resident, amount in poll.credits:
                credited[resident] += amount
        balances = {checksum_address(resident): amount for resident, amount in credited.items()}
        for account, amount in spent.items():
            balances[account] = balances.get(account, 0) - amount
    relays = read_relays(client, deployment.poll_book, deployment.start_block, head, undecodable)
    for poll in polls.values():
        poll.undecodable.extend(undecodable)
        poll.ballots.sort(key=lambda b: (b.block_number, b.log_index))
    return ChainSnapshot(
        deployment=deployment,
        chain_id=chain_id,
        head=head,
        head_hash=head_hash,
        head_time=head_time,
        polls=polls,
        block_timestamps=stamps,
        balances_by_events=balances,
        relays=relays,
    )


def _decode_noting(log: dict[str, Any], undecodable: list[str]) -> events.DecodedEvent | None:
    """The decoded event, or None with the reason noted (check 1 then fails: fail closed)."""
    try:
        return events.decode_log(log)
    except EncodingError as exc:
        undecodable.append(f"block {log.get('blockNumber')}: {exc}")
        return None


def balances(client: RpcClient, city_points: str, residents: list[str], block: int) -> dict[str, int]:
    """CityPoints.balanceOf for many residents at `block` (the block the events were read up to:
    a credit mined meanwhile must not read as a mismatch), in JSON-RPC batches."""
    out: dict[str, int] = {}
    for start in range(0, len(residents), 500):
        part = residents[start : start + 500]
        answers = client.batch(
            "eth_call",
            [[{"to": city_points, "data": "0x" + calls.encode_balance_of(r).hex()}, hex(block)] for r in part],
        )
        out.update({r: int(a, 16) for r, a in zip(part, answers)})
    return out

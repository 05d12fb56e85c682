"""The verifier's bulk work, spread over the machine's cores.

One pass, `scan_range`, a pure function of a context and a block range: it reads the range's
TokenIssued, BallotCast and PointsCredited logs from the node, decodes them, checks every
ballot's two signatures (checks 2 and 3) and, when the poll's election key was rebuilt before the
scan, opens and decodes the ballot (check 8). Each worker reads its own range, so JSON parsing and
decoding scale with the cores, not only the cryptography, and a ballot's bytes never cross
between processes. Opening every ballot, superseded ones too, costs a decryption per revote and
saves a second pass (and a second copy of every ciphertext). A single range runs in this process;
more run in a process pool whose workers get the context once.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from veche_core import events, plaintext, sealing
from veche_core.ballot import Ballot, ballot_hash
from veche_core.blind_rsa import PublicKey
from veche_core.deployment import Deployment
from veche_core.errors import EncodingError, VecheError
from veche_core.rpc import RpcClient
from veche_core.token import verify_token_signature
from veche_core.typed_data import Domain, ballot_digest, poll_book_domain, recover_signer_bytes

from .chain import CastBallot, Examined, PollRecord

RANGES_PER_WORKER = 16  # many small ranges: smaller node answers, and no core idles at the end of the scan


@dataclass(frozen=True)
class DecryptionContext:
    election_secret: bytes
    option_count: int
    max_choices: int


@dataclass(frozen=True)
class PollContext:
    """What checking (and opening) one poll's ballots needs."""

    poll_id: int
    issuer_keys: tuple[PublicKey | None, ...]  # None where a key does not decode (check 1 fails)
    decryption: DecryptionContext | None  # None when the election key could not be rebuilt


@dataclass(frozen=True)
class ScanContext:
    rpc_url: str
    chain_id: int
    poll_book: str
    city_points: str
    domain: Domain
    polls: dict[int, PollContext]
    poll_topic: str | None  # one poll, or every poll
    ballot_hashes: bool  # keep each ballot's hash (receipts)


@dataclass
class ScanPart:
    """What one block range holds, per poll."""

    issued: dict[int, Counter] = field(default_factory=lambda: defaultdict(Counter))
    examined: dict[int, list[Examined]] = field(default_factory=lambda: defaultdict(list))
    credits: dict[int, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))
    block_timestamps: dict[int, int] = field(default_factory=dict)
    undecodable: list[str] = field(default_factory=list)


_context: Any = None
_clients: dict[str, RpcClient] = {}


def _set_context(context: Any) -> None:
    global _context
    _context = context


def _start_worker(context: Any) -> None:
    """A pool worker's start: its context, and no HTTP connection inherited from the parent
    (a forked keep-alive socket shared by two processes corrupts both streams)."""
    _clients.clear()
    _set_context(context)


def decode_issuer_keys(encoded: Sequence[bytes]) -> tuple[PublicKey | None, ...]:
    keys: list[PublicKey | None] = []
    for key in encoded:
        try:
            keys.append(PublicKey.decode(key))
        except VecheError:
            keys.append(None)
    return tuple(keys)


def scan(
    rpc_url: str,
    deployment: Deployment,
    polls: dict[int, PollRecord],
    secrets: dict[int, bytes],
    poll_topic: str | None,
    head: int,
    workers: int,
    progress: Callable[[int, int], None] | None = None,
    ballot_hashes: bool = False,
) -> list[ScanPart]:
    """The bulk events of [start block, head], read, checked and opened in `workers` processes."""
    contexts = {}
    for pid, poll in polls.items():
        if not poll.created:
            continue
        secret = secrets.get(pid)
        decryption = None if secret is None else DecryptionContext(
            secret, poll.created["optionCount"], poll.created["maxChoices"])
        contexts[pid] = PollContext(pid, decode_issuer_keys(poll.created["issuerKeys"]), decryption)
    context = ScanContext(
        rpc_url=rpc_url,
        chain_id=deployment.chain_id,
        poll_book=deployment.poll_book,
        city_points=deployment.city_points,
        domain=poll_book_domain(deployment.chain_id, deployment.poll_book),
        polls=contexts,
        poll_topic=poll_topic,
        ballot_hashes=ballot_hashes,
    )
    start = deployment.start_block
    pieces = 1 if workers <= 1 else max(1, min(workers * RANGES_PER_WORKER, head - start + 1))
    size = -(-(head - start + 1) // pieces) if head >= start else 1
    ranges = [(lo, min(lo + size - 1, head)) for lo in range(start, head + 1, size)]
    return run_jobs(scan_range, context, ranges, workers, progress)


_BULK_TOPICS = ["0x" + events.TOKEN_ISSUED.topic0.hex(), "0x" + events.BALLOT_CAST.topic0.hex()]
_CREDIT_TOPIC = "0x" + events.POINTS_CREDITED.topic0.hex()


def scan_range(bounds: tuple[int, int]) -> ScanPart:
    """Read, decode, check and open the bulk logs of one block range."""
    ctx: ScanContext = _context
    client = _clients.get(ctx.rpc_url) or _clients.setdefault(ctx.rpc_url, RpcClient(ctx.rpc_url))
    poll_book = bytes.fromhex(ctx.poll_book[2:])
    openers = {pid: sealing.Opener(poll.decryption.election_secret)
               for pid, poll in ctx.polls.items() if poll.decryption is not None}
    part = ScanPart()
    topics: list[Any] = [_BULK_TOPICS] + ([ctx.poll_topic] if ctx.poll_topic else [])
    for log in client.iter_logs(ctx.poll_book, topics, *bounds):
        event = _decode(log, part)
        if event is None:
            continue
        poll_id = event.args["pollId"]
        if event.name == "TokenIssued":
            part.issued[poll_id][event.args["stratum"]] += 1
            continue
        poll = ctx.polls.get(poll_id)
        if poll is None:
            ballot = _cast_ballot(event, None)
            finding = Examined(ballot, "the poll has no parameters", "the poll has no parameters", ballot.block_number)
        else:
            finding = _examine(event, poll, ctx, poll_book, openers.get(poll_id))
        part.examined[poll_id].append(finding)
    topics = [_CREDIT_TOPIC, None] + ([ctx.poll_topic] if ctx.poll_topic else [])
    for log in client.iter_logs(ctx.city_points, topics, *bounds):
        event = _decode(log, part)
        if event is not None:
            part.credits[event.args["pollId"]].append((event.args["resident"], event.args["amount"]))
    blocks = sorted({e.block_number for found in part.examined.values() for e in found})
    part.block_timestamps = client.block_timestamps(blocks)
    part.issued, part.examined, part.credits = dict(part.issued), dict(part.examined), dict(part.credits)
    return part


def _decode(log: dict, part: ScanPart) -> events.DecodedEvent | None:
    try:
        return events.decode_log(log)
    except EncodingError as exc:
        part.undecodable.append(f"block {log.get('blockNumber')}: {exc}")
        return None


def _cast_ballot(event: events.DecodedEvent, hash_of: Ballot | None) -> CastBallot:
    args = event.args
    return CastBallot(
        token=args["token"], sequence=args["sequence"], stratum=args["stratum"],
        block_number=event.block_number, log_index=event.log_index,
        ballot_hash=None if hash_of is None else ballot_hash(hash_of),
    )


def _examine(
    event: events.DecodedEvent, poll: PollContext, ctx: ScanContext, poll_book: bytes, opener: sealing.Opener | None
) -> Examined:
    """Check 2 (the issuer's RSA signature on the token), check 3 (the token key's EIP-712
    signature) and, with the election key, check 8's decryption, for one ballot."""
    args = event.args
    token_address, stratum, sequence = args["token"], args["stratum"], args["sequence"]
    ciphertext, credential, signature = args["ciphertext"], args["tokenSignature"], args["signature"]
    token = bytes.fromhex(token_address[2:])
    token_error = None
    key = poll.issuer_keys[stratum] if stratum < len(poll.issuer_keys) else None
    if key is None:
        token_error = f"no usable issuer key for stratum {stratum}"
    else:
        try:
            verify_token_signature(key, ctx.chain_id, poll_book, poll.poll_id, stratum, token, credential)
        except VecheError as exc:
            token_error = str(exc)
    signature_error = None
    try:
        digest = ballot_digest(ctx.domain, poll.poll_id, token, sequence, stratum, ciphertext, credential)
        if recover_signer_bytes(digest, signature) != token:
            signature_error = "the signature recovers another address"
    except (VecheError, ValueError) as exc:
        signature_error = str(exc)
    choice = None
    if opener is not None:
        try:
            choice = plaintext.decode_choice(opener.open(ciphertext), poll.decryption.option_count, poll.decryption.max_choices)
        except VecheError as exc:
            choice = str(exc)
    whole = Ballot(poll.poll_id, token_address, sequence, stratum, ciphertext, credential, signature) if ctx.ballot_hashes else None
    return Examined(_cast_ballot(event, whole), token_error, signature_error, event.block_number, choice)


def run_jobs(
    function: Callable[[Any], Any],
    context: Any,
    jobs: Sequence[Any],
    workers: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[Any]:
    """`function` over `jobs`, in `workers` processes (in this one for a single job or worker)."""
    results: list[Any] = []
    if workers <= 1 or len(jobs) <= 1:
        _set_context(context)
        try:
            for job in jobs:
                results.append(function(job))
                if progress:
                    progress(len(results), len(jobs))
        finally:
            _set_context(None)
        return results
    with ProcessPoolExecutor(min(workers, len(jobs)), initializer=_start_worker, initargs=(context,)) as pool:
        for result in pool.map(function, jobs):
            results.append(result)
            if progress:
                progress(len(results), len(jobs))
    return results


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

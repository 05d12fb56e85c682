"""The verifier's bulk work, spread over the machine's cores.

Two passes, each a pure function of a context and its inputs:
- scan_range: read one block range's TokenIssued and BallotCast logs from the node, decode them
  and check every ballot's two signatures (checks 2 and 3). Each worker reads its own range, so
  JSON parsing and decoding scale with the cores, not only the cryptography.
- decrypt_choices: open and decode the counted ballots (check 8), once the key is rebuilt.
Small jobs run in this process; large ones in a process pool whose workers get the context once.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from veche_core import events, plaintext, sealing
from veche_core.blind_rsa import PublicKey
from veche_core.deployment import Deployment
from veche_core.errors import EncodingError, VecheError
from veche_core.rpc import RpcClient
from veche_core.token import verify_token_signature
from veche_core.typed_data import Domain, ballot_digest, poll_book_domain, recover_signer_bytes

from .chain import CastBallot, Examined, PollRecord, decode_ballot

IN_PROCESS_BELOW = 2_000
CHUNK = 2_000
RANGES_PER_WORKER = 4  # smaller ranges than workers: a busy range does not leave a core idle


@dataclass(frozen=True)
class SignatureContext:
    """What checking one poll's ballot signatures needs."""

    poll_id: int
    issuer_keys: tuple[PublicKey | None, ...]  # None where a key does not decode (check 1 fails)


@dataclass(frozen=True)
class ScanContext:
    rpc_url: str
    chain_id: int
    poll_book: str
    domain: Domain
    polls: dict[int, SignatureContext]
    poll_topic: str | None  # one poll, or every poll


@dataclass
class ScanPart:
    """What one block range holds, per poll."""

    issued: dict[int, Counter] = field(default_factory=lambda: defaultdict(Counter))
    examined: dict[int, list[Examined]] = field(default_factory=lambda: defaultdict(list))
    block_timestamps: dict[int, int] = field(default_factory=dict)
    undecodable: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DecryptionContext:
    election_secret: bytes
    option_count: int
    max_choices: int


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
    poll_topic: str | None,
    head: int,
    workers: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[ScanPart]:
    """The bulk events of [start block, head], read and checked in `workers` processes."""
    context = ScanContext(
        rpc_url=rpc_url,
        chain_id=deployment.chain_id,
        poll_book=deployment.poll_book,
        domain=poll_book_domain(deployment.chain_id, deployment.poll_book),
        polls={
            pid: SignatureContext(pid, decode_issuer_keys(poll.created["issuerKeys"]))
            for pid, poll in polls.items() if poll.created
        },
        poll_topic=poll_topic,
    )
    start = deployment.start_block
    pieces = 1 if workers <= 1 else max(1, min(workers * RANGES_PER_WORKER, head - start + 1))
    size = -(-(head - start + 1) // pieces) if head >= start else 1
    ranges = [(lo, min(lo + size - 1, head)) for lo in range(start, head + 1, size)]
    return run_jobs(scan_range, context, ranges, workers, progress)


def scan_range(bounds: tuple[int, int]) -> ScanPart:
    """Read, decode and check the TokenIssued and BallotCast logs of one block range."""
    ctx: ScanContext = _context
    client = _clients.get(ctx.rpc_url) or _clients.setdefault(ctx.rpc_url, RpcClient(ctx.rpc_url))
    topics: list[Any] = [["0x" + events.TOKEN_ISSUED.topic0.hex(), "0x" + events.BALLOT_CAST.topic0.hex()]]
    if ctx.poll_topic:
        topics.append(ctx.poll_topic)
    poll_book = bytes.fromhex(ctx.poll_book[2:])
    part = ScanPart()
    for log in client.iter_logs(ctx.poll_book, topics, *bounds):
        try:
            event = events.decode_log(log)
        except EncodingError as exc:
            part.undecodable.append(f"block {log.get('blockNumber')}: {exc}")
            continue
        poll_id = event.args["pollId"]
        if event.name == "TokenIssued":
            part.issued[poll_id][event.args["stratum"]] += 1
            continue
        ballot = decode_ballot(event)
        poll = ctx.polls.get(poll_id)
        if poll is None:
            finding = Examined(ballot, "the poll has no parameters", "the poll has no parameters", ballot.block_number)
        else:
            finding = _examine(ballot, poll, ctx, poll_book)
        part.examined[poll_id].append(finding)
    blocks = sorted({e.block_number for found in part.examined.values() for e in found})
    part.block_timestamps = client.block_timestamps(blocks)
    part.issued, part.examined = dict(part.issued), dict(part.examined)
    return part


def _examine(ballot: CastBallot, poll: SignatureContext, ctx: ScanContext, poll_book: bytes) -> Examined:
    """Check 2 (the issuer's RSA signature on the token) and check 3 (the token key's EIP-712
    signature) for one ballot."""
    token = bytes.fromhex(ballot.token[2:])  # raw bytes: no checksumming per ballot
    stratum, credential = ballot.stratum, ballot.token_signature
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
        digest = ballot_digest(ctx.domain, poll.poll_id, token, ballot.sequence, stratum, ballot.ciphertext, credential)
        if recover_signer_bytes(digest, ballot.signature) != token:
            signature_error = "the signature recovers another address"
    except (VecheError, ValueError) as exc:
        signature_error = str(exc)
    return Examined(ballot, token_error, signature_error, ballot.block_number)


def decrypt_choices(ciphertexts: Sequence[bytes]) -> list[tuple[int, ...] | str]:
    """Per counted ballot: the chosen options, or why it is invalid."""
    ctx: DecryptionContext = _context
    opener = sealing.Opener(ctx.election_secret)
    out: list[tuple[int, ...] | str] = []
    for ciphertext in ciphertexts:
        try:
            out.append(plaintext.decode_choice(opener.open(ciphertext), ctx.option_count, ctx.max_choices))
        except VecheError as exc:
            out.append(str(exc))
    return out


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


def run(function: Callable[[Sequence[Any]], list[Any]], context: Any, items: Sequence[Any], workers: int) -> list[Any]:
    """`function` over `items` in chunks (in this process when there are few)."""
    small = workers <= 1 or len(items) < IN_PROCESS_BELOW
    chunks = [items] if small else [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    return [result for part in run_jobs(function, context, chunks, workers) for result in part]


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

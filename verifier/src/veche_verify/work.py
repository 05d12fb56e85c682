"""The verifier's bulk work, spread over the machine's cores.

One pass, `scan_range`, a pure function of a context and a block range: it reads the range's
TokensIssued, BallotCast and PointsCredited logs from the node, decodes them, checks every
ballot's two signatures (checks 2 and 3) and, when the poll's election key was rebuilt before the
scan, opens and decodes the ballot (check 8). Each worker reads its own range, so JSON parsing and
decoding scale with the cores, not only the cryptography, and a ballot's bytes never cross
between processes. Opening every ballot, superseded ones too, costs a decryption per revote and
saves a second pass (and a second copy of every ciphertext). A single range runs in this process;
more run in a process pool whose workers get the context once. A process that runs threads of
its own (a web server) passes a `multiprocessing` context that does not fork it (`forkserver`,
`spawn`): a forked child keeps every lock another thread held at the fork, held for ever.
"""

from __future__ import annotations

import os
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

from veche_core import events, hpke, plaintext, register, sealing
from veche_core.ballot import Ballot, ballot_hash
from veche_core.blind_rsa import PublicKey
from veche_core.deployment import Deployment
from veche_core.errors import EncodingError, VecheError
from veche_core.rpc import RpcClient
from veche_core.token import TokenVerifier
from veche_core.typed_data import (
    Domain,
    ballot_digest,
    issuance_request_hash_digest,
    poll_book_domain,
    recover_signer_bytes,
)

from .records import CastFields, IssuanceCheck, PollRecord

RANGES_PER_WORKER = 64  # small ranges: smaller node answers, and a short last one (no core idles long)


@dataclass(frozen=True)
class DecryptionContext:
    election_secret: bytes  # v1: the X25519 secret; v2: the joint secret scalar
    option_count: int
    max_choices: int
    version: int = 1  # v2: HPKE, each ballot opened under its own info (token bound)


@dataclass(frozen=True)
class PollContext:
    """What checking (and opening) one poll's ballots needs."""

    poll_id: int
    issuer_keys: tuple[PublicKey | None, ...]  # None where a key does not decode (check 1 fails)
    decryption: DecryptionContext | None  # None when the election key could not be rebuilt
    register: tuple[tuple[bytes, int], ...] | None = None  # (root, size) per stratum, as committed


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

    issued: dict[int, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    pseudonymous: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # v1 entries
    issuances: dict[int, list[IssuanceCheck]] = field(default_factory=lambda: defaultdict(list))
    cast: dict[int, list[CastFields]] = field(default_factory=lambda: defaultdict(list))
    credits: dict[int, list[tuple[bytes, int]]] = field(default_factory=lambda: defaultdict(list))
    block_timestamps: dict[int, int] = field(default_factory=dict)
    undecodable: list[str] = field(default_factory=list)


_context: Any = None
_clients: dict[str, RpcClient] = {}
_in_process = threading.Lock()  # the jobs run here use the module's context: one caller at a time
_Job = TypeVar("_Job")
_Result = TypeVar("_Result")


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
    mp_context: BaseContext | None = None,
) -> list[ScanPart]:
    """The bulk events of [start block, head], read, checked and opened in `workers` processes
    (started by `mp_context`, by default the platform's)."""
    contexts = {}
    for pid, poll in polls.items():
        if not poll.created:
            continue
        secret = secrets.get(pid)
        decryption = (
            None
            if secret is None
            else DecryptionContext(secret, poll.created.option_count, poll.created.max_choices, poll.created.version)
        )
        register_ = None if poll.register is None else tuple(poll.register)
        contexts[pid] = PollContext(pid, decode_issuer_keys(poll.created.issuer_keys), decryption, register_)
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
    return run_jobs(scan_range, context, ranges, workers, progress, mp_context)


# The PollBook events read here, a block range each (the rest of the deployment's are few, and
# chain.read_snapshot reads them): BallotsRelayed with the BallotCast logs of its transaction,
# which it names the relay of.
POLL_BOOK_BULK_EVENTS = (events.TOKENS_ISSUED, events.ISSUANCES_RECORDED, events.BALLOT_CAST, events.BALLOTS_RELAYED)
_BULK_TOPICS = [spec.topic for spec in POLL_BOOK_BULK_EVENTS]


def scan_range(bounds: tuple[int, int]) -> ScanPart:
    """Read, decode, check and open the bulk logs of one block range."""
    ctx: ScanContext = _context
    client = _clients.get(ctx.rpc_url) or _clients.setdefault(ctx.rpc_url, RpcClient(ctx.rpc_url))
    part = ScanPart()
    casts: dict[int, list[events.CastLog]] = defaultdict(list)
    relayers: dict[bytes, bytes] = {}  # a castBallots transaction's hash: the relay its BallotsRelayed names
    topics: list[Any] = [_BULK_TOPICS] + ([ctx.poll_topic] if ctx.poll_topic else [])
    for log in client.iter_logs(ctx.poll_book, topics, *bounds):
        try:
            topic = log["topics"][0]
            if topic == events.TOKENS_ISSUED_TOPIC:
                poll_id, strata = events.tokens_issued(log)
                part.issued[poll_id].update(strata)
                part.pseudonymous[poll_id] += len(strata)
            elif topic == events.ISSUANCES_RECORDED_TOPIC:
                poll_id, items = events.issuances_recorded(log)
                part.issued[poll_id].update(item.stratum for item in items)
                poll_context = ctx.polls.get(poll_id)
                part.issuances[poll_id].extend(
                    IssuanceCheck(item.resident, item.stratum, issuance_error(ctx.domain, poll_id, poll_context, item))
                    for item in items
                )
            elif topic == events.BALLOTS_RELAYED_TOPIC:
                _, relayer, transaction = events.ballots_relayed(log)
                relayers[transaction] = relayer
            else:
                cast = events.ballot_cast(log)
                casts[cast.poll_id].append(cast)
        except (KeyError, TypeError, IndexError, EncodingError) as exc:
            _note(part, log, exc)
    checkers = _checkers(ctx)
    for poll_id, found in casts.items():
        checker = checkers.get(poll_id)
        part.cast[poll_id] = (
            _unchecked(found, "the poll has no parameters") if checker is None else checker.examine(found, relayers)
        )
    topics = [events.POINTS_CREDITED_TOPIC, None] + ([ctx.poll_topic] if ctx.poll_topic else [])
    for log in client.iter_logs(ctx.city_points, topics, *bounds):
        try:
            poll_id, resident, amount = events.points_credited(log)
        except EncodingError as exc:
            _note(part, log, exc)
            continue
        part.credits[poll_id].append((resident, amount))
    blocks = sorted({cast.block_number for found in casts.values() for cast in found})
    part.block_timestamps = client.block_timestamps(blocks)
    part.issued, part.cast, part.credits = dict(part.issued), dict(part.cast), dict(part.credits)
    part.pseudonymous, part.issuances = dict(part.pseudonymous), dict(part.issuances)
    return part


def issuance_error(domain: Domain, poll_id: int, poll: PollContext | None, item: events.IssuanceItem) -> str | None:
    """Check 13 for one recorded issuance, from its log alone (docs/protocol.md §3.12): the
    stratum is committed, the IssuanceRequest signature recovers the resident, and the proof
    puts the resident in the stratum's register. None if it holds; else why not."""
    shown = "0x" + item.resident.hex()
    if poll is None or poll.register is None:
        return f"{shown}: the poll has no committed register"
    if item.stratum >= len(poll.register):
        return f"{shown}: stratum {item.stratum} has no committed register"
    try:
        digest = issuance_request_hash_digest(domain, poll_id, item.stratum, item.blinded_message_hash, item.deadline)
        if recover_signer_bytes(digest, item.signature) != item.resident:
            return f"{shown}: the request is signed by another key"
    except (VecheError, ValueError) as exc:
        return f"{shown}: the request signature is invalid ({exc})"
    root, size = poll.register[item.stratum]
    why = register.proof_error(root, size, item.leaf_index, item.resident, item.proof)
    return None if why is None else f"{shown}: not in the register of stratum {item.stratum} ({why})"


def _note(part: ScanPart, log: Any, exc: Exception) -> None:
    """A log that did not decode: listed, so that check 1 fails (fail closed)."""
    block = log.get("blockNumber") if isinstance(log, dict) else None
    part.undecodable.append(
        f"block {block}: {exc if isinstance(exc, EncodingError) else f'malformed log object: {exc!r}'}"
    )


def _checkers(ctx: ScanContext) -> dict[int, BallotChecker]:
    """One checker per poll, for this process (the RSA and X25519 key objects are built here)."""
    global _checkers_of
    if _checkers_of[0] is not ctx:
        _checkers_of = (ctx, {pid: BallotChecker(ctx, poll) for pid, poll in ctx.polls.items()})
    return _checkers_of[1]


_checkers_of: tuple[Any, dict[int, BallotChecker]] = (None, {})


def _record(
    c: events.CastLog,
    token_error: str | None,
    signature_error: str | None,
    choice: tuple[int, ...] | str | None = None,
    ballot_hash: bytes | None = None,
    digest: bytes | None = None,
    relayer: bytes | None = None,
) -> CastFields:
    """records.CastBallot's fields, as a plain tuple (the one place that spells their order here)."""
    return (
        "0x" + c.token.hex(),
        c.sequence,
        c.stratum,
        c.block_number,
        c.log_index,
        token_error,
        signature_error,
        choice,
        ballot_hash,
        digest,
        None if relayer is None else "0x" + relayer.hex(),
    )


def _unchecked(casts: list[events.CastLog], why: str) -> list[CastFields]:
    return [_record(c, why, why) for c in casts]


class BallotChecker:
    """Check 2 (the issuer's RSA signature on the token), check 3 (the token key's EIP-712
    signature) and, with the election key, check 8's decryption (v2: check 16's), for the ballots
    of one poll."""

    def __init__(self, ctx: ScanContext, poll: PollContext) -> None:
        self.poll_id = poll.poll_id
        self.chain_id, self.poll_book = ctx.chain_id, ctx.poll_book
        self.domain = ctx.domain
        self.ballot_hashes = ctx.ballot_hashes
        self.tokens = [
            None if key is None else TokenVerifier(key, ctx.chain_id, ctx.poll_book, poll.poll_id, stratum)
            for stratum, key in enumerate(poll.issuer_keys)
        ]
        decryption = poll.decryption
        # (the opener, option count, max choices), without the election key None
        self.opening: tuple[sealing.Opener | hpke.Opener, int, int] | None = None
        if decryption is not None:
            secret = decryption.election_secret
            opener = sealing.Opener(secret) if decryption.version == 1 else hpke.Opener(secret)
            self.opening = (opener, decryption.option_count, decryption.max_choices)

    def examine(self, casts: list[events.CastLog], relayers: dict[bytes, bytes]) -> list[CastFields]:
        """records.CastBallot's fields for each ballot, with the relay `relayers` (a transaction's
        hash: its BallotsRelayed relay) names for it. One primitive at a time over all of them:
        each library's tables stay in the cache (about 5% faster than ballot by ballot)."""
        token_errors = [self._token_error(c) for c in casts]
        signature_errors, digests = zip(*map(self._signature_check, casts)) if casts else ((), ())
        opening = self.opening
        choices: list[tuple[int, ...] | str | None] = (
            [self._choice(c, *opening) for c in casts] if opening is not None else [None] * len(casts)
        )
        hashes: list[bytes | None] = [self._hash(c) for c in casts] if self.ballot_hashes else [None] * len(casts)
        named = [relayers.get(c.transaction_hash) for c in casts]
        return [
            _record(*fields) for fields in zip(casts, token_errors, signature_errors, choices, hashes, digests, named)
        ]

    def _token_error(self, cast: events.CastLog) -> str | None:
        stratum = cast.stratum
        verifier = self.tokens[stratum] if stratum < len(self.tokens) else None
        if verifier is None:
            return f"no usable issuer key for stratum {stratum}"
        try:
            verifier.verify(cast.token, cast.token_signature)
        except VecheError as exc:
            return str(exc)
        return None

    def _signature_check(self, c: events.CastLog) -> tuple[str | None, bytes | None]:
        """(Why check 3 fails for it or None, its EIP-712 digest: the identity check 5 compares)."""
        try:
            digest = ballot_digest(
                self.domain, self.poll_id, c.token, c.sequence, c.stratum, c.ciphertext, c.token_signature
            )
        except (VecheError, ValueError) as exc:
            return str(exc), None
        try:
            if recover_signer_bytes(digest, c.signature) != c.token:
                return "the signature recovers another address", digest
        except (VecheError, ValueError) as exc:
            return str(exc), digest
        return None, digest

    def _choice(
        self, cast: events.CastLog, opener: sealing.Opener | hpke.Opener, option_count: int, max_choices: int
    ) -> tuple[int, ...] | str:
        try:
            if isinstance(opener, hpke.Opener):
                info = hpke.ballot_info(self.chain_id, self.poll_book, self.poll_id, cast.stratum, cast.token)
                opened = opener.open(cast.ciphertext, info)
            else:
                opened = opener.open(cast.ciphertext)
            return plaintext.decode_choice(opened, option_count, max_choices)
        except VecheError as exc:
            return str(exc)

    def _hash(self, c: events.CastLog) -> bytes:
        return ballot_hash(
            Ballot(self.poll_id, c.token, c.sequence, c.stratum, c.ciphertext, c.token_signature, c.signature)
        )


def run_jobs(
    function: Callable[[_Job], _Result],
    context: Any,
    jobs: Sequence[_Job],
    workers: int,
    progress: Callable[[int, int], None] | None = None,
    mp_context: BaseContext | None = None,
) -> list[_Result]:
    """`function` over `jobs`, in `workers` processes (in this one for a single job or worker)."""
    results: list[_Result] = []
    if workers <= 1 or len(jobs) <= 1:
        with _in_process:
            _set_context(context)
            try:
                for job in jobs:
                    results.append(function(job))
                    if progress:
                        progress(len(results), len(jobs))
            finally:
                _set_context(None)
        return results
    with ProcessPoolExecutor(
        min(workers, len(jobs)), mp_context=mp_context, initializer=_start_worker, initargs=(context,)
    ) as pool:
        for result in pool.map(function, jobs):
            results.append(result)
            if progress:
                progress(len(results), len(jobs))
    return results


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

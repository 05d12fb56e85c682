"""The verifier's per-ballot cryptography, spread over the machine's cores.

Two passes, each a pure function of (poll context, ballots): decoding and signatures (checks 2
and 3) for every cast ballot, then decryption (check 8) for the counted ones only. Small polls run in
process; large ones in a process pool whose workers get the poll context once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from veche_core import plaintext, sealing
from veche_core.token import verify_token_signature
from veche_core.blind_rsa import PublicKey
from veche_core.errors import VecheError
from veche_core.typed_data import Domain, ballot_digest, recover_signer_bytes

from .chain import CastBallot, decode_ballot

IN_PROCESS_BELOW = 2_000
CHUNK = 2_000


@dataclass(frozen=True)
class SignatureContext:
    chain_id: int
    poll_book: str
    poll_id: int
    issuer_keys: tuple[PublicKey | None, ...]  # None where a key does not decode (check 1 fails)
    domain: Domain


@dataclass(frozen=True)
class DecryptionContext:
    election_secret: bytes
    option_count: int
    max_choices: int


_context: Any = None


def _set_context(context: Any) -> None:
    global _context
    _context = context


def examine_ballots(raw_logs: Sequence[tuple]) -> list[tuple[CastBallot | None, str | None, str | None]]:
    """Per raw BallotCast log: (the decoded ballot or None, check 2 failure, check 3 failure).

    An undecodable log comes back as (None, reason, reason): it fails both checks.
    """
    ctx: SignatureContext = _context
    poll_book = bytes.fromhex(ctx.poll_book[2:])
    out: list[tuple[CastBallot | None, str | None, str | None]] = []
    for raw in raw_logs:
        try:
            ballot = decode_ballot(raw)
        except VecheError as exc:
            out.append((None, f"undecodable BallotCast: {exc}", f"undecodable BallotCast: {exc}"))
            continue
        token = bytes.fromhex(ballot.token[2:])  # raw bytes: no checksumming per ballot
        stratum, credential = ballot.stratum, ballot.token_signature
        token_error = None
        key = ctx.issuer_keys[stratum] if stratum < len(ctx.issuer_keys) else None
        if key is None:
            token_error = f"no usable issuer key for stratum {stratum}"
        else:
            try:
                verify_token_signature(key, ctx.chain_id, poll_book, ctx.poll_id, stratum, token, credential)
            except VecheError as exc:
                token_error = str(exc)
        signature_error = None
        try:
            digest = ballot_digest(ctx.domain, ctx.poll_id, token, ballot.sequence, stratum, ballot.ciphertext, credential)
            if recover_signer_bytes(digest, ballot.signature) != token:
                signature_error = "the signature recovers another address"
        except (VecheError, ValueError) as exc:
            signature_error = str(exc)
        out.append((ballot, token_error, signature_error))
    return out


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


def run(
    function: Callable[[Sequence[Any]], list[Any]],
    context: Any,
    items: Sequence[Any],
    workers: int,
    progress: Callable[[int], None] | None = None,
) -> list[Any]:
    """`function` over `items` in chunks, in `workers` processes (in process when small).

    `progress(n)` is called as each chunk of n items completes, for a progress bar.
    """
    if workers <= 1 or len(items) < IN_PROCESS_BELOW:
        _set_context(context)
        try:
            results = function(items)
        finally:
            _set_context(None)
        if progress:
            progress(len(items))
        return results
    chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    results: list[Any] = []
    with ProcessPoolExecutor(max_workers=workers, initializer=_set_context, initargs=(context,)) as pool:
        for part in pool.map(function, chunks):
            results.extend(part)
            if progress:
                progress(len(part))
    return results


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

"""Close and publish: the verifier's own count, and what the city adds to it.

The tally, the per-district counts and the anonymised dataset are what `veche_verify` counts
(read_snapshot, then count_poll: checks 1–8 of docs/protocol.md §6) from the chain's events
alone — not from the API's database, and not by a second implementation of the rules — so
what the city publishes is what every observer recomputes, by construction. What the city adds
is its own business: the strata's names and register sizes beside their counts, the result
stored in the database, and the publishResult transaction sent. No stratum is withheld: the
dataset lists every ballot's stratum anyway, and small districts were merged at creation
(strata.py), so hiding a stratum's counts would hide nothing the dataset does not show.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.forkserver
from collections import Counter
from collections.abc import Sequence
from multiprocessing.context import BaseContext

from veche_core import dataset
from veche_core.rpc import RpcError
from veche_verify.chain import read_snapshot
from veche_verify.checks import CheckResult, PollVerdict, check_register, count_poll
from veche_verify.records import ChainSnapshot

from .errors import ApiError
from .models import Poll
from .schemas import StratumCounts, TallyOut
from .strata import PollStrata, Stratum


def count(state, poll_id: int) -> PollVerdict:
    """The verifier's count of the poll, read from the chain at its current head."""
    workers = state.settings.count_workers
    try:
        snapshot = read_snapshot(
            state.chain.rpc(),
            state.chain.deployment,
            poll_id,
            workers=workers,
            mp_context=_worker_context() if workers > 1 else None,
        )
    except (RpcError, OSError):  # RpcError: the node did not answer, after the client's retries
        raise ApiError("chain.unavailable", 503, "the chain node is not reachable") from None
    return publication_count(snapshot, poll_id)


def publication_count(snapshot: ChainSnapshot, poll_id: int) -> PollVerdict:
    """The verifier's count (checks 1–8) and its check 13: a poll whose issuances are not all
    register members' requests is not published, whatever its ballots say (PollBook refuses
    such records, so this holds unless the chain does not; every observer's check 13 would fail)."""
    verdict = count_poll(snapshot, poll_id)
    poll = snapshot.polls.get(poll_id)
    if poll is not None and poll.created is not None:
        verdict.checks.append(check_register(poll))
    return verdict


def start_count_workers(settings) -> None:
    """With count workers, start their fork server with the API: it then imports the code this
    process runs, not whatever is on disk at the first publish (an upgrade not yet restarted)."""
    if settings.count_workers > 1:
        _worker_context()
        multiprocessing.forkserver.ensure_running()


def _worker_context() -> BaseContext:
    """Worker processes forked from a fresh server process, never from this one: the API's
    threads (request handlers, the relay, database and HTTP pools) may hold locks at any moment,
    and a forked child would keep them held for ever. The server imports the verifier once, for
    the API's lifetime. (Each child still imports the main module by its path, as multiprocessing
    does; under `python -m veche_api` there is none to import. Python 3.11's forkserver cannot
    preload `__main__`: it never passes the main module's path to the server.)"""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["veche_verify.work"])
    return context


def refusals(verdict: PollVerdict) -> list[CheckResult]:
    """The checks of 1–8 and 13 that did not pass: any one stops publication. (Spoiled ballots do not:
    check 8 lists them, leaves them out of the count and passes, since a resident can seal anything
    with a valid token.) A check that did not pass means the count could not run yet (shares
    missing), or would not be the chain's (a ballot the relay should never have sent), and
    publishing it would publish a result that no observer accepts. A poll of which the chain
    holds nothing yet (its creation not mined) is refused as check 1, whose PollCreated it lacks."""
    if verdict.unverifiable is not None:
        return [CheckResult(1, False, f"cannot run: {verdict.unverifiable}")]
    return [c for c in verdict.checks if not c.passed]


def _refuse(failed: list[CheckResult]) -> ApiError:
    first = failed[0]
    detail = "; ".join(f"check {c.number} ({c.statement.rstrip('.')}): {c.detail}" for c in failed)
    return ApiError(
        f"result.check_{first.number}_failed", 409, f"the poll cannot be counted, nothing was published: {detail}"
    )


def per_stratum(strata: Sequence[Stratum], verdict: PollVerdict) -> list[StratumCounts]:
    """Each stratum's ballots and counts, as the verifier counts them per stratum."""
    ballots = Counter(row.stratum for row in verdict.counted_rows)
    return [
        StratumCounts(
            stratum=index,
            name=stratum.name,
            districts=list(stratum.districts),
            register_size=stratum.register_size,
            ballots=ballots.get(index, 0),
            counts=verdict.by_stratum.get(index, [0] * verdict.option_count),
        )
        for index, stratum in enumerate(strata)
    ]


def publish(state, poll_id: int) -> TallyOut:
    with state.db.session() as session:
        poll = session.get(Poll, poll_id)
    if poll is None:
        raise ApiError("poll.unknown", 404, f"no poll {poll_id}")
    if poll.published:
        raise ApiError("result.already_published", 409, "the result is already published")
    if state.chain.now() < poll.closes_at:
        raise ApiError("poll.not_closed", 409, "the poll has not closed yet")
    verdict = count(state, poll_id)
    failed = refusals(verdict)
    if failed:
        raise _refuse(failed)
    counts, rows = verdict.recomputed, verdict.counted_rows
    assert counts is not None  # (checks 1-7 passed: the ballots were opened and counted)
    dataset_hash = dataset.dataset_hash(rows)
    receipt = state.admin.transact(state.chain.poll_book.functions.publishResult(poll_id, counts, dataset_hash))
    strata = per_stratum(PollStrata.loads(poll.strata_json).strata, verdict)
    with state.db.write_session() as session:
        fresh = session.get(Poll, poll_id)
        fresh.published = True
        fresh.counts_json = json.dumps(counts)
        fresh.per_stratum_json = json.dumps([s.model_dump(by_alias=True) for s in strata])
        fresh.dataset_hash = "0x" + dataset_hash.hex()
        fresh.dataset_csv = dataset.canonical_csv(rows).decode()
        fresh.publish_tx = "0x" + bytes(receipt["transactionHash"]).hex()
        session.add(fresh)
        session.commit()
    return TallyOut(
        poll_id=poll_id,
        counts=counts,
        dataset_hash="0x" + dataset_hash.hex(),
        ballots_counted=len(rows),
        per_stratum=strata,
        transaction_hash=fresh.publish_tx,
    )

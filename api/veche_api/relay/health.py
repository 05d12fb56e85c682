"""What the relay knows of its own health, kept in the database so that every API process can
tell it: quarantined work, and a heartbeat with the last error.

One bad item must not stop the relay. Each unit of the relay's work (one logged transaction's
bookkeeping, one poll's ballot batch, one poll's issuances or credits, one points request) runs
under `Isolation.run`. A failure that means the node or the database is unreachable is raised
as before: the loop backs off and everything waits, because nothing else could go either. Any
other failure counts a strike against that unit only; after `STRIKES` in a row the unit is
quarantined (a `Quarantine` row with the reason) and the relay goes on with the rest. The
items keep their own status; the unit is tried again every `retry_after` seconds, and released
the first time it succeeds. /health says `degraded` while anything is quarantined, and
/metrics counts it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TypedDict, TypeVar

from sqlalchemy import delete
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlmodel import col, select
from web3.exceptions import ProviderConnectionError, TimeExhausted, Web3RPCError

from ..core.db import Database
from ..core.logs import scrub
from ..models import Quarantine, RelayStatus

log = logging.getLogger("veche_api.relay")

T = TypeVar("T")


class TransientError(ConnectionError):
    """The node could not take the transaction now; try again later."""


# Failures that say the node or the database is unreachable (or busy) rather than that one item
# is bad: the relay backs off instead of striking the item. OSError covers ConnectionError,
# timeouts and requests' exceptions; RpcError is a ConnectionError.
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    OperationalError,
    DisconnectionError,
    InterfaceError,
    Web3RPCError,
    ProviderConnectionError,
    TimeExhausted,
)

STRIKES = 3
HEARTBEAT_EVERY = 1.0  # seconds between heartbeat writes while nothing changes
STALE_AFTER = 30.0  # a heartbeat older than this: the relay is not running (the backoff is ≤ 10 s)


class QuarantineKind(StrEnum):
    CHAIN_TX = "chain_tx"  # a logged transaction's bookkeeping (ref: ChainTx id)
    BALLOTS = "ballots"  # a poll's ballot batches (ref: poll id)
    ISSUANCES = "issuances"  # a poll's issuance records (ref: poll id)
    CREDITS = "credits"  # a poll's point credits (ref: poll id)
    POINTS = "points"  # one redemption or donation (ref: PointsRequest id)


def describe(exc: BaseException) -> str:
    """A failure as it may be shown to anyone: its type and message, scrubbed, bounded."""
    return scrub(f"{type(exc).__name__}: {exc}")[:400]


class Isolation:
    def __init__(self, db: Database, retry_after: float, on_failure: Callable[[], None] = lambda: None) -> None:
        self.db = db
        self.retry_after = retry_after
        self.on_failure = on_failure  # e.g. forget cached nonces: the failed unit may have held one
        self._strikes: dict[tuple[str, int], int] = {}
        self._quarantined: dict[tuple[str, int], float] = {}  # (kind, ref) → retry_at
        self._due: set[tuple[str, int]] = set()  # quarantined units due for a try in this pass
        self._ran: set[tuple[str, int]] = set()  # units run in this pass

    def refresh(self) -> None:
        """Read the quarantine, and which of it is due for another try (at the start of each
        relay pass: the pass then sees one consistent picture)."""
        with self.db.session() as session:
            rows = session.exec(select(Quarantine.kind, Quarantine.ref, Quarantine.retry_at)).all()
        now = time.time()
        self._quarantined = {(kind, ref): retry_at for kind, ref, retry_at in rows}
        self._due = {key for key, retry_at in self._quarantined.items() if retry_at <= now}
        self._ran.clear()

    def settle(self) -> None:
        """At the end of a pass: release each unit that was due for another try but had no work
        left to run (its items were finished or removed meanwhile)."""
        for key in self._due - self._ran:
            if key in self._quarantined:
                self._release(QuarantineKind(key[0]), key[1])

    def held(self, kind: QuarantineKind) -> set[int]:
        """The refs of `kind` that wait for their next try: the relay leaves them out."""
        return {ref for (k, ref) in self._quarantined if k == kind and (k, ref) not in self._due}

    def run(self, kind: QuarantineKind, ref: int, work: Callable[[], T], failed: T) -> T:
        """`work()`, or `failed` when it raised anything but a TRANSIENT error (which propagates).
        A unit that did something (a truthy result) has its strikes cleared and leaves the
        quarantine; one that found nothing to do keeps them (it did not try what failed)."""
        key = (kind.value, ref)
        self._ran.add(key)
        try:
            result = work()
        except TRANSIENT:
            raise
        except Exception as exc:
            self.on_failure()
            self._strike(kind, ref, exc)
            return failed
        if result:
            self._strikes.pop(key, None)
            if key in self._quarantined:
                self._release(kind, ref)
        return result

    def _strike(self, kind: QuarantineKind, ref: int, exc: Exception) -> None:
        key = (kind.value, ref)
        strikes = self._strikes[key] = self._strikes.get(key, 0) + 1
        reason = describe(exc)
        if key not in self._quarantined and strikes < STRIKES:
            log.warning("relay: %s %d failed (%d of %d before quarantine): %s", kind, ref, strikes, STRIKES, reason)
            return
        retry_at = time.time() + self.retry_after
        with self.db.write_session() as session:
            row = session.exec(select(Quarantine).where(Quarantine.kind == kind.value, Quarantine.ref == ref)).first()
            first = row is None
            if row is None:
                row = Quarantine(kind=kind.value, ref=ref, reason=reason, failures=strikes, retry_at=retry_at)
            else:
                row.reason, row.failures, row.retry_at = reason, row.failures + 1, retry_at
            session.add(row)
            session.commit()
        self._quarantined[key] = retry_at
        self._due.discard(key)
        log.error(
            "relay: %s %d %s after %d failures, next try in %.0f s: %s",
            kind,
            ref,
            "quarantined" if first else "still fails",
            row.failures,
            self.retry_after,
            reason,
        )

    def _release(self, kind: QuarantineKind, ref: int) -> None:
        with self.db.write_session() as session:
            session.exec(delete(Quarantine).where(col(Quarantine.kind) == kind.value, col(Quarantine.ref) == ref))
            session.commit()
        self._quarantined.pop((kind.value, ref), None)
        log.warning("relay: %s %d released from quarantine", kind, ref)


class Heartbeat:
    """The relay process's row in RelayStatus: written when the relay starts, about once a
    second while its loop runs or backs off, and at once when its error changes."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.holder = f"{socket.gethostname()}:{os.getpid()}"[:200]
        self._written_at = 0.0
        self._error: str | None = None
        self._chain_checked = False

    def beat(self, error: str | None = None, *, chain_checked: bool | None = None, force: bool = False) -> None:
        now = time.time()
        if chain_checked is not None and chain_checked != self._chain_checked:
            self._chain_checked, force = chain_checked, True
        if error != self._error:
            force = True
        if not force and now - self._written_at < HEARTBEAT_EVERY:
            return
        with self.db.write_session() as session:
            row = session.get(RelayStatus, 1)
            if row is None or row.holder != self.holder:
                row = row or RelayStatus(holder=self.holder, started_at=now, heartbeat_at=now)
                row.holder, row.started_at = self.holder, now
            row.heartbeat_at = now
            row.chain_checked = self._chain_checked
            if error != self._error:
                row.last_error, row.last_error_at = error, (now if error else None)
            session.add(row)
            session.commit()
        self._error, self._written_at = error, now


class QuarantineItem(TypedDict):
    kind: str
    ref: int
    reason: str
    failures: int
    since: int
    nextTry: int


class RelayState(TypedDict):
    """What `relay_health` reports (the relay part of /health, schemas.RelayHealth; metrics)."""

    running: bool
    heartbeatAge: float | None
    chainChecked: bool
    lastError: str | None
    lastErrorAt: int | None
    quarantined: int
    quarantine: list[QuarantineItem]


def relay_health(db: Database, limit: int = 20) -> RelayState:
    """The relay as /health shows it: whether some process runs it (a fresh heartbeat), its last
    error, and the quarantined work (the first `limit` entries)."""
    with db.session() as session:
        status = session.get(RelayStatus, 1)
        held = session.exec(select(Quarantine).order_by(col(Quarantine.since)).limit(limit)).all()
        count = len(held) if len(held) < limit else len(session.exec(select(Quarantine.id)).all())
    now = time.time()
    age = None if status is None else max(0.0, now - status.heartbeat_at)
    return {
        "running": age is not None and age < STALE_AFTER,
        "heartbeatAge": None if age is None else round(age, 1),
        "chainChecked": bool(status and status.chain_checked),
        "lastError": None if status is None else status.last_error,
        "lastErrorAt": None if status is None or status.last_error_at is None else int(status.last_error_at),
        "quarantined": count,
        "quarantine": [
            {
                "kind": q.kind,
                "ref": q.ref,
                "reason": q.reason,
                "failures": q.failures,
                "since": int(q.since),
                "nextTry": int(q.retry_at),
            }
            for q in held
        ],
    }

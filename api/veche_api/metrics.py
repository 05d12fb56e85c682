"""Prometheus metrics (one registry per app, so tests can run several apps in one process).

Counters count events since the process started; the `veche_ballots` gauge reads the relay
queue from the database at scrape time, so it survives restarts.
"""

from __future__ import annotations

import collections
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlmodel import col, func, select

from .models import Ballot
from .relay.health import QuarantineKind, relay_health


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ballots_accepted = Counter("veche_ballots_accepted", "Ballots accepted (202)", registry=r)
        self.ballots_sent = Counter("veche_ballots_sent", "Ballots put in a signed batch", registry=r)
        self.ballots_confirmed = Counter("veche_ballots_confirmed", "Ballots mined as BallotCast", registry=r)
        self.ballots_rejected = Counter("veche_ballots_rejected", "Ballots mined as BallotRejected", registry=r)
        self.ballots_failed = Counter("veche_ballots_failed", "Ballots whose batch could not be mined", registry=r)
        self.tokens_issued = Counter("veche_tokens_issued", "Blind signatures returned", registry=r)
        self.batch_size = Histogram(
            "veche_batch_size",
            "Ballots per castBallots transaction",
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000),
            registry=r,
        )
        self.queue = Gauge("veche_ballots", "Ballots by relay status", ["status"], registry=r)
        self.relay_lag = Gauge("veche_relay_lag_seconds", "Age of the oldest unconfirmed ballot", registry=r)
        self.relay_up = Gauge(
            "veche_relay_up", "1 while some process runs the relay (its heartbeat is fresh)", registry=r
        )
        self.relay_failing = Gauge("veche_relay_failing", "1 while the relay's last pass failed", registry=r)
        self.quarantined = Gauge("veche_relay_quarantined", "Relay work items in quarantine", ["kind"], registry=r)

    def render(self, db) -> bytes:
        by_status, lag = queue_state(db)
        for status in Ballot.Status:
            self.queue.labels(status.value).set(by_status.get(status, 0))
        self.relay_lag.set(lag)
        relay = relay_health(db, limit=1000)
        self.relay_up.set(1 if relay["running"] else 0)
        self.relay_failing.set(1 if relay["lastError"] else 0)
        held = collections.Counter(entry["kind"] for entry in relay["quarantine"])
        for kind in QuarantineKind:
            self.quarantined.labels(kind.value).set(held.get(kind.value, 0))
        return generate_latest(self.registry)


def queue_state(db) -> tuple[dict[str, int], float]:
    with db.session() as session:
        counts = dict(session.exec(select(Ballot.status, func.count()).group_by(Ballot.status)).all())
        oldest = session.exec(
            select(func.min(Ballot.queued_at)).where(
                col(Ballot.status).in_((Ballot.Status.ACCEPTED, Ballot.Status.SENT))
            )
        ).one()
    return counts, (max(0.0, time.time() - oldest) if oldest else 0.0)

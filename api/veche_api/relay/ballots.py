"""Ballots: the relay's handler of `ballots` transactions — which queued ballots are due, their
castBallots call, and their outcome from the receipt's events (BallotCast → confirmed,
BallotRejected → rejected with the contract's reason).

Batches: by size (`batch_size`, and the calldata cap `max_batch_bytes`) and by time
(`batch_interval` since the oldest queued ballot), grouped by poll, shuffled (batching.py).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from sqlalchemy import bindparam, update
from sqlmodel import col, func, select

from veche_core import calls

from ..chain import REVERTS, revert_name
from ..models import Ballot, ChainTx, table_of
from .batching import order_batch, plan_batch
from .health import QuarantineKind
from .receipts import ballot_outcomes, mark_finished, tx_outcome


class Ballots:
    """What the relay does for queued ballots: cut due batches, send them, finish them."""

    kinds = (ChainTx.Kind.BALLOTS,)

    def __init__(self, relay) -> None:
        self.relay = relay
        self.estimate_polls: set[int] = set()  # polls whose last batch reverted: simulate the next

    def due(self) -> dict[int, list[int]]:
        """Per poll, the next batch if it is full (by count or by calldata size) or its oldest
        ballot has waited `batch_interval`. Quarantined polls are left out of the query, so
        that their queue does not fill every batch's window."""
        relay = self.relay
        size = relay.settings.batch_size
        held = relay.isolation.held(QuarantineKind.BALLOTS)
        with relay.db.session() as session:
            rows = session.exec(
                # sqlmodel's select() is typed for at most four columns (fastapi/sqlmodel#271)
                select(  # type: ignore[call-overload]
                    Ballot.id,
                    Ballot.poll_id,
                    Ballot.queued_at,
                    func.length(Ballot.ciphertext),
                    func.length(Ballot.token_credential),
                    func.length(Ballot.signature),
                )
                .where(Ballot.status == Ballot.Status.ACCEPTED, *([col(Ballot.poll_id).not_in(held)] if held else []))
                .order_by(Ballot.id)
                .limit(size)  # oldest first; with a backlog, reading more only to send one batch cost a tenth of a core
            ).all()
        groups: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
        for ballot_id, poll_id, queued_at, ct_len, cred_len, sig_len in rows:
            groups[poll_id].append((ballot_id, calls.ballot_calldata_size(ct_len, cred_len, sig_len), queued_at))
        now = time.time()
        due = {}
        for poll_id, items in groups.items():
            ids, full = plan_batch([(i, n) for i, n, _ in items], size, relay.settings.max_batch_bytes)
            if full or now - min(q for _, _, q in items) >= relay.settings.batch_interval:
                due[poll_id] = ids
        return due

    def gas(self, count: int, calldata: int) -> int:
        """A fixed gas limit instead of eth_estimateGas, which re-executes the whole batch (the
        node engineer measured anvil 3x slower with it). Measured on castBallots, which keeps no
        per-ballot storage: ~24,200 gas for a usual 800-byte ballot (RSA-2048 credential), i.e.
        ~4,600 a ballot (ecrecover, hashing, log topics) plus ~24 a byte (16 calldata, 8 log
        data) — the formula's 24 a byte covers the second part and, on chains with EIP-7623
        (Prague), the calldata floor up to RSA-4096 credentials. With ballot_gas 7,500 a
        149-ballot batch (the 120,000-byte cap) gets ~12% headroom: tight on purpose, because a
        block only takes a transaction whose *limit* fits in its remaining gas."""
        return 80_000 + count * self.relay.settings.ballot_gas + 24 * calldata

    def send(self, poll_id: int, ids: list[int]) -> bool:
        """Send one poll's batch: True if its ballots moved (sent, or failed after the close)."""
        relay = self.relay
        opens_at, closes_at, _ = relay.window(poll_id)
        now = relay.chain_now()
        if now < opens_at:
            return False
        if now >= closes_at:
            self.fail(ids, "poll.closed")
            return True
        with relay.db.session() as session:
            # Plain rows of the columns the call needs: building ORM objects for a 150-ballot batch
            # cost the relay more CPU than encoding it.
            rows = session.exec(
                # sqlmodel's select() is typed for at most four columns (fastapi/sqlmodel#271)
                select(  # type: ignore[call-overload]
                    Ballot.id,
                    Ballot.token,
                    Ballot.sequence,
                    Ballot.stratum,
                    Ballot.ciphertext,
                    Ballot.token_credential,
                    Ballot.signature,
                ).where(col(Ballot.id).in_(ids), Ballot.status == Ballot.Status.ACCEPTED)
            ).all()
        if not rows:
            return False
        rows = order_batch(rows)
        calldata = calls.encode_cast_ballots(
            poll_id,
            [
                (bytes.fromhex(r.token[2:]), r.sequence, r.stratum, r.ciphertext, r.token_credential, r.signature)
                for r in rows
            ],
        )
        if poll_id in self.estimate_polls:
            # The last batch of this poll reverted: simulate before sending again, so that a
            # revert reason (or a gas limit too low) is seen instead of a revert loop.
            function = relay.poll_book.functions.castBallots(
                poll_id,
                [(r.token, r.sequence, r.stratum, r.ciphertext, r.token_credential, r.signature) for r in rows],
            )
            try:
                gas = relay.estimate(relay.relayer, function)
            except REVERTS as exc:
                name = revert_name(exc) or "Reverted"
                if relay.chain_now() >= closes_at:
                    self.fail(ids, "poll.closed")
                    return True
                if name == "PollBookNotOpen":
                    return False
                self.fail(ids, f"chain.{name}")
                return True
            self.estimate_polls.discard(poll_id)
        else:
            gas = self.gas(len(rows), len(calldata))
        ids_in_batch = [r.id for r in rows]
        table = table_of(Ballot)

        def attach(session, tx: ChainTx) -> int:
            count = 0
            for start in range(0, len(ids_in_batch), 500):
                count += session.exec(
                    update(table)
                    .where(table.c.id.in_(ids_in_batch[start : start + 500]), table.c.status == Ballot.Status.ACCEPTED)
                    .values(status=Ballot.Status.SENT, tx_id=tx.id, tx_hash=tx.tx_hash)
                ).rowcount
            return count

        relay.write_tx(
            relay.relayer, ChainTx.Kind.BALLOTS, poll_id, (relay.deployment.poll_book, calldata), gas, attach
        )
        if relay.metrics:
            relay.metrics.ballots_sent.inc(len(rows))
            relay.metrics.batch_size.observe(len(rows))
        return True

    def fail(self, ids: list[int], reason: str) -> None:
        """Ballots that will not be sent: failed with `reason`."""
        with self.relay.db.write_session() as session:
            count = 0
            for ballot in session.exec(
                select(Ballot).where(col(Ballot.id).in_(ids), Ballot.status == Ballot.Status.ACCEPTED)
            ):
                ballot.status, ballot.reason = Ballot.Status.FAILED, reason
                session.add(ballot)
                count += 1
            session.commit()
        if self.relay.metrics:
            self.relay.metrics.ballots_failed.inc(count)

    def finish(self, row: ChainTx, receipt: dict[str, Any], tx_hash: str) -> None:
        relay = self.relay
        assert row.id is not None and row.poll_id is not None  # a logged batch of one poll's ballots
        ok, block = tx_outcome(receipt)
        closed = False
        if not ok:
            closed = relay.chain_now() >= relay.window(row.poll_id)[1]
            self.estimate_polls.add(row.poll_id)
        with relay.db.write_session() as session:
            fresh = mark_finished(session, row.id, ok, block, tx_hash)
            if fresh is None:
                return
            self._mark(session, fresh, receipt, ok, closed)
            session.commit()

    def requeue(self, session, row: ChainTx) -> None:
        sent = select(Ballot).where(Ballot.tx_id == row.id, Ballot.status == Ballot.Status.SENT)
        for ballot in session.exec(sent):
            ballot.status, ballot.tx_id, ballot.tx_hash = Ballot.Status.ACCEPTED, None, None
            session.add(ballot)

    def _mark(self, session, row: ChainTx, receipt, ok: bool, closed: bool) -> None:
        """Mark the batch's ballots from the transaction's own events, in bulk UPDATEs."""
        table = table_of(Ballot)
        if not ok:
            if closed:
                result = session.exec(
                    update(table)
                    .where(table.c.tx_id == row.id)
                    .values(status=Ballot.Status.FAILED, reason="poll.closed")
                )
                if self.relay.metrics:
                    self.relay.metrics.ballots_failed.inc(result.rowcount)
            else:
                session.exec(
                    update(table)
                    .where(table.c.tx_id == row.id)
                    .values(status=Ballot.Status.ACCEPTED, tx_id=None, tx_hash=None)
                )
            return
        assert row.poll_id is not None  # a batch of one poll's ballots
        outcome = ballot_outcomes(receipt.get("logs", []), self.relay.deployment.poll_book, row.poll_id)
        ballots = session.exec(select(Ballot.id, Ballot.token, Ballot.sequence).where(Ballot.tx_id == row.id)).all()
        confirmed, others = [], []
        for ballot_id, token, sequence in ballots:
            status, reason = outcome.get((token.lower(), sequence), (Ballot.Status.FAILED, "missing from the receipt"))
            if status == Ballot.Status.CONFIRMED:
                confirmed.append(ballot_id)
            else:
                others.append({"ballot_id": ballot_id, "new_status": status, "new_reason": reason})
        block = row.block_number
        for start in range(0, len(confirmed), 500):
            session.exec(
                update(table)
                .where(table.c.id.in_(confirmed[start : start + 500]))
                .values(status=Ballot.Status.CONFIRMED, reason=None, block_number=block, tx_hash=row.tx_hash)
            )
        if others:
            session.connection().execute(
                update(table)
                .where(table.c.id == bindparam("ballot_id"))
                .values(
                    status=bindparam("new_status"),
                    reason=bindparam("new_reason"),
                    block_number=block,
                    tx_hash=row.tx_hash,
                ),
                others,
            )
        if self.relay.metrics:
            self.relay.metrics.ballots_confirmed.inc(len(confirmed))
            self.relay.metrics.ballots_rejected.inc(len(others))

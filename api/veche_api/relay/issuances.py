"""Issuances: the relay's handler of `issuances` transactions (PollBook.recordIssuances), the
issuer key's one call for each issued token: the resident's signed request with its register
proof, which credits the resident's points in the same call (protocol v2). An Issuance row is
`recorded` (and `credited`) once it is on chain. `credits` transactions (v1's separate
CityPoints.credit) are retired: a log written by an older API is still finished, never made.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import update
from sqlmodel import col, func, select

from veche_core import calls

from ..chain import REVERTS, revert_name
from ..models import ChainTx, Issuance, table_of
from ..register import Registers
from .health import QuarantineKind
from .receipts import mark_finished, tx_outcome

# The contract's guard (one issuance per resident and poll): a batch refused with it may hold
# items that are already on chain.
ALREADY_DONE = ("PollBookAlreadyIssued",)


@dataclass(frozen=True)
class Ledger:
    """What one of the two calls records on an Issuance row."""

    kind: ChainTx.Kind
    tx_column: str  # the Issuance column that points at the call's ChainTx
    done_flag: str  # the Issuance flag set once the call is on chain
    quarantine: QuarantineKind


LEDGERS = {
    ChainTx.Kind.ISSUANCES: Ledger(ChainTx.Kind.ISSUANCES, "record_tx_id", "recorded", QuarantineKind.ISSUANCES),
}
RETIRED = ChainTx.Kind.CREDITS  # finished if an older API logged one; never sent


class Issuances:
    """What the relay does for issued tokens: batch their records and credits, send, finish."""

    kinds = (*LEDGERS, RETIRED)

    def __init__(self, relay) -> None:
        self.relay = relay
        self.registers = Registers(relay.db)
        self.gas_per_item: dict[ChainTx.Kind, int] = {}  # from the last estimate of each kind

    def flush(self, force: bool = False) -> bool:
        """Batches by size and by time, as ballots (`issued_at` is in whole seconds); `force`
        when ballots are about to be sent, so that no ballot goes out before its issuance."""
        relay = self.relay
        busy = False
        now = time.time()
        for ledger in LEDGERS.values():
            if not relay.room(relay.issuer):
                break
            column, flag = getattr(Issuance, ledger.tx_column), getattr(Issuance, ledger.done_flag)
            held = relay.isolation.held(ledger.quarantine)
            pending = (
                column.is_(None),
                flag == False,  # noqa: E712  (SQL, not Python: `IS false` would not use the index)
                Issuance.status != Issuance.Status.FAILED,
                *([col(Issuance.poll_id).not_in(held)] if held else []),
            )
            with relay.db.session() as session:
                # An aggregate first: loading up to 500 ORM rows on every pass only to find the
                # batch not yet due cost the relay a fifth of a core under issuance load.
                count, oldest = session.exec(select(func.count(), func.min(Issuance.issued_at)).where(*pending)).one()
                if not count or not (
                    force or count >= relay.settings.batch_size or now - oldest >= relay.settings.batch_interval
                ):
                    continue
                rows = session.exec(
                    select(Issuance).where(*pending).order_by(col(Issuance.id)).limit(relay.settings.batch_size)
                ).all()
            by_poll: dict[int, list[Issuance]] = defaultdict(list)
            for row in rows:
                by_poll[row.poll_id].append(row)
            for poll_id, items in by_poll.items():
                busy |= relay.isolation.run(
                    ledger.quarantine, poll_id, partial(self.send, ledger, poll_id, items), True
                )
        return busy

    def _call(self, kind: ChainTx.Kind, poll_id: int, items: list[Issuance], points: int):
        """(contract, calldata, the same call as a web3 function — built only when estimating)."""
        relay = self.relay
        if kind == ChainTx.Kind.ISSUANCES:
            records = [
                calls.IssuanceRecord(
                    i.resident,
                    i.stratum,
                    bytes(i.blinded_message_hash),
                    i.deadline,
                    bytes(i.request_signature),
                    i.leaf_index,
                    self.registers.tree(poll_id, i.stratum).proof(i.leaf_index),
                )
                for i in items
            ]
            return (
                relay.deployment.poll_book,
                calls.encode_record_issuances(poll_id, records),
                lambda: relay.poll_book.functions.recordIssuances(poll_id, [tuple(r) for r in records]),
            )
        raise ValueError(f"not an issuance kind: {kind!r}")

    def send(self, ledger: Ledger, poll_id: int, items: list[Issuance]) -> bool:
        """Calldata encoded once (veche_core.calls: web3's encoder validated all 500 items on
        each of estimate_gas and build_transaction, a fifth of a core at 500 tokens/s). The gas
        limit comes from the per-item gas of the last estimate of this kind; a batch that
        reverts clears it, so the next one is simulated again (and a revert reason is seen)."""
        relay = self.relay
        kind = ledger.kind
        _, closes_at, points = relay.window(poll_id)
        to, data, function = self._call(kind, poll_id, items, points)
        per_item = self.gas_per_item.get(kind)
        if per_item is not None:
            gas = 100_000 + per_item * len(items)
        else:
            try:
                gas = relay.estimate(relay.issuer, function())
            except REVERTS as exc:
                name = revert_name(exc) or "Reverted"
                closed = relay.chain_now() >= closes_at
                with relay.db.write_session() as session:
                    for item in items:
                        fresh = session.get(Issuance, item.id)
                        if name in ALREADY_DONE and self.already_done(kind, fresh):
                            fresh.recorded = fresh.credited = True
                            fresh.status = Issuance.Status.RECORDED
                        elif closed or name not in ALREADY_DONE:
                            fresh.status, fresh.reason = (
                                Issuance.Status.FAILED,
                                "poll.closed" if closed else f"chain.{name}",
                            )
                        session.add(fresh)
                    session.commit()
                return True
            if len(items) >= 10:  # large enough for the fixed part not to dominate the per-item figure
                self.gas_per_item[kind] = -(-gas // len(items))
        ids = [i.id for i in items]

        table = table_of(Issuance)
        column = table.c[ledger.tx_column]

        def attach(session, tx: ChainTx) -> int:
            # Bulk statements, not ORM rows: per token the ORM round trip cost more than the
            # transaction it describes.
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                session.exec(update(table).where(table.c.id.in_(part)).values({column: tx.id}))
                session.exec(
                    update(table)
                    .where(table.c.id.in_(part), table.c.status == Issuance.Status.PENDING)
                    .values(status=Issuance.Status.SENT)
                )
            return len(ids)

        relay.write_tx(relay.issuer, kind, poll_id, (to, data), gas, attach)
        return True

    def already_done(self, kind: ChainTx.Kind, issuance: Issuance) -> bool:
        """Whether the chain already holds this item's record (issuances) or credit (credits)."""
        relay = self.relay
        if kind == ChainTx.Kind.ISSUANCES:
            return relay.poll_book.functions.isIssued(issuance.poll_id, issuance.resident).call()
        raise ValueError(f"not an issuance kind: {kind!r}")

    def finish(self, row: ChainTx, receipt: dict[str, Any], tx_hash: str) -> None:
        relay = self.relay
        ok, block = tx_outcome(receipt)
        closed = False
        if not ok:
            closed = relay.chain_now() >= relay.window(row.poll_id)[1]
            self.gas_per_item.pop(ChainTx.Kind(row.kind), None)
        assert row.id is not None  # (every logged transaction has its id)
        with relay.db.write_session() as session:
            fresh = mark_finished(session, row.id, ok, block, tx_hash)
            if fresh is None:
                return
            if ChainTx.Kind(fresh.kind) != RETIRED:
                self._mark(session, fresh, ok, closed)
            session.commit()

    def _mark(self, session, row: ChainTx, ok: bool, closed: bool) -> None:
        kind = ChainTx.Kind(row.kind)
        ledger = LEDGERS[kind]
        column = getattr(Issuance, ledger.tx_column)
        if ok:  # the common case, in two bulk statements
            table = table_of(Issuance)
            mine = table.c[ledger.tx_column] == row.id
            session.exec(update(table).where(mine).values(recorded=True, credited=True))  # one call does both
            session.exec(
                update(table)
                .where(mine, table.c.status != Issuance.Status.FAILED)
                .values(status=Issuance.Status.RECORDED)
            )
            return
        for issuance in session.exec(select(Issuance).where(column == row.id)).all():  # the call reverted
            done = self.already_done(kind, issuance)  # by an earlier copy that was mined
            if done:
                issuance.recorded = issuance.credited = True
            else:
                setattr(issuance, ledger.tx_column, None)
            if not done and closed:
                issuance.status, issuance.reason = Issuance.Status.FAILED, "poll.closed"
            elif issuance.recorded:
                issuance.status = Issuance.Status.RECORDED
            session.add(issuance)

    def requeue(self, session, row: ChainTx) -> None:
        if ChainTx.Kind(row.kind) == RETIRED:
            return
        ledger = LEDGERS[ChainTx.Kind(row.kind)]
        for issuance in session.exec(select(Issuance).where(getattr(Issuance, ledger.tx_column) == row.id)):
            if not getattr(issuance, ledger.done_flag):
                setattr(issuance, ledger.tx_column, None)
                session.add(issuance)

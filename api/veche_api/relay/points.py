"""Points requests: the relay's handler of `redeem` and `donate` transactions, one resident-signed
CityPoints call each (a PointsRequest row)."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlmodel import col, select

from ..chain import REVERTS, revert_name
from ..models import ChainTx, PointsRequest
from .health import QuarantineKind
from .receipts import mark_finished, tx_outcome


class PointsRequests:
    """What the relay does for redemptions and donations: send each, finish it."""

    kinds = (ChainTx.Kind.REDEEM, ChainTx.Kind.DONATE)

    def __init__(self, relay) -> None:
        self.relay = relay

    def call(self, request: PointsRequest):
        """The request's CityPoints call, as a web3 function."""
        city_points = self.relay.city_points
        if request.kind == ChainTx.Kind.REDEEM:
            return city_points.functions.redeem(
                (request.resident, request.target_id, request.nonce, request.deadline), request.signature
            )
        if request.kind == ChainTx.Kind.DONATE:
            return city_points.functions.donate(
                (request.resident, request.target_id, request.amount, request.nonce, request.deadline),
                request.signature,
            )
        raise ValueError(f"not a points request kind: {request.kind!r}")

    def flush(self) -> bool:
        relay = self.relay
        if not relay.room(relay.relayer):
            return False
        held = relay.isolation.held(QuarantineKind.POINTS)
        with relay.db.session() as session:
            requests = session.exec(
                select(PointsRequest)
                .where(
                    PointsRequest.status == PointsRequest.Status.PENDING,
                    *([col(PointsRequest.id).not_in(held)] if held else []),
                )
                .order_by(col(PointsRequest.id))
                .limit(20)
            ).all()
        busy = False
        for request in requests:
            relay.isolation.run(QuarantineKind.POINTS, request.id, partial(self.send, request), False)
            busy = True
        return busy

    def send(self, request: PointsRequest) -> bool:
        """Sent, or failed by the contract's refusal: True either way (the request moved)."""
        relay = self.relay
        function = self.call(request)
        try:
            gas = relay.estimate(relay.relayer, function)
        except REVERTS as exc:
            with relay.db.write_session() as session:
                fresh = session.get(PointsRequest, request.id)
                fresh.status, fresh.reason = PointsRequest.Status.FAILED, f"chain.{revert_name(exc) or 'Reverted'}"
                session.add(fresh)
                session.commit()
            return True
        request_id = request.id

        def attach(session, tx: ChainTx) -> int:
            fresh = session.get(PointsRequest, request_id)
            fresh.status, fresh.tx_id, fresh.tx_hash = PointsRequest.Status.SENT, tx.id, tx.tx_hash
            session.add(fresh)
            return 1

        relay.write_tx(relay.relayer, ChainTx.Kind(request.kind), None, function, gas, attach)
        return True

    def finish(self, row: ChainTx, receipt: dict[str, Any], tx_hash: str) -> None:
        relay = self.relay
        ok, block = tx_outcome(receipt)
        reason = None if ok else self._revert_reason(row, block)
        assert row.id is not None  # (every logged transaction has its id)
        with relay.db.write_session() as session:
            if mark_finished(session, row.id, ok, block, tx_hash) is None:
                return
            for request in session.exec(select(PointsRequest).where(PointsRequest.tx_id == row.id)):
                request.status = PointsRequest.Status.CONFIRMED if ok else PointsRequest.Status.FAILED
                request.reason = None if ok else (reason or "transaction reverted")
                request.block_number, request.tx_hash = block, tx_hash
                session.add(request)
            session.commit()

    def _revert_reason(self, row: ChainTx, block: int) -> str:
        """Why a mined request reverted: the call replayed on the state before its block."""
        relay = self.relay
        with relay.db.session() as session:
            request = session.exec(select(PointsRequest).where(PointsRequest.tx_id == row.id)).first()
        if request is None:
            return "transaction reverted"
        try:
            self.call(request).call({"from": relay.relayer.address}, block_identifier=max(block - 1, 0))
        except REVERTS as exc:
            return f"chain.{revert_name(exc) or 'Reverted'}"
        except Exception:
            pass
        return "transaction reverted"

    def requeue(self, session, row: ChainTx) -> None:
        for request in session.exec(select(PointsRequest).where(PointsRequest.tx_id == row.id)):
            if request.status == PointsRequest.Status.SENT:
                request.status, request.tx_id = PointsRequest.Status.PENDING, None
                session.add(request)

"""The relay's worker: the loop, its passes, and reconcile (the receipts of everything in flight,
which is also the recovery after a restart). The work itself is done by one handler per
transaction kind (ballots.py, issuances.py, points.py, polls.py)."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from functools import partial
from typing import Any, cast

from sqlalchemy.orm import QueryableAttribute, defer
from sqlmodel import col, select

from veche_core.rpc import RpcClient
from veche_node.contracts import bind

from ..chain import make_web3
from ..chain_polls import read_chain_poll
from ..core.db import Database
from ..errors import ApiError
from ..models import ChainTx, Poll, TxVersion
from .ballots import Ballots
from .health import Heartbeat, Isolation, QuarantineKind, TransientError, describe
from .issuances import Issuances
from .lock import RelayLock
from .outbox import UNFINISHED, Outbox
from .points import PointsRequests
from .polls import PollCreations
from .receipts import KindHandler

log = logging.getLogger("veche_api.relay")


class Relay:
    """The relay of one deployment: started in every process of the city's API (main.py) or of a
    `veche-relay` (relay_app.py), it runs only in the one that holds `RelayLock`. With the city's
    keys (`keys.issuer` set) it also moves issuances, points requests and poll creations; with a
    relay's one key (core.security.RelayKeys), ballots alone."""

    issuer: Outbox  # the city's only: nothing of a relay's ever reads it

    def __init__(self, settings, db: Database, deployment, keys, metrics=None) -> None:
        self.settings = settings
        self.db = db
        self.deployment = deployment
        self.metrics = metrics
        self.w3 = make_web3(settings.rpc_url)
        self.rpc = RpcClient(settings.rpc_url, timeout=30, retries=1)
        self.poll_book, self.city_points = bind(self.w3, deployment)
        self.keys = keys
        self.relayer = Outbox(db, self.w3, keys.relayer, deployment.chain_id)
        self._outboxes = {self.relayer.address: self.relayer}
        city = keys.issuer is not None
        if city:
            self.issuer = Outbox(db, self.w3, keys.issuer, deployment.chain_id)
            # The admin key's logged transactions (createPoll) are signed by the creating request;
            # the relay only finishes, resends and reprices them.
            admin = Outbox(db, self.w3, keys.admin, deployment.chain_id)
            self._outboxes |= {admin.address: admin, self.issuer.address: self.issuer}
        self._windows: dict[int, tuple[int, int, int]] = {}
        self._receipts_seen_at: int | None = None  # block number of the last receipt look
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lock = RelayLock(db)
        self.leader = False
        self.last_error: str | None = None
        self.last_loop: float = 0.0
        self.isolation = Isolation(db, settings.quarantine_retry, on_failure=self._reset_outboxes)
        self.heartbeat = Heartbeat(db)
        self.chain_checked = False
        self.ballots = Ballots(self)
        self.issuances = Issuances(self) if city else None
        self.points = PointsRequests(self) if city else None
        handlers: list[KindHandler] = [self.ballots]
        if self.issuances is not None and self.points is not None:
            handlers += [self.issuances, self.points, PollCreations(self)]
        self._handlers: dict[ChainTx.Kind, KindHandler] = {
            kind: handler for handler in handlers for kind in handler.kinds
        }
        missing = set(ChainTx.Kind) - set(self._handlers) if city else set()
        if missing:
            raise RuntimeError(f"no relay handler for transaction kind(s) {sorted(missing)}")

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="veche-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.lock.try_acquire():
                    break
            except Exception as exc:  # database down: keep trying
                log.warning("relay lock: %s", exc)
            self._stop.wait(0.5)  # another process runs the relay; take over if it dies
        else:
            return
        self.leader = True
        try:
            self._loop()
        finally:
            self.leader = False
            self.lock.release()

    def _loop(self) -> None:
        delay = 0.25
        while not self._stop.is_set():
            try:
                self.heartbeat.beat(self.last_error, chain_checked=self.chain_checked)
                self._check_chain()
                busy = self.step()
                delay = 0.25
                self.last_error = None
            except Exception as exc:  # node down, database busy, anything: back off and retry
                self.last_error = describe(exc)
                log.warning("relay loop failed (%s); retrying in %.1f s", self.last_error, delay)
                self._reset_outboxes()
                try:
                    self.heartbeat.beat(self.last_error, chain_checked=self.chain_checked)
                except Exception:  # the database is down too: /health finds the heartbeat stale
                    pass
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)
                continue
            self.last_loop = time.time()
            if not busy:
                self._stop.wait(self.settings.receipt_poll)

    def _reset_outboxes(self) -> None:
        for outbox in self._outboxes.values():
            outbox.reset()

    def _check_chain(self) -> None:
        """Nothing is signed for a node that serves another chain (the API may have started
        while its node was down, so this is checked here, once the node answers)."""
        if self.chain_checked:
            return
        actual = int(self.rpc.call("eth_chainId"), 16)
        if actual != self.deployment.chain_id:
            raise RuntimeError(f"the node serves chain {actual}, the deployment is on chain {self.deployment.chain_id}")
        self.chain_checked = True

    def step(self) -> bool:
        """One pass; True if anything moved (so the loop goes again at once). Each poll's batch,
        each transaction's bookkeeping and each points request runs isolated (health.py):
        one that keeps failing is quarantined, and the others go on."""
        self.isolation.refresh()
        busy = self.reconcile()
        ballot_groups = self.ballots.due() if self.room(self.relayer) else {}
        # Issuances first: every ballot in the snapshot above was accepted after its token was
        # issued, so the issuance is already queued and goes out no later than the ballot.
        if self.issuances is not None:
            busy |= self.issuances.flush(force=bool(ballot_groups))
        for poll_id, ids in ballot_groups.items():
            if not self.room(self.relayer):
                break
            busy |= self.isolation.run(QuarantineKind.BALLOTS, poll_id, partial(self.ballots.send, poll_id, ids), True)
        if self.points is not None:
            busy |= self.points.flush()
        self.isolation.settle()
        return busy

    # --- services of the handlers ------------------------------------------------------------

    def room(self, outbox: Outbox) -> bool:
        """Whether `outbox` may sign another transaction (`max_in_flight`)."""
        return outbox.in_flight() < self.settings.max_in_flight

    def window(self, poll_id: int) -> tuple[int, int, int]:
        """(opens_at, closes_at, points) of a poll, from the database, or else (a relay's, which
        holds no polls) from the chain (cached)."""
        if poll_id not in self._windows:
            with self.db.session() as session:
                poll = session.get(Poll, poll_id)
            if poll is not None:
                self._windows[poll_id] = (poll.opens_at, poll.closes_at, poll.points)
            else:
                try:
                    created = read_chain_poll(self.rpc, self.deployment, poll_id)
                except ApiError as exc:
                    if exc.status == 503:  # the node, not the poll: back off as for any node outage
                        raise TransientError(exc.message) from None
                    raise
                self._windows[poll_id] = (created.opens_at, created.closes_at, created.points)
        return self._windows[poll_id]

    def chain_now(self) -> int:
        return int(self.rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    def estimate(self, outbox: Outbox, function) -> int:
        gas = function.estimate_gas({"from": outbox.address})
        return int(gas * 1.25) + 50_000

    def write_tx(self, outbox: Outbox, kind: ChainTx.Kind, poll_id: int | None, function, gas: int, attach) -> ChainTx:
        row = outbox.write(kind, poll_id, function, gas, attach)
        outbox.send(row)
        return row

    # --- reconcile: receipts of everything in flight (also the recovery after a restart) -----

    def reconcile(self) -> bool:
        """Receipts are read only when a block was mined since the last look (a pending
        transaction cannot have one before), so a full in-flight window costs one
        `eth_blockNumber` per pass while waiting for the next block."""
        with self.db.session() as session:
            rows = session.exec(
                select(ChainTx)
                .options(defer(cast("QueryableAttribute[bytes]", ChainTx.raw)))  # sqlmodel types a column as its value
                .where(col(ChainTx.status).in_(UNFINISHED))
                .order_by(col(ChainTx.sender), col(ChainTx.nonce))
            ).all()
        if not rows:
            return False
        block = self.rpc.block_number()
        look = block != self._receipts_seen_at
        with self.db.session() as session:
            versions: dict[int, list[tuple[str, float]]] = defaultdict(list)
            for tx_id, tx_hash, replaced_at in session.exec(
                select(TxVersion.chain_tx_id, TxVersion.tx_hash, TxVersion.replaced_at)
                .where(col(TxVersion.chain_tx_id).in_([r.id for r in rows]))
                .order_by(col(TxVersion.id))
            ):
                versions[tx_id].append((tx_hash, replaced_at))
        busy = False
        failure: TransientError | None = None
        senders: set[str] = set()
        held = self.isolation.held(QuarantineKind.CHAIN_TX)
        for row in rows:
            assert row.id is not None  # (every logged transaction has its id)
            lowest = row.sender not in senders  # rows are in nonce order per sender
            senders.add(row.sender)
            if row.id in held:
                continue
            # One transaction the node refuses (TransientError) must not hold up the others:
            # the first such error is raised after the pass, and the loop backs off.
            try:
                busy |= self.isolation.run(
                    QuarantineKind.CHAIN_TX,
                    row.id,
                    partial(self._reconcile_one, row, versions.get(row.id, []), look, lowest),
                    True,
                )
            except TransientError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        self._receipts_seen_at = block
        return busy

    def _reconcile_one(self, row: ChainTx, earlier: list[tuple[str, float]], look: bool, lowest: bool) -> bool:
        """Finish `row` from its receipt, or reprice or resend it when due; True if it moved."""
        forgotten = False
        if look or row.status == ChainTx.Status.SIGNED:
            found = self._receipt(row, earlier)
            if found is not None:
                self.handler(row.kind).finish(row, *found)
                return True
            # Neither mined nor pending: the node dropped it from its pool (anvil does, when
            # a later transaction of ours was picked out of order or the base fee rose above
            # its price; geth may under pressure).
            forgotten = (
                row.status == ChainTx.Status.SENT and self.rpc.call("eth_getTransactionByHash", [row.tx_hash]) is None
            )
        outbox = self._outboxes.get(row.sender)
        if outbox is None:
            return False
        since = max([row.created_at] + [at for _, at in earlier])
        if lowest and time.time() - since >= self.settings.reprice_after:
            repriced = outbox.reprice(row)
            if repriced is not None:
                outbox.send(repriced)
                return True
        due = (
            row.status == ChainTx.Status.SIGNED
            or forgotten
            or (time.time() - (row.sent_at or 0)) > self.settings.resend_after
        )
        if not due:
            return False
        outcome = outbox.broadcast(self._raw(row))
        if outcome == "nonce_used":
            # Mined in the meantime (this version or an earlier one)? Then the next pass
            # finds the receipt; else another transaction took the nonce.
            if self._receipt(row, earlier) is None:
                self._drop(row)
                outbox.reset()
            return True
        with self.db.write_session() as session:
            fresh = session.get_one(ChainTx, row.id)
            fresh.status, fresh.sent_at = ChainTx.Status.SENT, time.time()
            fresh.attempts += 1
            session.add(fresh)
            session.commit()
        return False

    def _receipt(self, row: ChainTx, earlier: list[tuple[str, float]]) -> tuple[dict[str, Any], str] | None:
        """The receipt of whichever version of `row` was mined (at most one can be), and its hash."""
        for tx_hash in [row.tx_hash, *(h for h, _ in reversed(earlier))]:
            receipt = self.rpc.call("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                return receipt, tx_hash
        return None

    def _raw(self, row: ChainTx) -> bytes:
        """The latest signed version of `row` (read apart: reconcile defers the column)."""
        with self.db.session() as session:
            return bytes(session.exec(select(ChainTx.raw).where(ChainTx.id == row.id)).one())

    def _drop(self, row: ChainTx) -> None:
        """The nonce went to no transaction of ours that we can find: queue the items again."""
        log.warning("transaction %s (nonce %d) was dropped; its items are queued again", row.tx_hash, row.nonce)
        with self.db.write_session() as session:
            fresh = session.get_one(ChainTx, row.id)
            fresh.status = ChainTx.Status.DROPPED
            session.add(fresh)
            self.handler(fresh.kind).requeue(session, fresh)
            session.commit()

    # --- one handler per kind ---------------------------------------------------------------

    def handler(self, kind: str) -> KindHandler:
        """The handler of a logged transaction's kind; ValueError for a kind this relay does not
        know (the transaction is then quarantined with that reason, never taken for another)."""
        return self._handlers[ChainTx.Kind(kind)]

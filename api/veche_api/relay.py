"""The relay: a worker thread that moves queued ballots, issuances and points requests to the
chain in batches, durably.

Write-ahead protocol (crash safety):
1. Items are committed to the database before the API acknowledges them (ballots: status
   `accepted`; issuances: `pending`; points requests: `pending`).
2. The worker picks a batch, builds the call, estimates gas and signs it with the next nonce of
   the sending account; in ONE database transaction it stores the signed raw transaction (nonce,
   hash) as a `ChainTx` (status `signed`) and points the items at it; only then it broadcasts.
3. `reconcile` runs first on every loop, so also right after a restart: for every unfinished
   ChainTx it reads the receipt. Mined → each item is marked from the transaction's own events
   (BallotCast → confirmed, BallotRejected → rejected with the contract's reason). Not mined →
   the same raw bytes are broadcast again. A transaction whose nonce was consumed without a
   receipt (for any of its versions, see 5) is `dropped` and its items are queued again.
   Exactly-once rests on this log: a ballot is only ever re-sent as the same raw transaction or
   as a repriced version of the same nonce, and one nonce is mined at most once; items are
   queued again only when their nonce went to a transaction that is not ours. PollBook no
   longer judges sequences (every well-signed ballot is cast), so a ballot posted twice would
   not be a no-op: the verifier fails check 5 on any duplicate. Issuances and credits keep
   their contracts' guards (one issuance per pseudonym, one credit per resident and poll).
4. Node down, nonce trouble, reverted transactions: the loop backs off exponentially (up to
   10 s), re-reads its nonce from chain and database, and retries. A reverted batch is requeued
   unless the poll has closed (then its items fail with reason `poll.closed`).
5. Stuck: a sender's lowest unfinished transaction that has waited `reprice_after` seconds
   (the node evicted it as underpriced, or keeps it but does not mine it) is re-signed with the
   SAME nonce, gas and calldata at a gas price 12.5% higher (at least the current price): the
   new version is written to the log (the old hash kept as a `TxVersion`) before it is
   broadcast. One nonce means at most one version is mined; the receipt of whichever is
   finishes the transaction and its items. The price stops rising at twice the current price
   (a transaction paying that much waits for something a higher fee does not cure).

Poll creation uses the same log (kind `poll`, `PollCreation`): the request signs createPoll
with the admin key, writes it with the poll's keys, broadcasts and waits; if it dies on the
way, reconcile finishes the poll from the receipt's PollCreated event (`finish_poll_tx`).

Isolation (relay_health.py): each poll's batches, each logged transaction's bookkeeping and each
points request runs on its own; one that keeps failing for a reason other than an unreachable
node or database is quarantined with its reason (shown by /health and /metrics) and the rest
flows on. The relay's heartbeat and last error are written to the database for every API
process to report.

Batches: by size (`batch_size`) and by time (`batch_interval` since the oldest queued ballot),
grouped by poll, shuffled with `secrets.SystemRandom` (so the order on chain does not reveal
the order of arrival), except that one token's ballots keep ascending sequence order, so that
the chain shows a revote after the ballot it replaces (counting does not depend on it: the
verifier counts each token's highest sequence wherever it stands).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import defaultdict
from functools import partial
from typing import Any

import rlp
from eth_utils import to_checksum_address
from sqlalchemy import bindparam, update
from sqlalchemy.orm import defer
from sqlmodel import func, select

from veche_core import calls, events
from veche_core.errors import EncodingError
from veche_core.rpc import RpcClient
from veche_node.contracts import bind

from .chain import REVERTS, make_web3, revert_name
from .core.db import Database, ProcessLock
from .models import (
    DRAFT_POLL_BASE, Ballot, ChainTx, Issuance, IssuerKey, Poll, PointsRequest, PollCreation, TxVersion,
)
from .relay_health import Heartbeat, Isolation, QuarantineKind, TransientError, describe

log = logging.getLogger("veche_api.relay")

UNFINISHED = ("signed", "sent")
REPRICE_CEILING = 2  # never reprice a transaction already paying this multiple of the current price


class Outbox:
    """The nonce sequence and write-ahead log of one sending account."""

    def __init__(self, db: Database, w3, account, chain_id: int) -> None:
        self.db = db
        self.w3 = w3
        self.account = account
        self.address = account.address
        self.chain_id = chain_id
        self._nonce: int | None = None

    def reset(self) -> None:
        self._nonce = None

    def next_nonce(self) -> int:
        if self._nonce is None:
            on_chain = self.w3.eth.get_transaction_count(self.address, "pending")
            with self.db.session() as session:
                written = session.exec(
                    select(func.max(ChainTx.nonce)).where(ChainTx.sender == self.address)
                ).one()
            self._nonce = max(on_chain, -1 if written is None else written + 1)
        return self._nonce

    def in_flight(self) -> int:
        with self.db.session() as session:
            return session.exec(
                select(func.count()).select_from(ChainTx).where(
                    ChainTx.sender == self.address, ChainTx.status.in_(UNFINISHED)
                )
            ).one()

    def sign(self, function, gas: int) -> tuple[int, bytes, str]:
        """`function` is a web3 contract call, or (to, calldata) already encoded."""
        nonce = self.next_nonce()
        gas_price = self.gas_price()
        fields = {"nonce": nonce, "gas": gas, "gasPrice": gas_price, "chainId": self.chain_id}
        if isinstance(function, tuple):
            to, data = function
            tx = {**fields, "to": to, "data": data, "value": 0}
        else:
            tx = function.build_transaction({"from": self.address, **fields})
        log.debug("signing %s nonce %d gas %d price %d", self.address, nonce, gas, gas_price)
        signed = self.account.sign_transaction(tx)
        return nonce, bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()

    def gas_price(self) -> int:
        """Twice the latest base fee plus a 1 gwei tip (legacy transactions, so the raw bytes
        can be re-sent as they are). Not eth_gasPrice: anvil derives it from recent
        transactions' prices, and doubling that each time runs away."""
        base = self.w3.eth.get_block("latest").get("baseFeePerGas")
        if base is None:
            return int(self.w3.eth.gas_price)
        return int(base) * 2 + 10**9

    def committed(self, nonce: int) -> None:
        """The transaction with `nonce` is in the log: the next one gets nonce + 1."""
        self._nonce = nonce + 1

    def write(self, kind: str, poll_id: int | None, function, gas: int, attach) -> ChainTx:
        """Sign with the next nonce and log the raw transaction with its items (`attach`) in ONE
        database transaction: nothing is broadcast that the log does not hold."""
        nonce, raw, tx_hash = self.sign(function, gas)
        with self.db.write_session() as session:
            row = ChainTx(sender=self.address, nonce=nonce, kind=kind, poll_id=poll_id, raw=raw, tx_hash=tx_hash)
            session.add(row)
            session.flush()
            row.item_count = attach(session, row)
            session.add(row)
            session.commit()
        self.committed(nonce)
        return row

    def send(self, row: ChainTx) -> str:
        """Broadcast a logged transaction and record the attempt; TransientError propagates."""
        try:
            outcome = self.broadcast(row.raw)
        except TransientError as exc:
            with self.db.write_session() as session:
                fresh = session.get(ChainTx, row.id)
                fresh.attempts += 1
                fresh.last_error = str(exc)
                session.add(fresh)
                session.commit()
            raise
        with self.db.write_session() as session:
            fresh = session.get(ChainTx, row.id)
            fresh.attempts += 1
            if fresh.status == "signed":
                fresh.status = "sent"
            fresh.sent_at = time.time()
            if outcome == "nonce_used":
                fresh.last_error = "nonce already used"
            session.add(fresh)
            session.commit()
        return outcome

    def reprice(self, row: ChainTx) -> ChainTx | None:
        """Re-sign `row` (same nonce, gas, recipient and calldata) at a gas price 12.5% higher —
        geth's minimum bump for a replacement — and at least the current price; log the new
        version (status `signed`, the old hash as a TxVersion) before anyone broadcasts it.
        None if the transaction is finished or already pays REPRICE_CEILING × the current price."""
        with self.db.session() as session:
            raw = bytes(session.exec(select(ChainTx.raw).where(ChainTx.id == row.id)).one())
        if raw[0] < 0xC0:
            raise ValueError("only legacy transactions are repriced")  # Outbox.sign makes no other
        nonce, price, gas, to, value, data = (rlp.decode(raw)[i] for i in range(6))
        price, current = int.from_bytes(price, "big"), self.gas_price()
        if price >= REPRICE_CEILING * current:
            return None
        new_price = max(-(-price * 9 // 8), current)
        signed = self.account.sign_transaction({
            "nonce": int.from_bytes(nonce, "big"), "gasPrice": new_price, "gas": int.from_bytes(gas, "big"),
            "to": to_checksum_address(to), "value": int.from_bytes(value, "big"), "data": data,
            "chainId": self.chain_id,
        })
        with self.db.write_session() as session:
            fresh = session.get(ChainTx, row.id)
            if fresh is None or fresh.status not in UNFINISHED or bytes(fresh.raw) != raw:
                return None
            session.add(TxVersion(chain_tx_id=fresh.id, tx_hash=fresh.tx_hash, gas_price=price))
            fresh.raw, fresh.tx_hash = bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()
            fresh.status, fresh.last_error = "signed", f"repriced: gas price {price} -> {new_price}"
            session.add(fresh)
            session.commit()
        log.warning("transaction nonce %d of %s unmined: repriced %d -> %d wei (%s)",
                    fresh.nonce, self.address, price, new_price, fresh.tx_hash)
        return fresh

    def broadcast(self, raw: bytes) -> str:
        """'ok', or 'nonce_used' when the node says the nonce is taken; TransientError else."""
        try:
            self.w3.eth.send_raw_transaction(raw)
            return "ok"
        except Exception as exc:  # web3 raises ValueError/Web3RPCError/ConnectionError here
            text = str(exc).lower()
            if "already known" in text or "known transaction" in text or "already imported" in text:
                return "ok"
            if "nonce too low" in text or "nonce has already been used" in text:
                return "nonce_used"
            raise TransientError(f"broadcast failed: {type(exc).__name__}: {str(exc)[:300]}") from None


def _order_batch(rows: list) -> list:
    """Shuffle, then restore ascending sequence among each token's own positions."""
    rows = list(rows)
    secrets.SystemRandom().shuffle(rows)
    positions: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        positions[row.token].append(index)
    for slots in positions.values():
        if len(slots) > 1:
            ordered = sorted((rows[i] for i in slots), key=lambda r: r.sequence)
            for slot, row in zip(slots, ordered):
                rows[slot] = row
    return rows


class RelayLock(ProcessLock):
    """Exactly one relay per database, however many API processes (uvicorn workers) serve it:
    the relay runs in the process that holds this lock, the others stand by and take over when
    its holder dies (the operating system or PostgreSQL releases the lock with the process)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, "relay", 0x76656368655F72)  # "veche_r"


def plan_batch(items: list[tuple[int, int]], max_count: int, max_bytes: int) -> tuple[list[int], bool]:
    """The ids of the next batch from (id, calldata bytes) in queue order, capped by count and by
    the encoded calldata size of the whole castBallots call (geth's pool refuses transactions over
    128 KiB); `full` when a cap was reached, i.e. waiting would not make the batch bigger."""
    ids: list[int] = []
    total = calls.CAST_BALLOTS_OVERHEAD
    for ballot_id, size in items:
        if len(ids) >= max_count or (ids and total + size > max_bytes):
            return ids, True
        ids.append(ballot_id)
        total += size
    return ids, len(ids) >= max_count or total >= max_bytes


def ballot_outcomes(logs, poll_book: str, poll_id: int) -> dict[tuple[str, int], tuple[str, str | None]]:
    """(lower-case token, sequence) → (status, reason) from a castBallots receipt's logs:
    BallotCast → confirmed, BallotRejected → rejected with the contract's reason
    (`events.rejection_reason`). Logs of other contracts or polls, and any that do not decode,
    are not this batch's."""
    contract = poll_book.lower()
    outcome: dict[tuple[str, int], tuple[str, str | None]] = {}
    for raw in logs:
        topics = raw.get("topics") or []
        if str(raw.get("address", "")).lower() != contract or not topics:
            continue
        topic0 = str(topics[0]).lower()
        try:
            if topic0 == events.BALLOT_CAST.topic:
                cast = events.ballot_cast(raw)
                if cast.poll_id == poll_id:
                    outcome["0x" + cast.token.hex(), cast.sequence] = ("confirmed", None)
            elif topic0 == events.BALLOT_REJECTED.topic:
                rejected = events.ballot_rejected(raw)
                if rejected.poll_id == poll_id:
                    outcome["0x" + rejected.token.hex(), rejected.sequence] = (
                        "rejected", events.rejection_reason(rejected.reason))
        except EncodingError:
            continue
    return outcome


def finish_poll_tx(db: Database, keys, poll_book: str, tx_id: int, receipt: dict[str, Any], tx_hash: str) -> None:
    """Finish a createPoll transaction from its receipt: the Poll and its issuer keys (sealed
    again, under the chain's poll id) are saved, or the PollCreation fails. Idempotent: the
    creating request and the relay's reconcile may both get here."""
    ok = int(receipt["status"], 16) == 1
    with db.session() as session:
        creation = session.exec(select(PollCreation).where(PollCreation.tx_id == tx_id)).one()
    poll_id = events.poll_created_id(receipt.get("logs", []), poll_book) if ok else None
    issuer_keys = []
    if poll_id is not None:  # opening a key takes ~0.1 s: not while holding the write lock
        for stratum, (public, sealed) in enumerate(json.loads(creation.issuer_keys_json)):
            private = keys.open_issuer_key(DRAFT_POLL_BASE + creation.id, stratum, bytes.fromhex(sealed))
            issuer_keys.append(IssuerKey(poll_id=poll_id, stratum=stratum, public_key=bytes.fromhex(public),
                                         sealed_private_key=keys.seal_issuer_key(poll_id, stratum, private)))
    with db.write_session() as session:
        row = session.get(ChainTx, tx_id, with_for_update=True)
        if row.status not in UNFINISHED:
            return
        row.status = "mined" if ok else "reverted"
        row.block_number, row.tx_hash = int(receipt["blockNumber"], 16), tx_hash
        session.add(row)
        creation = session.get(PollCreation, creation.id)
        if poll_id is None:
            creation.status, creation.reason = "failed", "chain.Reverted" if not ok else "chain.NoPollCreated"
        else:
            session.add(Poll(id=poll_id, create_tx=tx_hash, **json.loads(creation.poll_json)))
            session.flush()
            session.add_all(issuer_keys)
            creation.status, creation.poll_id = "created", poll_id
        session.add(creation)
        session.commit()
    log.info("createPoll %s: %s", tx_hash, f"poll {poll_id}" if poll_id is not None else "failed")


class Relay:
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
        self.issuer = Outbox(db, self.w3, keys.issuer, deployment.chain_id)
        # The admin key's logged transactions (createPoll) are signed by the creating request;
        # the relay only finishes, resends and reprices them.
        admin = Outbox(db, self.w3, keys.admin, deployment.chain_id)
        self._outboxes = {admin.address: admin, self.relayer.address: self.relayer, self.issuer.address: self.issuer}
        self._windows: dict[int, tuple[int, int, int]] = {}
        self._estimate_polls: set[int] = set()  # polls whose last ballot batch reverted
        self._gas_per_item: dict[str, int] = {}  # issuances / credits: from the last estimate
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
        each transaction's bookkeeping and each points request runs isolated (relay_health.py):
        one that keeps failing is quarantined, and the others go on."""
        self.isolation.refresh()
        busy = self.reconcile()
        ballot_groups = self._due_ballots() if self._room(self.relayer) else {}
        # Issuances first: every ballot in the snapshot above was accepted after its token was
        # issued, so the issuance is already queued and goes out no later than the ballot.
        busy |= self.flush_issuances(force=bool(ballot_groups))
        for poll_id, ids in ballot_groups.items():
            if not self._room(self.relayer):
                break
            busy |= self.isolation.run(QuarantineKind.BALLOTS, poll_id, partial(self.send_ballots, poll_id, ids), True)
        busy |= self.flush_points()
        self.isolation.settle()
        return busy

    def _room(self, outbox: Outbox) -> bool:
        return outbox.in_flight() < self.settings.max_in_flight

    # --- helpers ----------------------------------------------------------------------------

    def _window(self, poll_id: int) -> tuple[int, int, int]:
        if poll_id not in self._windows:
            with self.db.session() as session:
                poll = session.get(Poll, poll_id)
            if poll is None:
                raise RuntimeError(f"poll {poll_id} is not in the database")
            self._windows[poll_id] = (poll.opens_at, poll.closes_at, poll.points)
        return self._windows[poll_id]

    def _chain_now(self) -> int:
        return int(self.rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    def _estimate(self, outbox: Outbox, function) -> int:
        gas = function.estimate_gas({"from": outbox.address})
        return int(gas * 1.25) + 50_000

    def _write_tx(self, outbox: Outbox, kind: str, poll_id: int | None, function, gas: int, attach) -> ChainTx:
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
                select(ChainTx).options(defer(ChainTx.raw))
                .where(ChainTx.status.in_(UNFINISHED)).order_by(ChainTx.sender, ChainTx.nonce)
            ).all()
        if not rows:
            return False
        block = self.rpc.block_number()
        look = block != self._receipts_seen_at
        with self.db.session() as session:
            versions: dict[int, list[tuple[str, float]]] = defaultdict(list)
            for tx_id, tx_hash, replaced_at in session.exec(
                select(TxVersion.chain_tx_id, TxVersion.tx_hash, TxVersion.replaced_at)
                .where(TxVersion.chain_tx_id.in_([r.id for r in rows])).order_by(TxVersion.id)
            ):
                versions[tx_id].append((tx_hash, replaced_at))
        busy = False
        failure: TransientError | None = None
        senders: set[str] = set()
        held = self.isolation.held(QuarantineKind.CHAIN_TX)
        for row in rows:
            lowest = row.sender not in senders  # rows are in nonce order per sender
            senders.add(row.sender)
            if row.id in held:
                continue
            # One transaction the node refuses (TransientError) must not hold up the others:
            # the first such error is raised after the pass, and the loop backs off.
            try:
                busy |= self.isolation.run(QuarantineKind.CHAIN_TX, row.id, partial(
                    self._reconcile_one, row, versions.get(row.id, []), look, lowest), True)
            except TransientError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        self._receipts_seen_at = block
        return busy

    def _reconcile_one(self, row: ChainTx, earlier: list[tuple[str, float]], look: bool, lowest: bool) -> bool:
        """Finish `row` from its receipt, or reprice or resend it when due; True if it moved."""
        forgotten = False
        if look or row.status == "signed":
            found = self._receipt(row, earlier)
            if found is not None:
                self._finish(row, *found)
                return True
            # Neither mined nor pending: the node dropped it from its pool (anvil does, when
            # a later transaction of ours was picked out of order or the base fee rose above
            # its price; geth may under pressure).
            forgotten = row.status == "sent" and self.rpc.call("eth_getTransactionByHash", [row.tx_hash]) is None
        outbox = self._outboxes.get(row.sender)
        if outbox is None:
            return False
        since = max([row.created_at] + [at for _, at in earlier])
        if lowest and time.time() - since >= self.settings.reprice_after:
            repriced = outbox.reprice(row)
            if repriced is not None:
                outbox.send(repriced)
                return True
        due = (row.status == "signed" or forgotten
               or (time.time() - (row.sent_at or 0)) > self.settings.resend_after)
        if not due:
            return False
        outcome = outbox.broadcast(self._raw(row.id))
        if outcome == "nonce_used":
            # Mined in the meantime (this version or an earlier one)? Then the next pass
            # finds the receipt; else another transaction took the nonce.
            if self._receipt(row, earlier) is None:
                self._drop(row)
                outbox.reset()
            return True
        with self.db.write_session() as session:
            fresh = session.get(ChainTx, row.id)
            fresh.status, fresh.sent_at = "sent", time.time()
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

    def _raw(self, tx_id: int) -> bytes:
        with self.db.session() as session:
            return bytes(session.exec(select(ChainTx.raw).where(ChainTx.id == tx_id)).one())

    def _drop(self, row: ChainTx) -> None:
        """The nonce went to no transaction of ours that we can find: queue the items again."""
        log.warning("transaction %s (nonce %d) was dropped; its items are queued again", row.tx_hash, row.nonce)
        with self.db.write_session() as session:
            fresh = session.get(ChainTx, row.id)
            fresh.status = "dropped"
            session.add(fresh)
            self._requeue(session, fresh)
            session.commit()

    def _requeue(self, session, row: ChainTx) -> None:
        if row.kind == "ballots":
            for ballot in session.exec(select(Ballot).where(Ballot.tx_id == row.id, Ballot.status == "sent")):
                ballot.status, ballot.tx_id, ballot.tx_hash = "accepted", None, None
                session.add(ballot)
        elif row.kind == "issuances":
            for issuance in session.exec(select(Issuance).where(Issuance.record_tx_id == row.id)):
                if not issuance.recorded:
                    issuance.record_tx_id = None
                    session.add(issuance)
        elif row.kind == "credits":
            for issuance in session.exec(select(Issuance).where(Issuance.credit_tx_id == row.id)):
                if not issuance.credited:
                    issuance.credit_tx_id = None
                    session.add(issuance)
        elif row.kind == "poll":
            # Not requeued: the creating request has answered (or died); the admin creates again.
            for creation in session.exec(select(PollCreation).where(PollCreation.tx_id == row.id)):
                creation.status, creation.reason = "failed", "chain.dropped"
                session.add(creation)
        else:
            for request in session.exec(select(PointsRequest).where(PointsRequest.tx_id == row.id)):
                if request.status == "sent":
                    request.status, request.tx_id = "pending", None
                    session.add(request)

    def _finish(self, row: ChainTx, receipt: dict[str, Any], tx_hash: str) -> None:
        if row.kind == "poll":
            finish_poll_tx(self.db, self.keys, self.deployment.poll_book, row.id, receipt, tx_hash)
            return
        ok = int(receipt["status"], 16) == 1
        block = int(receipt["blockNumber"], 16)
        closed = False
        if not ok and row.poll_id is not None:
            closed = self._chain_now() >= self._window(row.poll_id)[1]
            if row.kind == "ballots":
                self._estimate_polls.add(row.poll_id)
        if not ok:
            self._gas_per_item.pop(row.kind, None)
        reason = None
        if not ok and row.kind in ("redeem", "donate"):
            reason = self._replay_reason(row, block)
        with self.db.write_session() as session:
            fresh = session.get(ChainTx, row.id)
            if fresh.status not in UNFINISHED:
                return
            fresh.status = "mined" if ok else "reverted"
            fresh.block_number, fresh.tx_hash = block, tx_hash
            session.add(fresh)
            if row.kind == "ballots":
                self._finish_ballots(session, fresh, receipt, ok, closed)
            elif row.kind in ("issuances", "credits"):
                self._finish_issuances(session, fresh, ok, closed)
            else:
                for request in session.exec(select(PointsRequest).where(PointsRequest.tx_id == row.id)):
                    request.status = "confirmed" if ok else "failed"
                    request.reason = None if ok else (reason or "transaction reverted")
                    request.block_number, request.tx_hash = block, tx_hash
                    session.add(request)
            session.commit()

    def _finish_ballots(self, session, row: ChainTx, receipt, ok: bool, closed: bool) -> None:
        """Mark the batch's ballots from the transaction's own events, in bulk UPDATEs."""
        table = Ballot.__table__
        if not ok:
            if closed:
                result = session.exec(
                    update(table).where(table.c.tx_id == row.id).values(status="failed", reason="poll.closed")
                )
                if self.metrics:
                    self.metrics.ballots_failed.inc(result.rowcount)
            else:
                session.exec(
                    update(table).where(table.c.tx_id == row.id).values(status="accepted", tx_id=None, tx_hash=None)
                )
            return
        outcome = ballot_outcomes(receipt.get("logs", []), self.deployment.poll_book, row.poll_id)
        ballots = session.exec(select(Ballot.id, Ballot.token, Ballot.sequence).where(Ballot.tx_id == row.id)).all()
        confirmed, others = [], []
        for ballot_id, token, sequence in ballots:
            status, reason = outcome.get((token.lower(), sequence), ("failed", "missing from the receipt"))
            if status == "confirmed":
                confirmed.append(ballot_id)
            else:
                others.append({"ballot_id": ballot_id, "new_status": status, "new_reason": reason})
        block = row.block_number
        for start in range(0, len(confirmed), 500):
            session.exec(
                update(table).where(table.c.id.in_(confirmed[start:start + 500]))
                .values(status="confirmed", reason=None, block_number=block, tx_hash=row.tx_hash)
            )
        if others:
            session.connection().execute(
                update(table).where(table.c.id == bindparam("ballot_id"))
                .values(status=bindparam("new_status"), reason=bindparam("new_reason"), block_number=block,
                        tx_hash=row.tx_hash),
                others,
            )
        if self.metrics:
            self.metrics.ballots_confirmed.inc(len(confirmed))
            self.metrics.ballots_rejected.inc(len(others))

    def _finish_issuances(self, session, row: ChainTx, ok: bool, closed: bool) -> None:
        column = Issuance.record_tx_id if row.kind == "issuances" else Issuance.credit_tx_id
        if ok:  # the common case, in two bulk statements
            table = Issuance.__table__
            mine = (table.c.record_tx_id if row.kind == "issuances" else table.c.credit_tx_id) == row.id
            flag = "recorded" if row.kind == "issuances" else "credited"
            session.exec(update(table).where(mine).values({flag: True}))
            session.exec(update(table).where(mine, table.c.recorded, table.c.credited, table.c.status != "failed")
                         .values(status="recorded"))
            return
        for issuance in session.exec(select(Issuance).where(column == row.id)).all():
            done = ok or self._already_done(row.kind, issuance)
            if row.kind == "issuances":
                issuance.recorded = issuance.recorded or done
                if not done:
                    issuance.record_tx_id = None
            else:
                issuance.credited = issuance.credited or done
                if not done:
                    issuance.credit_tx_id = None
            if not done and closed:
                issuance.status, issuance.reason = "failed", "poll.closed"
            elif issuance.recorded and issuance.credited:
                issuance.status = "recorded"
            session.add(issuance)

    def _already_done(self, kind: str, issuance: Issuance) -> bool:
        if kind == "issuances":
            return self.poll_book.functions.isIssued(issuance.poll_id, bytes.fromhex(issuance.pseudonym[2:])).call()
        return self.city_points.functions.credited(issuance.poll_id, issuance.resident).call()

    def _replay_reason(self, row: ChainTx, block: int) -> str:
        with self.db.session() as session:
            request = session.exec(select(PointsRequest).where(PointsRequest.tx_id == row.id)).first()
        if request is None:
            return "transaction reverted"
        try:
            self._points_call(request).call({"from": self.relayer.address}, block_identifier=max(block - 1, 0))
        except REVERTS as exc:
            return f"chain.{revert_name(exc) or 'Reverted'}"
        except Exception:
            pass
        return "transaction reverted"

    # --- ballots ----------------------------------------------------------------------------

    def _due_ballots(self) -> dict[int, list[int]]:
        """Per poll, the next batch if it is full (by count or by calldata size) or its oldest
        ballot has waited `batch_interval`. Quarantined polls are left out of the query, so
        that their queue does not fill every batch's window."""
        size = self.settings.batch_size
        held = self.isolation.held(QuarantineKind.BALLOTS)
        with self.db.session() as session:
            rows = session.exec(
                select(
                    Ballot.id, Ballot.poll_id, Ballot.queued_at, func.length(Ballot.ciphertext),
                    func.length(Ballot.token_credential), func.length(Ballot.signature),
                )
                .where(Ballot.status == "accepted", *([Ballot.poll_id.not_in(held)] if held else []))
                .order_by(Ballot.id)
                .limit(size)  # oldest first; with a backlog, reading more only to send one batch cost a tenth of a core
            ).all()
        groups: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
        for ballot_id, poll_id, queued_at, ct_len, cred_len, sig_len in rows:
            groups[poll_id].append((ballot_id, calls.ballot_calldata_size(ct_len, cred_len, sig_len), queued_at))
        now = time.time()
        due = {}
        for poll_id, items in groups.items():
            ids, full = plan_batch([(i, n) for i, n, _ in items], size, self.settings.max_batch_bytes)
            if full or now - min(q for _, _, q in items) >= self.settings.batch_interval:
                due[poll_id] = ids
        return due

    def _ballot_gas(self, count: int, calldata: int) -> int:
        """A fixed gas limit instead of eth_estimateGas, which re-executes the whole batch (the
        node engineer measured anvil 3x slower with it). Measured on castBallots, which keeps no
        per-ballot storage: ~24,200 gas for a usual 800-byte ballot (RSA-2048 credential), i.e.
        ~4,600 a ballot (ecrecover, hashing, log topics) plus ~24 a byte (16 calldata, 8 log
        data) — the formula's 24 a byte covers the second part and, on chains with EIP-7623
        (Prague), the calldata floor up to RSA-4096 credentials. With ballot_gas 7,500 a
        149-ballot batch (the 120,000-byte cap) gets ~12% headroom: tight on purpose, because a
        block only takes a transaction whose *limit* fits in its remaining gas."""
        return 80_000 + count * self.settings.ballot_gas + 24 * calldata

    def send_ballots(self, poll_id: int, ids: list[int]) -> bool:
        opens_at, closes_at, _ = self._window(poll_id)
        now = self._chain_now()
        if now < opens_at:
            return False
        if now >= closes_at:
            self._fail_ballots(ids, "poll.closed")
            return True
        with self.db.session() as session:
            # Plain rows of the columns the call needs: building ORM objects for a 150-ballot batch
            # cost the relay more CPU than encoding it.
            rows = session.exec(
                select(Ballot.id, Ballot.token, Ballot.sequence, Ballot.stratum, Ballot.ciphertext,
                       Ballot.token_credential, Ballot.signature)
                .where(Ballot.id.in_(ids), Ballot.status == "accepted")
            ).all()
        if not rows:
            return False
        rows = _order_batch(rows)
        calldata = calls.encode_cast_ballots(poll_id, [
            (bytes.fromhex(r.token[2:]), r.sequence, r.stratum, r.ciphertext, r.token_credential, r.signature)
            for r in rows
        ])
        if poll_id in self._estimate_polls:
            # The last batch of this poll reverted: simulate before sending again, so that a
            # revert reason (or a gas limit too low) is seen instead of a revert loop.
            function = self.poll_book.functions.castBallots(
                poll_id,
                [(r.token, r.sequence, r.stratum, r.ciphertext, r.token_credential, r.signature) for r in rows],
            )
            try:
                gas = self._estimate(self.relayer, function)
            except REVERTS as exc:
                name = revert_name(exc) or "Reverted"
                if self._chain_now() >= closes_at:
                    self._fail_ballots(ids, "poll.closed")
                    return True
                if name == "PollBookNotOpen":
                    return False
                self._fail_ballots(ids, f"chain.{name}")
                return True
            self._estimate_polls.discard(poll_id)
        else:
            gas = self._ballot_gas(len(rows), len(calldata))
        ids_in_batch = [r.id for r in rows]
        table = Ballot.__table__

        def attach(session, tx: ChainTx) -> int:
            count = 0
            for start in range(0, len(ids_in_batch), 500):
                count += session.exec(
                    update(table)
                    .where(table.c.id.in_(ids_in_batch[start:start + 500]), table.c.status == "accepted")
                    .values(status="sent", tx_id=tx.id, tx_hash=tx.tx_hash)
                ).rowcount
            return count

        self._write_tx(self.relayer, "ballots", poll_id, (self.deployment.poll_book, calldata), gas, attach)
        if self.metrics:
            self.metrics.ballots_sent.inc(len(rows))
            self.metrics.batch_size.observe(len(rows))
        return True

    def _fail_ballots(self, ids: list[int], reason: str) -> None:
        with self.db.write_session() as session:
            count = 0
            for ballot in session.exec(select(Ballot).where(Ballot.id.in_(ids), Ballot.status == "accepted")):
                ballot.status, ballot.reason = "failed", reason
                session.add(ballot)
                count += 1
            session.commit()
        if self.metrics:
            self.metrics.ballots_failed.inc(count)

    # --- issuances and credits ---------------------------------------------------------------

    def flush_issuances(self, force: bool = False) -> bool:
        """Batches by size and by time, as ballots (`issued_at` is in whole seconds); `force`
        when ballots are about to be sent, so that no ballot goes out before its issuance."""
        busy = False
        now = time.time()
        for kind in ("issuances", "credits"):
            if not self._room(self.issuer):
                break
            column = Issuance.record_tx_id if kind == "issuances" else Issuance.credit_tx_id
            flag = Issuance.recorded if kind == "issuances" else Issuance.credited
            quarantine = QuarantineKind(kind)
            held = self.isolation.held(quarantine)
            pending = (column.is_(None), flag == False, Issuance.status != "failed",  # noqa: E712
                       *([Issuance.poll_id.not_in(held)] if held else []))
            with self.db.session() as session:
                # An aggregate first: loading up to 500 ORM rows on every pass only to find the
                # batch not yet due cost the relay a fifth of a core under issuance load.
                count, oldest = session.exec(select(func.count(), func.min(Issuance.issued_at)).where(*pending)).one()
                if not count or not (force or count >= self.settings.batch_size
                                     or now - oldest >= self.settings.batch_interval):
                    continue
                rows = session.exec(
                    select(Issuance).where(*pending).order_by(Issuance.id).limit(self.settings.batch_size)
                ).all()
            by_poll: dict[int, list[Issuance]] = defaultdict(list)
            for row in rows:
                by_poll[row.poll_id].append(row)
            for poll_id, items in by_poll.items():
                busy |= self.isolation.run(quarantine, poll_id, partial(self._send_issuances, kind, poll_id, items), True)
        return busy

    def _send_issuances(self, kind: str, poll_id: int, items: list[Issuance]) -> bool:
        """Calldata encoded once with eth-abi (web3's encoder validated all 500 items on each
        of estimate_gas and build_transaction: a fifth of a core at 500 tokens/s). The gas limit
        comes from the per-item gas of the last estimate of this kind; a batch that reverts
        clears it, so the next one is simulated again (and a revert reason is seen)."""
        _, closes_at, points = self._window(poll_id)
        if kind == "issuances":
            pseudonyms, strata = [bytes.fromhex(i.pseudonym[2:]) for i in items], [i.stratum for i in items]
            to, data = self.deployment.poll_book, calls.encode_record_issuances(poll_id, pseudonyms, strata)
        else:
            residents = [i.resident for i in items]
            to, data = self.deployment.city_points, calls.encode_credit(poll_id, residents, points)
        per_item = self._gas_per_item.get(kind)
        if per_item is not None:
            gas = 100_000 + per_item * len(items)
        else:
            if kind == "issuances":
                function = self.poll_book.functions.recordIssuances(poll_id, pseudonyms, strata)
            else:
                function = self.city_points.functions.credit(poll_id, residents, points)
            try:
                gas = self._estimate(self.issuer, function)
            except REVERTS as exc:
                name = revert_name(exc) or "Reverted"
                closed = self._chain_now() >= closes_at
                with self.db.write_session() as session:
                    for item in items:
                        fresh = session.get(Issuance, item.id)
                        if name in ("PollBookAlreadyIssued", "CityPointsAlreadyCredited") and self._already_done(kind, fresh):
                            setattr(fresh, "recorded" if kind == "issuances" else "credited", True)
                            if fresh.recorded and fresh.credited:
                                fresh.status = "recorded"
                        elif closed or name not in ("PollBookAlreadyIssued", "CityPointsAlreadyCredited"):
                            fresh.status, fresh.reason = "failed", "poll.closed" if closed else f"chain.{name}"
                        session.add(fresh)
                    session.commit()
                return True
            if len(items) >= 10:  # large enough for the fixed part not to dominate the per-item figure
                self._gas_per_item[kind] = -(-gas // len(items))
        ids = [i.id for i in items]

        table = Issuance.__table__
        column = table.c.record_tx_id if kind == "issuances" else table.c.credit_tx_id

        def attach(session, tx: ChainTx) -> int:
            # Bulk statements, not ORM rows: per token the ORM round trip cost more than the
            # transaction it describes.
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                session.exec(update(table).where(table.c.id.in_(part)).values({column: tx.id}))
                session.exec(update(table).where(table.c.id.in_(part), table.c.status == "pending").values(status="sent"))
            return len(ids)

        self._write_tx(self.issuer, kind, poll_id, (to, data), gas, attach)
        return True

    # --- points -----------------------------------------------------------------------------

    def _points_call(self, request: PointsRequest):
        if request.kind == "redeem":
            return self.city_points.functions.redeem(
                (request.resident, request.target_id, request.nonce, request.deadline), request.signature
            )
        return self.city_points.functions.donate(
            (request.resident, request.target_id, request.amount, request.nonce, request.deadline), request.signature
        )

    def flush_points(self) -> bool:
        if not self._room(self.relayer):
            return False
        held = self.isolation.held(QuarantineKind.POINTS)
        with self.db.session() as session:
            requests = session.exec(
                select(PointsRequest)
                .where(PointsRequest.status == "pending", *([PointsRequest.id.not_in(held)] if held else []))
                .order_by(PointsRequest.id).limit(20)
            ).all()
        busy = False
        for request in requests:
            self.isolation.run(QuarantineKind.POINTS, request.id, partial(self._send_points, request), False)
            busy = True
        return busy

    def _send_points(self, request: PointsRequest) -> bool:
        """Sent, or failed by the contract's refusal: True either way (the request moved)."""
        function = self._points_call(request)
        try:
            gas = self._estimate(self.relayer, function)
        except REVERTS as exc:
            with self.db.write_session() as session:
                fresh = session.get(PointsRequest, request.id)
                fresh.status, fresh.reason = "failed", f"chain.{revert_name(exc) or 'Reverted'}"
                session.add(fresh)
                session.commit()
            return True
        request_id = request.id

        def attach(session, tx: ChainTx) -> int:
            fresh = session.get(PointsRequest, request_id)
            fresh.status, fresh.tx_id, fresh.tx_hash = "sent", tx.id, tx.tx_hash
            session.add(fresh)
            return 1

        self._write_tx(self.relayer, request.kind, None, function, gas, attach)
        return True

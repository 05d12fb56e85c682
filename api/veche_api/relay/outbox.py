"""The outbox of one sending account: its nonces, signing, repricing and broadcasting, and the
write-ahead log (`ChainTx`) that every transaction is written to before it is broadcast (steps 2
and 5 of the protocol in the package docstring)."""

from __future__ import annotations

import logging
import time

import rlp
from eth_utils import to_checksum_address
from sqlmodel import col, func, select

from ..core.db import Database
from ..models import ChainTx, TxVersion
from .health import TransientError

log = logging.getLogger("veche_api.relay")

UNFINISHED = (ChainTx.Status.SIGNED, ChainTx.Status.SENT)
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
                written = session.exec(select(func.max(ChainTx.nonce)).where(ChainTx.sender == self.address)).one()
            self._nonce = max(on_chain, -1 if written is None else written + 1)
        return self._nonce

    def in_flight(self) -> int:
        with self.db.session() as session:
            return session.exec(
                select(func.count())
                .select_from(ChainTx)
                .where(ChainTx.sender == self.address, col(ChainTx.status).in_(UNFINISHED))
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

    def write(self, kind: ChainTx.Kind, poll_id: int | None, function, gas: int, attach) -> ChainTx:
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
                fresh = session.get_one(ChainTx, row.id)
                fresh.attempts += 1
                fresh.last_error = str(exc)
                session.add(fresh)
                session.commit()
            raise
        with self.db.write_session() as session:
            fresh = session.get_one(ChainTx, row.id)
            fresh.attempts += 1
            if fresh.status == ChainTx.Status.SIGNED:
                fresh.status = ChainTx.Status.SENT
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
        signed = self.account.sign_transaction(
            {
                "nonce": int.from_bytes(nonce, "big"),
                "gasPrice": new_price,
                "gas": int.from_bytes(gas, "big"),
                "to": to_checksum_address(to),
                "value": int.from_bytes(value, "big"),
                "data": data,
                "chainId": self.chain_id,
            }
        )
        with self.db.write_session() as session:
            fresh = session.get(ChainTx, row.id)
            if fresh is None or fresh.status not in UNFINISHED or bytes(fresh.raw) != raw:
                return None
            assert fresh.id is not None  # a row read from the log has its id
            session.add(TxVersion(chain_tx_id=fresh.id, tx_hash=fresh.tx_hash, gas_price=price))
            fresh.raw, fresh.tx_hash = bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()
            fresh.status, fresh.last_error = ChainTx.Status.SIGNED, f"repriced: gas price {price} -> {new_price}"
            session.add(fresh)
            session.commit()
        log.warning(
            "transaction nonce %d of %s unmined: repriced %d -> %d wei (%s)",
            fresh.nonce,
            self.address,
            price,
            new_price,
            fresh.tx_hash,
        )
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

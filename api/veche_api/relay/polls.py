"""Poll creation through the write-ahead log (kind `poll`): the creating request signs createPoll
with the admin key and writes it with the poll's keys (routes/polls.py); whoever sees the receipt
first — that request, or the relay's reconcile after a crash — finishes it here."""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlmodel import select

from veche_core import events

from ..core.db import Database
from ..models import DRAFT_POLL_BASE, ChainTx, IssuerKey, Poll, PollCreation, RegisterEntry
from .receipts import mark_finished, tx_outcome

log = logging.getLogger("veche_api.relay")


def finish_poll_tx(db: Database, keys, poll_book: str, tx_id: int, receipt: dict[str, Any], tx_hash: str) -> None:
    """Finish a createPoll transaction from its receipt: the Poll and its issuer keys (sealed
    again, under the chain's poll id) are saved, or the PollCreation fails. Idempotent: the
    creating request and the relay's reconcile may both get here."""
    ok, block = tx_outcome(receipt)
    with db.session() as session:
        creation = session.exec(select(PollCreation).where(PollCreation.tx_id == tx_id)).one()
    assert creation.id is not None  # (a stored row has its id)
    poll_id = events.poll_created_id(receipt.get("logs", []), poll_book) if ok else None
    issuer_keys = []
    if poll_id is not None:  # opening a key takes ~0.1 s: not while holding the write lock
        for stratum, (public, sealed) in enumerate(json.loads(creation.issuer_keys_json)):
            private = keys.open_issuer_key(DRAFT_POLL_BASE + creation.id, stratum, bytes.fromhex(sealed))
            issuer_keys.append(
                IssuerKey(
                    poll_id=poll_id,
                    stratum=stratum,
                    public_key=bytes.fromhex(public),
                    sealed_private_key=keys.seal_issuer_key(poll_id, stratum, private),
                )
            )
    with db.write_session() as session:
        if mark_finished(session, tx_id, ok, block, tx_hash, lock=True) is None:
            return
        creation = session.get_one(PollCreation, creation.id)
        if poll_id is None:
            creation.status = PollCreation.Status.FAILED
            creation.reason = "chain.Reverted" if not ok else "chain.NoPollCreated"
        else:
            session.add(Poll(id=poll_id, create_tx=tx_hash, **json.loads(creation.poll_json)))
            session.flush()
            session.add_all(issuer_keys)
            session.add_all(
                RegisterEntry(poll_id=poll_id, stratum=stratum, index=index, address=address)
                for stratum, addresses in enumerate(json.loads(creation.register_json))
                for index, address in enumerate(addresses)
            )
            creation.status, creation.poll_id = PollCreation.Status.CREATED, poll_id
        session.add(creation)
        session.commit()
    log.info("createPoll %s: %s", tx_hash, f"poll {poll_id}" if poll_id is not None else "failed")


class PollCreations:
    """The relay's handler of `poll` transactions: it only finishes them (and resends and
    reprices them, as any logged transaction); the creating request signed them."""

    kinds = (ChainTx.Kind.POLL,)

    def __init__(self, relay) -> None:
        self.relay = relay

    def finish(self, row: ChainTx, receipt: dict[str, Any], tx_hash: str) -> None:
        relay = self.relay
        assert row.id is not None  # (every logged transaction has its id)
        finish_poll_tx(relay.db, relay.keys, relay.deployment.poll_book, row.id, receipt, tx_hash)

    def requeue(self, session, row: ChainTx) -> None:
        """Not queued again: the creating request has answered (or died); the admin creates again."""
        for creation in session.exec(select(PollCreation).where(PollCreation.tx_id == row.id)):
            creation.status, creation.reason = PollCreation.Status.FAILED, "chain.dropped"
            session.add(creation)

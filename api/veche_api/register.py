"""Polls' committed registers (docs/protocol.md §3.11), read back from the API's database: each
stratum's tree (for the proofs that `POST /tokens` answers and the relay records) and a
resident's leaf. Registers never change after creation, so the trees are built once per process."""

from __future__ import annotations

import threading

from sqlmodel import col, select

from veche_core.register import RegisterTree

from .core.db import Database
from .models import RegisterEntry


class Registers:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._trees: dict[tuple[int, int], RegisterTree] = {}
        self._lock = threading.Lock()

    def tree(self, poll_id: int, stratum: int) -> RegisterTree:
        found = self._trees.get((poll_id, stratum))
        if found is not None:
            return found
        with self._db.session() as session:
            addresses = session.exec(
                select(RegisterEntry.address)
                .where(RegisterEntry.poll_id == poll_id, RegisterEntry.stratum == stratum)
                .order_by(col(RegisterEntry.index))
            ).all()
        tree = RegisterTree.build(list(addresses))
        with self._lock:
            self._trees[(poll_id, stratum)] = tree
        return tree

    def leaf(self, poll_id: int, address: str) -> tuple[int, int] | None:
        """(stratum, index) of `address` in the poll's register; None if it is not in it."""
        with self._db.session() as session:
            row = session.exec(
                select(RegisterEntry).where(RegisterEntry.poll_id == poll_id, RegisterEntry.address == address)
            ).first()
        return None if row is None else (row.stratum, row.index)

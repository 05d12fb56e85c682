"""One relay per database."""

from __future__ import annotations

from ..core.db import Database, ProcessLock


class RelayLock(ProcessLock):
    """Exactly one relay per database, however many API processes (uvicorn workers) serve it:
    the relay runs in the process that holds this lock, the others stand by and take over when
    its holder dies (the operating system or PostgreSQL releases the lock with the process)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, "relay", 0x76656368655F72)  # "veche_r"

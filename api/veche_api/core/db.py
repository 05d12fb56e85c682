"""The database engine: SQLite (WAL, one writer) by default, PostgreSQL when configured.

SQLite allows one writer at a time; instead of letting concurrent threads collide on the
database lock (an upgrade from a read to a write transaction fails at once with SQLITE_BUSY in
WAL mode), every write transaction in the process takes `Database.writing()`, a process-wide
lock. PostgreSQL needs no such lock: its row locks and unique constraints do the work.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (psycopg2 is not a dependency)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Database:
    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL") -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            self.engine: Engine = create_engine(
                self.url,
                connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=32,
                max_overflow=32,
            )
            synchronous = sqlite_synchronous.upper()
            if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
                raise ValueError("sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA")

            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA synchronous={synchronous}")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()
        else:
            self.engine = create_engine(
                self.url, pool_size=20, max_overflow=20, pool_pre_ping=True
            )
        self._write_lock = threading.RLock() if self.is_sqlite else None

    def create_all(self) -> None:
        from .. import models  # noqa: F401  (registers the tables)

        with self.writing():
            SQLModel.metadata.create_all(self.engine)

    def writing(self):
        """Hold this around a whole read-check-write transaction (a no-op on PostgreSQL)."""
        return self._write_lock if self._write_lock is not None else nullcontext()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        with self.writing(), Session(self.engine, expire_on_commit=False) as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

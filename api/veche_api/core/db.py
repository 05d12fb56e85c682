"""The database engine: SQLite (WAL, one writer) by default, PostgreSQL when configured.

SQLite allows one writer at a time; instead of letting concurrent threads collide on the
database lock (an upgrade from a read to a write transaction fails at once with SQLITE_BUSY in
WAL mode), every write transaction takes `Database.writing()` — a re-entrant lock in the
process plus an exclusive flock shared by all processes on the file (several uvicorn workers) —
and starts with `BEGIN IMMEDIATE`.
PostgreSQL needs neither: its row locks and unique constraints do the work.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import IO

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import Session, SQLModel, create_engine


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (psycopg2 is not a dependency)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _private_file(path: str | None) -> None:
    """Create the SQLite file readable by its owner only (it holds residents' addresses,
    districts and birth years), or take away others' access to one that exists; SQLite gives
    its -wal and -shm files the database file's mode."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o600)


class _WriteLock:
    """SQLite's one writer, made explicit: a re-entrant lock within the process, and around the
    outermost hold an exclusive `flock` on `<database>.write.lock`, shared by every process on
    the file. Without the flock, writers of several processes (uvicorn workers) meet in
    SQLite's busy handler, which polls with sleeps of 1 to 100 ms; a blocked flock wakes the
    moment the lock is released. (In-memory databases have no other process: no flock.)"""

    def __init__(self, path: str | None) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._path = f"{path}.write.lock" if path and path != ":memory:" else None
        self._fd: int | None = None

    def __enter__(self):
        self._lock.acquire()
        if self._depth == 0 and self._path is not None:
            try:
                if self._fd is None:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._lock.release()
                raise
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()


class Database:
    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL") -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            _private_file(make_url(self.url).database)
            self.engine: Engine = create_engine(
                self.url,
                connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=32,
                max_overflow=32,
                hide_parameters=True,  # errors (which get logged) would quote residents' rows
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
                self.url, pool_size=20, max_overflow=20, pool_pre_ping=True, hide_parameters=True
            )
        self._write_lock = _WriteLock(self.engine.url.database) if self.is_sqlite else None

    def create_all(self) -> None:
        from .. import models  # noqa: F401  (registers the tables)

        # Several worker processes start at once: create the tables under a database-wide lock
        # so that two of them do not both find a table missing and both create it.
        with self.writing(), self.engine.connect() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7365080281948749)")
            SQLModel.metadata.create_all(conn)
            conn.commit()

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
            if self.is_sqlite:
                session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


class ProcessLock:
    """A lock held across every process on one database (uvicorn workers, several API hosts on
    one PostgreSQL): SQLite, an exclusive `flock` on `<database file>.<name>.lock`;
    PostgreSQL, a session-level advisory lock (`pg_key`) on a connection kept open while it is
    held. The operating system or PostgreSQL releases it when its holder dies."""

    def __init__(self, db: Database, name: str, pg_key: int) -> None:
        self.db = db
        self.name = name
        self.pg_key = pg_key
        self._file: IO[str] | None = None  # SQLite: the flocked file
        self._conn: Connection | None = None  # PostgreSQL: the connection holding the advisory lock

    def try_acquire(self) -> bool:
        return self._acquire(blocking=False)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Wait for the lock, hold it for the block."""
        self._acquire(blocking=True)
        try:
            yield
        finally:
            self.release()

    def _acquire(self, blocking: bool) -> bool:
        if self.db.is_sqlite:
            path = self.db.engine.url.database
            if not path or path == ":memory:":
                return True
            handle = os.fdopen(os.open(f"{path}.{self.name}.lock", os.O_RDWR | os.O_CREAT, 0o600), "r+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except OSError:
                handle.close()
                return False
            self._file = handle
            return True
        conn = self.db.engine.connect()
        try:
            function = "pg_advisory_lock" if blocking else "pg_try_advisory_lock"
            got = conn.exec_driver_sql(f"SELECT {function}({self.pg_key})").scalar()
            conn.commit()
        except Exception:
            conn.close()
            raise
        if blocking or got:
            self._conn = conn
            return True
        conn.close()
        return False

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # drops the flock
            self._file = None
        if self._conn is not None:
            try:
                self._conn.exec_driver_sql(f"SELECT pg_advisory_unlock({self.pg_key})")
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None

"""Group commit: one writer thread turns the inserts of many concurrent requests into one
transaction and one fsync.

A request hands the writer a *job* (a function of a SQLAlchemy Connection) and waits for its
future; the future is resolved only after the transaction that ran the job has committed, so an
acknowledged write is as durable as a commit of its own (`synchronous=FULL` on SQLite: power loss;
`NORMAL`: a process crash; PostgreSQL: its WAL). Under load the writer drains everything queued
while the previous commit was in progress, so the commit cost is shared by the whole group.

A job reports a business rejection by *returning* an exception instance (it must then have written
nothing), so that one stale ballot does not abort its neighbours. A job that *raises* aborts the
group's transaction; the writer then runs every job of the group again in a transaction of its
own, so only the faulty one fails.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from sqlalchemy.engine import Connection

from .core.db import Database

log = logging.getLogger("veche_api.writer")

Job = Callable[[Connection], Any]


class GroupWriter:
    def __init__(self, db: Database, *, max_group: int = 1000, name: str = "veche-writer") -> None:
        self.db = db
        self.max_group = max_group
        self._queue: deque[tuple[Job, Future]] = deque()
        self._ready = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self.groups = 0
        self.jobs = 0

    def submit(self, job: Job) -> Future:
        future: Future = Future()
        with self._ready:
            if self._stopping:
                raise RuntimeError("the writer has stopped")
            self._queue.append((job, future))
            self._ready.notify()
        return future

    def run(self, job: Job) -> Any:
        """Submit and wait (for synchronous callers)."""
        return self.submit(job).result()

    def stop(self, timeout: float = 10.0) -> None:
        with self._ready:
            self._stopping = True
            self._ready.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._stopping:
                    self._ready.wait()
                if not self._queue:
                    return  # stopping, and everything queued was written
                group = [self._queue.popleft() for _ in range(min(len(self._queue), self.max_group))]
            self._write(group)

    def _write(self, group: list[tuple[Job, Future]]) -> None:
        try:
            results = self._transaction([job for job, _ in group])
        except Exception as exc:  # one job raised (or the database failed): isolate
            if len(group) == 1:
                self._settle(group[0][1], exc, failed=True)
                return
            log.warning("group commit of %d failed (%s); writing them one by one", len(group), type(exc).__name__)
            for item in group:
                self._write([item])
            return
        self.groups += 1
        self.jobs += len(group)
        for (_, future), result in zip(group, results):
            self._settle(future, result)

    def _transaction(self, jobs: list[Job]) -> list[Any]:
        with self.db.writing(), self.db.engine.connect() as conn:
            if self.db.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                results = [job(conn) for job in jobs]
                conn.commit()  # durable before any future is resolved
            except BaseException:
                conn.rollback()
                raise
        return results

    @staticmethod
    def _settle(future: Future, value: Any, failed: bool = False) -> None:
        if future.set_running_or_notify_cancel():
            if failed:
                future.set_exception(value)
            else:
                future.set_result(value)

"""Token buckets per key (per resident for issuance, per token for ballots), kept in the
database so that they hold across every API process: with per-process buckets, two uvicorn
workers allowed twice the documented rate (an outside tester saw 65 ballots a minute for one
token where 30 were documented).

A bucket holds up to `burst` requests (default: one minute's worth) and refills at
`per_minute / 60` a second. `take` is one conditional upsert, run inside the caller's write
transaction (the group-commit writer's): it draws one request from the bucket, or changes
nothing and says no. A bucket left alone for a minute is full again, which is the same as
having no row, so rows older than that are pruned now and then.
"""

from __future__ import annotations

import itertools
import time

from sqlalchemy import Float, String, bindparam, case, delete, literal
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from .errors import ApiError
from .models import RateBucket, table_of

RATE_LIMITED = ("rate_limited", 429, "too many requests; try again later")
PRUNE_EVERY = 1000  # takes between two prunes (per process)


class RateLimiter:
    def __init__(self, name: str, per_minute: int, burst: int | None = None) -> None:
        self.name = name  # the keys' prefix: one table holds every limiter's buckets
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(per_minute, 1))
        self._statements: dict[str, object] = {}
        self._takes = itertools.count()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, conn: Connection, key: str) -> bool:
        """Draw one request for `key` (inside the caller's transaction); False if it is empty."""
        if not self.enabled:
            return True
        now = time.time()
        found = conn.execute(
            self._statement(conn.dialect.name),
            {
                "key": f"{self.name}:{key}"[:200],
                "now": now,
                "rate": self.rate,
                "burst": self.burst,
            },
        ).first()
        if next(self._takes) % PRUNE_EVERY == PRUNE_EVERY - 1:
            table = table_of(RateBucket)
            conn.execute(delete(table).where(table.c.at < now - self.burst / self.rate))
        return found is not None

    def check(self, conn: Connection, key: str) -> ApiError | None:
        """`take`, as the writer's jobs report a refusal: an ApiError to return, or None."""
        return None if self.take(conn, key) else ApiError(*RATE_LIMITED)

    def _statement(self, dialect: str):
        statement = self._statements.get(dialect)
        if statement is None:
            table = table_of(RateBucket)
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            now, rate, burst = (bindparam(name, type_=Float) for name in ("now", "rate", "burst"))
            refilled = table.c.tokens + (now - table.c.at) * rate
            level = case((refilled > burst, burst), else_=refilled)
            statement = insert(table).values(key=bindparam("key", type_=String), tokens=burst - literal(1.0), at=now)
            statement = self._statements[dialect] = statement.on_conflict_do_update(
                index_elements=[table.c.key],
                set_={"tokens": level - 1, "at": now},
                where=level >= 1,
            ).returning(table.c.tokens)
        return statement

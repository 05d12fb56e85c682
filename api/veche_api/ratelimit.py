"""Per-key token buckets in memory (per resident for issuance, per token for ballots).

In one process; behind several API processes a shared store would be needed, and the limit is
then per process. The limit guards the blind signer and the relay against one noisy client.
"""

from __future__ import annotations

import threading
import time

from .errors import ApiError


class RateLimiter:
    def __init__(self, per_minute: int, burst: int | None = None) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(per_minute, 1))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                raise ApiError("rate_limited", 429, "too many requests; try again later")
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > 200_000:  # forget idle keys
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 120}

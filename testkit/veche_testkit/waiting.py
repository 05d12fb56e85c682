"""`eventually`: the tests' one way to wait for something, always with a deadline.

A test that waits for the relay, a node or a server asks again and again until the answer is
right or the time is up; never sleeps a guessed time and then counts, never waits forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def eventually(
    condition: Callable[[], T],
    timeout: float,
    *,
    until: Callable[[T], Any] = bool,
    interval: float = 0.1,
    ignoring: tuple[type[BaseException], ...] = (ConnectionError,),
    what: str = "the condition",
) -> T:
    """Ask `condition()` every `interval` seconds and return its first value that `until`
    accepts (by default: the first truthy one). After `timeout` seconds, AssertionError naming
    `what` and the last value or error seen. An exception of the `ignoring` types counts as a
    miss — by default ConnectionError, which the node tooling's and the core's RPC errors are (a
    node not answering yet); any other propagates at once."""
    deadline = time.monotonic() + timeout
    last: Any = None
    error: BaseException | None = None
    while True:
        try:
            value = condition()
        except ignoring as exc:
            error = exc
        else:
            if until(value):
                return value
            last, error = value, None
        if time.monotonic() >= deadline:
            seen = f"last error: {error}" if error is not None else f"last value: {_short(last)}"
            raise AssertionError(f"{what}: not reached within {timeout} s ({seen})")
        time.sleep(interval)


def _short(value: Any, limit: int = 2000) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"

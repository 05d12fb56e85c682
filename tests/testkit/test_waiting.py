"""`eventually`, the tests' one wait: it returns the first accepted value, fails at its
deadline naming what it waited for and what it last saw, and lets only a node's or server's
"not answering yet" count as a miss."""

from __future__ import annotations

import time

import pytest

from veche_node.errors import NodeRpcError
from veche_testkit.waiting import eventually


def test_returns_the_first_value_that_is_accepted():
    answers = iter([0, None, 3, 4])
    assert eventually(lambda: next(answers), timeout=5, interval=0) == 3
    counts = iter([1, 2, 3])
    assert eventually(lambda: next(counts), timeout=5, interval=0, until=lambda n: n >= 2) == 2


def test_fails_at_its_deadline_with_what_and_the_last_value():
    started = time.monotonic()
    with pytest.raises(
        AssertionError, match=r"the relay to drain: not reached within 0.3 s \(last value: \{'sent': 2\}\)"
    ):
        eventually(
            lambda: {"sent": 2}, timeout=0.3, interval=0.05, until=lambda q: not q["sent"], what="the relay to drain"
        )
    assert 0.3 <= time.monotonic() - started < 2


def test_a_node_not_answering_is_a_miss_and_any_other_error_propagates():
    tries = iter([NodeRpcError("connection refused"), ConnectionResetError(), 7])

    def ask():
        answer = next(tries)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert eventually(ask, timeout=5, interval=0) == 7

    def down():
        raise NodeRpcError("refused")

    with pytest.raises(AssertionError, match="last error: refused"):
        eventually(down, timeout=0.1, interval=0.02)
    with pytest.raises(KeyError):
        eventually(lambda: {}["missing"], timeout=5)

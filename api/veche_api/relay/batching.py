"""Which queued ballots go together into one castBallots call, and in what order."""

from __future__ import annotations

import secrets
from collections import defaultdict

from veche_core import calls


def plan_batch(items: list[tuple[int, int]], max_count: int, max_bytes: int) -> tuple[list[int], bool]:
    """The ids of the next batch from (id, calldata bytes) in queue order, capped by count and by
    the encoded calldata size of the whole castBallots call (geth's pool refuses transactions over
    128 KiB); `full` when a cap was reached, i.e. waiting would not make the batch bigger."""
    ids: list[int] = []
    total = calls.CAST_BALLOTS_OVERHEAD
    for ballot_id, size in items:
        if len(ids) >= max_count or (ids and total + size > max_bytes):
            return ids, True
        ids.append(ballot_id)
        total += size
    return ids, len(ids) >= max_count or total >= max_bytes


def order_batch(rows: list) -> list:
    """Shuffle (so that the order on chain does not reveal the order of arrival), then restore
    ascending sequence among each token's own positions (a revote follows the ballot it
    replaces)."""
    rows = list(rows)
    secrets.SystemRandom().shuffle(rows)
    positions: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        positions[row.token].append(index)
    for slots in positions.values():
        if len(slots) > 1:
            ordered = sorted((rows[i] for i in slots), key=lambda r: r.sequence)
            for slot, row in zip(slots, ordered):
                rows[slot] = row
    return rows

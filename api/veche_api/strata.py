"""A poll's strata: which districts each stratum holds, fixed at creation.

A ballot names its stratum in public (the dataset lists it beside the choice), so a stratum of
k registered residents narrows each of its ballots to those k people, and the points ledger
names the ones who took part. Small districts are therefore merged with a neighbour before the
poll's issuer keys are made (one per stratum), never hidden after the count: every stratum of a
dataset then holds at least `min_stratum` eligible residents by construction.

Merging is deterministic, so anyone with the districts' register sizes can redo it: districts in
the configured order; while more than one stratum is left and the smallest (the first of equal
ones) is below the threshold, it is joined to the smaller of its adjacent strata (the preceding
one on a tie). A stratum is thus always a run of adjacent districts, named by them in order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from veche_core.metadata import stratum_name


@dataclass(frozen=True)
class Stratum:
    districts: tuple[str, ...]
    register_size: int | None  # eligible residents counted at creation (None: a poll made before it was counted)

    @property
    def name(self) -> str:
        return stratum_name(self.districts)  # committed with the districts (metadata v2)


@dataclass(frozen=True)
class PollStrata:
    """What a poll stores of its strata (`Poll.strata_json`): the threshold it was made with,
    and the strata in stratum order (index = stratum on chain, into the poll's issuer keys)."""

    min_stratum: int
    strata: tuple[Stratum, ...]

    def dumps(self) -> str:
        return json.dumps(
            {
                "minStratum": self.min_stratum,
                "strata": [{"districts": list(s.districts), "registerSize": s.register_size} for s in self.strata],
            }
        )

    @classmethod
    def loads(cls, text: str) -> PollStrata:
        """Also the first format, a list of district names (one stratum each, never merged)."""
        value = json.loads(text)
        if isinstance(value, list):
            return cls(0, tuple(Stratum((name,), None) for name in value))
        return cls(
            value["minStratum"],
            tuple(Stratum(tuple(s["districts"]), s["registerSize"]) for s in value["strata"]),
        )


def group_strata(districts_with_counts: Sequence[tuple[str, int]], threshold: int) -> list[Stratum]:
    """Merge districts (in order, with their eligible residents) into strata of at least
    `threshold` residents each, or into one stratum if the whole audience is smaller."""
    groups = [Stratum((district,), count) for district, count in districts_with_counts]

    def size(index: int) -> int:
        count = groups[index].register_size
        assert count is not None  # (every group here was counted)
        return count

    while len(groups) > 1:
        smallest = min(range(len(groups)), key=size)
        if size(smallest) >= threshold:
            break
        neighbours = [i for i in (smallest - 1, smallest + 1) if 0 <= i < len(groups)]
        other = min(neighbours, key=size)  # min keeps the first: the preceding one on a tie
        first, second = sorted((smallest, other))
        groups[first : second + 1] = [
            Stratum(groups[first].districts + groups[second].districts, size(first) + size(second))
        ]
    return groups


def stratum_of(strata: Sequence[Stratum], district: str) -> int | None:
    """The index of the stratum that holds `district`, or None if no stratum does."""
    for index, stratum in enumerate(strata):
        if district in stratum.districts:
            return index
    return None

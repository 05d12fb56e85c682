"""The readable report: what a person at an 80-column terminal sees of a large poll."""

from __future__ import annotations

import io

from rich.console import Console

from veche_verify import report
from veche_verify.checks import PollVerdict

STRATA, OPTIONS = 12, 4


def _render(verdict: PollVerdict) -> str:
    console = Console(width=80, file=io.StringIO(), color_system=None)
    report.print_poll(console, verdict)
    return console.file.getvalue()


def _large_poll(published: list[int] | None) -> PollVerdict:
    by_stratum = {s: [100_000 + s * 1_000 + o for o in range(OPTIONS)] for s in range(STRATA)}
    recomputed = [sum(counts[o] for counts in by_stratum.values()) for o in range(OPTIONS)]
    return PollVerdict(7, [], option_count=OPTIONS, recomputed=recomputed, published=published, by_stratum=by_stratum)


def _row(text: str, label: str) -> list[str]:
    line = next(line for line in text.splitlines() if f" {label} " in line)
    return [cell.strip() for cell in line.strip("│ ").split("│")]


def test_a_dozen_strata_fit_an_80_column_terminal_without_cutting_a_figure():
    verdict = _large_poll(published=[1_266_000, 1_266_012, 1_266_024, 1_266_036])
    text = _render(verdict)
    assert "…" not in text
    assert _row(text, "recomputed") == ["recomputed", "1,266,000", "1,266,012", "1,266,024", "1,266,036"]
    assert _row(text, "published") == ["published", "1,266,000", "1,266,012", "1,266,024", "1,266,036"]
    for stratum in range(STRATA):
        assert _row(text, f"stratum {stratum}") == [f"stratum {stratum}"] + [
            f"{100_000 + stratum * 1_000 + option:,}" for option in range(OPTIONS)
        ]
    assert max(len(line) for line in text.splitlines()) <= 80


def test_a_published_tally_that_is_missing_or_short_shows_dashes():
    assert _row(_render(_large_poll(published=None)), "published") == ["published"] + ["—"] * OPTIONS
    assert _row(_render(_large_poll(published=[1_266_000])), "published") == ["published", "1,266,000"] + ["—"] * 3

"""The readable report: what a person at an 80-column terminal sees of a large poll."""

from __future__ import annotations

import io

from rich.console import Console

from veche_verify import report
from veche_verify.checks import CheckResult, PollVerdict

STRATA, OPTIONS = 12, 4


def _render(verdict: PollVerdict) -> str:
    console = Console(width=80, file=io.StringIO(), color_system=None)
    report.print_poll(console, verdict)
    return console.file.getvalue()


def _large_poll(published: list[int] | None) -> PollVerdict:
    by_stratum = {s: [100_000 + s * 1_000 + o for o in range(OPTIONS)] for s in range(STRATA)}
    recomputed = [sum(counts[o] for counts in by_stratum.values()) for o in range(OPTIONS)]
    checks = [CheckResult(1, True, "well formed")]
    return PollVerdict(
        7, checks, option_count=OPTIONS, recomputed=recomputed, published=published, by_stratum=by_stratum
    )


def _row(text: str, label: str) -> list[str]:
    line = next(line for line in text.splitlines() if f" {label} " in line)
    return [cell.strip() for cell in line.strip("│ ").split("│")]


def test_a_dozen_strata_fit_an_80_column_terminal_without_cutting_a_figure():
    verdict = _large_poll(published=[1_266_000, 1_266_012, 1_266_024, 1_266_036])
    text = _render(verdict)
    assert "…" not in text
    assert _row(text, "recomputed") == ["recomputed", "1,266,000", "1,266,012", "1,266,024", "1,266,036"]
    assert _row(text, "published") == ["published", "1,266,000", "1,266,012", "1,266,024", "1,266,036"]
    for stratum in range(STRATA):  # numbered from 1, as the city's page and the CLI number
        assert _row(text, f"stratum {stratum + 1}") == [f"stratum {stratum + 1}"] + [
            f"{100_000 + stratum * 1_000 + option:,}" for option in range(OPTIONS)
        ]
    assert max(len(line) for line in text.splitlines()) <= 80


def test_a_published_tally_that_is_missing_or_short_shows_dashes():
    assert _row(_render(_large_poll(published=None)), "published") == ["published"] + ["—"] * OPTIONS
    assert _row(_render(_large_poll(published=[1_266_000])), "published") == ["published", "1,266,000"] + ["—"] * 3


def test_options_and_strata_are_named_and_numbered_from_1_when_the_names_were_checked():
    from veche_verify.names import Names, NamesStatus

    verdict = _large_poll(published=None)
    options = ("Trees", "Benches", "Lights", "Paths")
    districts = tuple(f"District {chr(65 + s)}" for s in range(STRATA))
    verdict.names = Names(NamesStatus.CHECKED, "checked", "What first?", options, districts, strata_committed=True)
    text = _render(verdict)
    header = next(line for line in text.splitlines() if "1. Trees" in line)
    assert [cell.strip() for cell in header.strip("┃ ").split("┃")] == [
        "1. Trees",
        "2. Benches",
        "3. Lights",
        "4. Paths",
    ]
    assert _row(text, "District C")[1] == f"{100_000 + 2 * 1_000:,}"
    assert "Poll 7: What first?" in text

    verdict.names = Names(NamesStatus.CHECKED, "checked", "What first?", options, districts, strata_committed=False)
    assert _row(_render(verdict), "District C*")[1] == f"{100_000 + 2 * 1_000:,}", "uncommitted names are marked"

"""Readable reports for people (rich tables); the JSON for machines is `to_dict` on the verdicts."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .checks import CheckResult, PollVerdict


def _mark(passed: bool) -> str:
    return "[bold green]PASS[/]" if passed else "[bold red]FAIL[/]"


def checks_table(title: str, checks: list[CheckResult]) -> Table:
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("#", justify="right")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for check in checks:
        table.add_row(str(check.number), check.statement, _mark(check.passed), check.detail)
    return table


def print_poll(console: Console, verdict: PollVerdict) -> None:
    console.print(checks_table(f"Poll {verdict.poll_id}", verdict.checks))
    if verdict.recomputed is not None:
        tally = Table(title=f"Poll {verdict.poll_id}: tally")
        tally.add_column("option", justify="right")
        tally.add_column("recomputed", justify="right")
        tally.add_column("published", justify="right")
        strata = sorted(verdict.by_stratum)
        for stratum in strata:
            tally.add_column(f"stratum {stratum}", justify="right")
        for option in range(len(verdict.recomputed)):
            published = verdict.published[option] if verdict.published and option < len(verdict.published) else "—"
            tally.add_row(
                str(option),
                str(verdict.recomputed[option]),
                str(published),
                *(str(verdict.by_stratum[s][option]) for s in strata),
            )
        console.print(tally)
    for title, items in (("superseded (not counted)", verdict.superseded), ("invalid (not counted)", verdict.invalid)):
        if items:
            console.print(f"{len(items)} {title}:")
            for item in items[:20]:
                console.print("  " + ", ".join(f"{k}={v}" for k, v in item.items()))
            if len(items) > 20:
                console.print(f"  … and {len(items) - 20} more (use --json for all)")
    for check in verdict.checks:
        if not check.passed and len(check.failures) > 1:
            console.print(f"check {check.number} failures:")
            for failure in check.failures[:20]:
                console.print(f"  - {failure}")
    console.print(f"Poll {verdict.poll_id}: {_mark(verdict.passed)}")

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


def tally_table(verdict: PollVerdict) -> Table:
    """Options across (a poll has a few), the recomputed and published tallies and then each
    stratum down (a city may have a dozen districts): readable on an 80-column terminal."""
    recomputed = verdict.recomputed or []
    table = Table(title=f"Poll {verdict.poll_id}: tally")
    table.add_column("")
    for option in range(len(recomputed)):
        table.add_column(f"option {option}", justify="right")
    table.add_row("[bold]recomputed[/]", *(f"[bold]{count:,}[/]" for count in recomputed))
    published = (
        [
            f"[bold red]{count:,}[/]" if count != counted else f"{count:,}"
            for count, counted in zip(verdict.published, recomputed)
        ]
        if verdict.published
        else []
    )
    table.add_row("published", *published, *["—"] * (len(recomputed) - len(published)), end_section=True)
    for stratum in sorted(verdict.by_stratum):
        table.add_row(f"stratum {stratum}", *(f"{count:,}" for count in verdict.by_stratum[stratum]))
    return table


def strata_table(verdict: PollVerdict) -> Table:
    """Per stratum, what the issuer could still have done unseen: the register (compare it with
    the district's population) and the requested tokens no counted ballot used (the most ballots
    the issuer could have cast with abstainers' tokens)."""
    table = Table(title=f"Poll {verdict.poll_id}: register and issuer slack")
    for column in ("stratum", "register", "requests", "counted", "requested, not counted"):
        table.add_column(column, justify="left" if column == "stratum" else "right")
    for figures in verdict.strata:
        size = "—" if figures.register_size is None else f"{figures.register_size:,}"
        table.add_row(
            f"stratum {figures.stratum}",
            size,
            f"{figures.requests:,}",
            f"{figures.counted:,}",
            f"{figures.requested_not_counted:,}",
        )
    return table


def print_poll(console: Console, verdict: PollVerdict) -> None:
    console.print(checks_table(f"Poll {verdict.poll_id}", verdict.checks))
    if verdict.recomputed is not None:
        console.print(tally_table(verdict))
    if verdict.strata:
        console.print(strata_table(verdict))
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

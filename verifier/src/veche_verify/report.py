"""Readable reports for people (rich tables); the JSON for machines is `to_dict` on the verdicts.

Options and strata are numbered from 1, as the city's page and the `veche` CLI number them, and
named when the city's texts hash to the poll's metadataHash (names.py); the JSON and the dataset
keep the chain's 0-based indices.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from veche_core.relays import relay_label

from .checks import CheckResult, PollVerdict, Verdict
from .names import NOT_GIVEN, NamesStatus

MARKS = {
    Verdict.PASS: "[bold green]PASS[/]",
    Verdict.FAIL: "[bold red]FAIL[/]",
    Verdict.NOT_YET: "[bold yellow]NOT YET[/]",
    Verdict.CANNOT_VERIFY: "[bold yellow]COULD NOT VERIFY[/]",
}
NUMBERING = "Options and strata are numbered from 1, as on the city's page (the JSON and the dataset count from 0)."


def mark(verdict: Verdict) -> str:
    return MARKS[verdict]


def checks_table(title: str, checks: list[CheckResult]) -> Table:
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("#", justify="right")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for check in checks:
        table.add_row(str(check.number), check.statement, mark(check.result), escape(check.detail))
    return table


def tally_table(verdict: PollVerdict) -> Table:
    """Options across (a poll has a few), the recomputed and published tallies and then each
    stratum down (a city may have a dozen districts): readable on an 80-column terminal."""
    names = verdict.names or NOT_GIVEN
    recomputed = verdict.recomputed or []
    table = Table(title=f"Poll {verdict.poll_id}: tally")
    table.add_column("")
    for option in range(len(recomputed)):
        table.add_column(escape(names.option(option)), justify="right")
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
        table.add_row(escape(names.stratum(stratum)), *(f"{count:,}" for count in verdict.by_stratum[stratum]))
    return table


def _names_line(verdict: PollVerdict) -> str:
    names = verdict.names or NOT_GIVEN
    if names.status is NamesStatus.MISMATCH:
        return f"[bold red]Names: MISMATCH[/] — {escape(names.detail)}"
    return f"Names: {escape(names.detail)}"


def strata_table(verdict: PollVerdict) -> Table:
    """Per stratum, what the issuer could still have done unseen: the register (compare it with
    the district's population) and the requested tokens no counted ballot used (the most ballots
    the issuer could have cast with abstainers' tokens)."""
    names = verdict.names or NOT_GIVEN
    table = Table(title=f"Poll {verdict.poll_id}: register and issuer slack")
    for column in ("stratum", "register", "requests", "counted", "requested, not counted"):
        table.add_column(column, justify="left" if column == "stratum" else "right")
    for figures in verdict.strata:
        size = "—" if figures.register_size is None else f"{figures.register_size:,}"
        table.add_row(
            escape(names.stratum(figures.stratum)),
            size,
            f"{figures.requests:,}",
            f"{figures.counted:,}",
            f"{figures.requested_not_counted:,}",
        )
    return table


def _relay_name(item: dict[str, Any]) -> str:
    return "a relay the chain does not name" if item["relay"] is None else relay_label(item["relay"], item["name"])


def print_poll(console: Console, verdict: PollVerdict) -> None:
    names = verdict.names or NOT_GIVEN
    if verdict.verdict is Verdict.CANNOT_VERIFY:
        console.print(f"Poll {verdict.poll_id}: {mark(verdict.verdict)} — {escape(verdict.reason or '')}")
        return
    if names.question:
        console.print(f"[bold]Poll {verdict.poll_id}:[/] {escape(names.question)}")
    console.print(checks_table(f"Poll {verdict.poll_id}", verdict.checks))
    console.print(_names_line(verdict))
    if verdict.key_origin:
        console.print(f"Election key: {verdict.key_origin}.")
    if verdict.recomputed is not None:
        console.print(tally_table(verdict))
        console.print(NUMBERING)
    if verdict.strata:
        console.print(strata_table(verdict))
    if verdict.by_relay:
        carried = ", ".join(f"{_relay_name(item)}: {item['counted']:,}" for item in verdict.counted_by_relay())
        console.print(f"Counted ballots by the relay that carried them: {escape(carried)}")
    listed = (
        ("superseded by a later ballot of the same token (not counted)", verdict.superseded),
        ("spoiled by the voter: no valid choice (not counted)", verdict.spoiled),
        ("carried by more than one relay (counted once)", verdict.carried),
        (
            "tokens whose last ballot is two different ballots, its holder's equivocation (not counted)",
            verdict.equivocations,
        ),
    )
    for title, items in listed:
        if items:
            console.print(f"{len(items)} {title}:")
            for item in items[:20]:
                console.print("  " + escape(", ".join(f"{k}={v}" for k, v in item.items())))
            if len(items) > 20:
                console.print(f"  … and {len(items) - 20} more (use --json for all)")
    for check in verdict.checks:
        if not check.passed and len(check.failures) > 1:
            console.print(f"check {check.number} failures:")
            for failure in check.failures[:20]:
                console.print(f"  - {escape(failure)}")
    reason = f" — {escape(verdict.reason)}" if verdict.reason else ""
    console.print(f"Poll {verdict.poll_id}: {mark(verdict.verdict)}{reason}")

"""`veche-verify`: recompute Veche polls from a node's JSON-RPC alone.

Exit codes: 0 every check passed; 1 a check failed; 2 nothing could be verified (no node, bad
arguments, unreadable files). Never 0 without having checked.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal, NoReturn, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.progress import Progress

from veche_core import dataset as dataset_format
from veche_core.deployment import Deployment
from veche_core.errors import VecheError
from veche_core.receipt import Receipt
from veche_core.rpc import RpcClient

from . import checks, report, work
from .chain import balances, has_role, read_snapshot
from .records import ChainSnapshot

EXIT_PASS, EXIT_FAIL, EXIT_UNVERIFIED = 0, 1, 2
try:
    VERSION = version("veche-verifier")
except PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "unknown"


class Context:
    def __init__(self, rpc: str, deployment: Deployment, as_json: bool, workers: int) -> None:
        self.rpc = rpc
        self.deployment = deployment
        self.as_json = as_json
        self.workers = workers
        self.out = Console()
        self.err = Console(stderr=True)
        self.snapshot: ChainSnapshot | None = None  # the chain state read, once it was

    @contextmanager
    def client(self) -> Iterator[RpcClient]:
        with RpcClient(self.rpc) as client:
            yield client

    def status(self, message: str) -> AbstractContextManager[object]:
        return self.err.status(message) if not self.as_json and self.err.is_terminal else _Nothing()

    def read(self, client: RpcClient, poll_id: int | None = None, *, ballot_hashes: bool = False) -> ChainSnapshot:
        """read_snapshot, with a progress bar (on a terminal) over the bulk of the logs."""
        what = "every poll" if poll_id is None else f"poll {poll_id}"
        if self.as_json or not self.err.is_terminal:
            self.snapshot = read_snapshot(
                client, self.deployment, poll_id, workers=self.workers, ballot_hashes=ballot_hashes
            )
        else:
            with Progress(*Progress.get_default_columns(), console=self.err, transient=True) as bar:
                task = bar.add_task(f"{what}: reading, checking and opening ballots", total=None)
                self.snapshot = read_snapshot(
                    client,
                    self.deployment,
                    poll_id,
                    workers=self.workers,
                    ballot_hashes=ballot_hashes,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
        return self.snapshot

    def verify(
        self, snapshot: ChainSnapshot, poll_id: int, dataset: list[dataset_format.DatasetRow] | None = None
    ) -> checks.PollVerdict:
        with self.status(f"poll {poll_id}: counting…"):
            return checks.verify_poll(snapshot, poll_id, dataset=dataset)

    def source(self) -> dict[str, Any]:
        """What was read, so that anyone can repeat the verification and compare: the chain, the
        contracts, the block the reading stopped at, and this verifier's version."""
        snapshot, deployment = self.snapshot, self.deployment
        assert snapshot is not None, "every command reads the chain before it reports"
        return {
            "chainId": snapshot.chain_id,
            "pollBook": deployment.poll_book,
            "cityPoints": deployment.city_points,
            "fromBlock": deployment.start_block,
            "toBlock": snapshot.head,
            "toBlockHash": snapshot.head_hash,
            "verifier": VERSION,
        }

    def finish(self, payload: dict[str, Any], passed: bool) -> NoReturn:
        if self.as_json:
            click.echo(json.dumps({**payload, "source": self.source()}, indent=2))
        else:
            source = self.source()
            self.out.print(
                f"Read blocks {source['fromBlock']}–{source['toBlock']} of chain {source['chainId']} "
                f"(block {source['toBlock']} is {source['toBlockHash']}); veche-verify {VERSION}."
            )
        sys.exit(EXIT_PASS if passed else EXIT_FAIL)


class _Nothing:
    def __enter__(self) -> _Nothing:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        return False


def _fail_unverified(message: str) -> NoReturn:
    click.echo(f"veche-verify: could not verify: {message}", err=True)
    sys.exit(EXIT_UNVERIFIED)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(VERSION, prog_name="veche-verify")
@click.option(
    "--rpc",
    envvar="VECHE_RPC_URL",
    default="http://127.0.0.1:8545",
    show_default=True,
    help="JSON-RPC address of the node to read (ideally your own).",
)
@click.option(
    "--deployment",
    "deployment_file",
    envvar="VECHE_DEPLOYMENT",
    type=click.Path(dir_okay=False),
    help="The deployment file the city publishes (chain id, contract addresses, start block).",
)
@click.option("--poll-book", help="PollBook address (instead of a deployment file).")
@click.option("--city-points", help="CityPoints address (instead of a deployment file).")
@click.option(
    "--start-block", type=int, default=0, show_default=True, help="First block to read logs from (with --poll-book)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of tables.")
@click.option(
    "--workers", type=int, default=None, help="Processes for the per-ballot cryptography (default: every core)."
)
@click.pass_context
def main(
    ctx: click.Context,
    rpc: str,
    deployment_file: str | None,
    poll_book: str | None,
    city_points: str | None,
    start_block: int,
    as_json: bool,
    workers: int | None,
) -> None:
    """Recompute Veche polls from chain state alone, and check every rule by number.

    Point it at any node's JSON-RPC (your own) and at the city's deployment file.
    """
    try:
        if deployment_file:
            deployment = Deployment.load(deployment_file)
        elif poll_book and city_points:
            with RpcClient(rpc) as client:
                chain_id = client.chain_id()
            deployment = Deployment(chain_id, poll_book, city_points, start_block)
        else:
            raise click.UsageError("give --deployment FILE, or --poll-book and --city-points")
    except (OSError, VecheError) as exc:
        _fail_unverified(str(exc))
    ctx.obj = Context(rpc, deployment, as_json, workers or work.default_workers())


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _guard(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn node and input errors (and crashes) into exit code 2 with a plain sentence."""

    @functools.wraps(function)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return function(*args, **kwargs)
        except (OSError, VecheError) as exc:
            _fail_unverified(str(exc))
        except Exception as exc:  # noqa: BLE001 - a crash must never read as a verdict
            _fail_unverified(f"internal error: {exc!r}")

    return wrapper


def _load_dataset(path: str) -> list[dataset_format.DatasetRow]:
    return dataset_format.parse(Path(path).read_text())


@main.command("poll")
@click.argument("poll_id", type=int)
@click.option(
    "--dataset",
    "dataset_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Also compare the city's anonymised dataset (CSV or JSON) row by row.",
)
@click.option(
    "--write-dataset",
    "write_file",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the dataset recomputed from the chain (canonical CSV, whose keccak256 check 10 "
    "compares with the hash on chain).",
)
@click.pass_obj
@_guard
def poll_command(obj: Context, poll_id: int, dataset_file: str | None, write_file: str | None) -> None:
    """Every numbered check for one poll, the recomputed and the published tally."""
    rows = _load_dataset(dataset_file) if dataset_file else None
    with obj.client() as client:
        snapshot = obj.read(client, poll_id)
    verdict = obj.verify(snapshot, poll_id, rows)
    if write_file:
        if verdict.recomputed is None:
            obj.err.print(f"no dataset written to {write_file}: the ballots could not be decrypted (check 7)")
        else:
            Path(write_file).write_bytes(dataset_format.canonical_csv(verdict.counted_rows))
    if not obj.as_json:
        report.print_poll(obj.out, verdict)
    obj.finish(verdict.to_dict(), verdict.passed)


@main.command("all")
@click.pass_obj
@_guard
def all_command(obj: Context) -> None:
    """Every numbered check for every poll of the deployment."""
    with obj.client() as client:
        snapshot = obj.read(client)
    verdicts = [obj.verify(snapshot, pid) for pid in sorted(snapshot.polls)]
    if not obj.as_json:
        for verdict in verdicts:
            report.print_poll(obj.out, verdict)
        if not verdicts:
            obj.err.print("no polls on chain: nothing was verified")
    passed = bool(verdicts) and all(v.passed for v in verdicts)
    obj.finish({"verdict": "PASS" if passed else "FAIL", "polls": [v.to_dict() for v in verdicts]}, passed)


@main.command("receipt")
@click.argument("receipt_file", type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
@_guard
def receipt_command(obj: Context, receipt_file: str) -> None:
    """Check a resident's receipt: the relay's signature, and its ballot counted or superseded."""
    receipt = Receipt.from_json(Path(receipt_file).read_text())
    with obj.client() as client:
        snapshot = obj.read(client, receipt.poll_id, ballot_hashes=True)
        authorised = has_role(client, obj.deployment.poll_book, "RELAYER_ROLE", receipt.relayer)
    verdict = obj.verify(snapshot, receipt.poll_id)
    result = checks.check_receipt(snapshot, verdict, receipt, authorised)
    if not obj.as_json:
        obj.out.print(report.checks_table(f"Receipt for poll {receipt.poll_id}", [result]))
    obj.finish({"verdict": "PASS" if result.passed else "FAIL", "checks": [result.to_dict()]}, result.passed)


@main.command("dataset")
@click.argument("poll_id", type=int)
@click.argument("dataset_file", type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
@_guard
def dataset_command(obj: Context, poll_id: int, dataset_file: str) -> None:
    """Compare the city's anonymised dataset (CSV or JSON) with the chain (check 10)."""
    rows = _load_dataset(dataset_file)
    with obj.client() as client:
        snapshot = obj.read(client, poll_id)
    verdict = obj.verify(snapshot, poll_id, rows)
    result = next(c for c in verdict.checks if c.number == 10)
    if not obj.as_json:
        obj.out.print(report.checks_table(f"Dataset of poll {poll_id}", [result]))
        for failure in result.failures[:20]:
            obj.out.print(f"  - {failure}")
    obj.finish({"verdict": "PASS" if result.passed else "FAIL", "checks": [result.to_dict()]}, result.passed)


@main.command("points")
@click.pass_obj
@_guard
def points_command(obj: Context) -> None:
    """Audit points: credits per poll against issued tokens × points; balances against events."""
    with obj.client() as client:
        snapshot = obj.read(client)
        on_chain = balances(client, obj.deployment.city_points, sorted(snapshot.balances_by_events), snapshot.head)
    result = checks.check_points(snapshot, on_chain)
    if not obj.as_json:
        obj.out.print(report.checks_table("Points audit", [result]))
        for failure in result.failures[:20]:
            obj.out.print(f"  - {failure}")
    obj.finish({"verdict": "PASS" if result.passed else "FAIL", "checks": [result.to_dict()]}, result.passed)

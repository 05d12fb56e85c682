"""`veche-verify`: recompute Veche polls from a node's JSON-RPC alone.

Exit codes: 0 PASS (every check passed; for `all`, every finished poll passed); 1 FAIL (a rule
was broken); 2 COULD NOT VERIFY (no node, bad arguments, unreadable files, a deployment file that
does not match the node, no such poll); 3 NOT YET (nothing is wrong so far, but the poll is open,
its key shares are not released or its result is not published). Never 0 without having checked.
Under `--json` every outcome, errors included, is one JSON object on stdout.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal, NoReturn, ParamSpec, TypeVar

import click
from click.core import ParameterSource
from rich.console import Console
from rich.progress import Progress

from veche_core import dataset as dataset_format
from veche_core.deployment import Deployment
from veche_core.errors import VecheError
from veche_core.metadata import PollTexts
from veche_core.receipt import Receipt
from veche_core.rpc import RpcClient

from . import checks, names, report, work
from .chain import balances, check_deployment, read_snapshot
from .checks import Verdict
from .records import ChainSnapshot, PollParameters

EXIT_CODES = {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.CANNOT_VERIFY: 2, Verdict.NOT_YET: 3}
EXIT_UNVERIFIED = EXIT_CODES[Verdict.CANNOT_VERIFY]
try:
    VERSION = version("veche-verifier")
except PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "unknown"


class Context:
    def __init__(
        self,
        rpc: str,
        deployment: Deployment,
        as_json: bool,
        workers: int,
        city: str | None = None,
        metadata: dict[int, PollTexts] | None = None,
    ) -> None:
        self.rpc = rpc
        self.deployment = deployment
        self.as_json = as_json
        self.workers = workers
        self.city = city
        self.metadata = metadata or {}
        self.out = Console()
        self.err = Console(stderr=True)
        self.snapshot: ChainSnapshot | None = None  # the chain state read, once it was

    @contextmanager
    def client(self) -> Iterator[RpcClient]:
        with RpcClient(self.rpc) as client:
            check_deployment(client, self.deployment)  # a wrong file is a setup mistake, not a verdict
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
            verdict = checks.verify_poll(snapshot, poll_id, dataset=dataset)
        record = snapshot.polls.get(poll_id)
        if record is not None:
            verdict.names = self.names(poll_id, record.created)
        return verdict

    def names(self, poll_id: int, created: PollParameters | None) -> names.Names:
        """The poll's texts from the metadata file, else from the city, checked against the chain."""
        texts: PollTexts | names.Names | None = self.metadata.get(poll_id)
        if texts is None and self.city:
            texts = names.from_city(self.city, poll_id)
        if isinstance(texts, names.Names):  # the city could not be asked
            return texts
        return names.check_names(poll_id, created, texts, self.deployment)

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

    def finish(self, payload: dict[str, Any], verdict: Verdict) -> NoReturn:
        if self.as_json:
            click.echo(json.dumps({**payload, "source": self.source()}, indent=2))
        else:
            source = self.source()
            self.out.print(
                f"Read blocks {source['fromBlock']}–{source['toBlock']} of chain {source['chainId']} "
                f"(block {source['toBlock']} is {source['toBlockHash']}); veche-verify {VERSION}."
            )
        sys.exit(EXIT_CODES[verdict])


class _Nothing:
    def __enter__(self) -> _Nothing:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        return False


def _fail_unverified(message: str) -> NoReturn:
    if _as_json():
        click.echo(json.dumps({"verdict": Verdict.CANNOT_VERIFY.value, "error": message}, indent=2))
    else:
        click.echo(f"veche-verify: could not verify: {message}", err=True)
    sys.exit(EXIT_UNVERIFIED)


# --- options accepted before the command and after it ----------------------------------------------

_KEPT = "veche_verify.options"  # where ctx.meta keeps them (meta is shared by a command and its group)
_PRIORITY = {ParameterSource.COMMANDLINE: 2, ParameterSource.ENVIRONMENT: 1}


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Keep a global option wherever it was given: on the command line (after the command wins
    over before it), else from the environment, else its default."""
    kept = ctx.meta.setdefault(_KEPT, {})
    assert param.name is not None
    priority = _PRIORITY.get(ctx.get_parameter_source(param.name), 0)  # type: ignore[arg-type]
    if param.name not in kept or priority >= kept[param.name][0]:
        kept[param.name] = (priority, value)
    return value


def _global(*declarations: str, **attributes: Any) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    return click.option(*declarations, expose_value=False, callback=_remember, **attributes)


_GLOBAL_OPTIONS = (
    _global(
        "--rpc",
        envvar="VECHE_RPC_URL",
        default="http://127.0.0.1:8545",
        show_default=True,
        help="JSON-RPC address of the node to read (ideally your own).",
    ),
    _global(
        "--deployment",
        "deployment_file",
        envvar="VECHE_DEPLOYMENT",
        type=click.Path(dir_okay=False),
        help="The deployment file the city publishes (chain id, contract addresses, start block).",
    ),
    _global("--poll-book", help="PollBook address (instead of a deployment file)."),
    _global("--city-points", help="CityPoints address (instead of a deployment file)."),
    _global(
        "--start-block",
        type=int,
        default=0,
        show_default=True,
        help="First block to read logs from (with --poll-book).",
    ),
    _global(
        "--city",
        envvar="VECHE_CITY_URL",
        help="The city's API (its GET /polls/ID names the question, options and strata; checked against the "
        "poll's metadataHash).",
    ),
    _global(
        "--metadata",
        "metadata_file",
        type=click.Path(dir_okay=False),
        help="The polls' texts in a file instead (one poll object as GET /polls/ID serves it, or a list of them).",
    ),
    _global("--json", "as_json", is_flag=True, help="Print JSON for machines instead of tables (errors too)."),
    _global(
        "--workers", type=int, default=None, help="Processes for the per-ballot cryptography (default: every core)."
    ),
)


def _global_options(function: Callable[_P, _R]) -> Callable[_P, _R]:
    for option in reversed(_GLOBAL_OPTIONS):
        function = option(function)
    return function


def _options() -> dict[str, Any]:
    context = click.get_current_context(silent=True)
    kept = context.meta.get(_KEPT, {}) if context is not None else {}
    return {name: value for name, (_, value) in kept.items()}


def _as_json() -> bool:
    return bool(_options().get("as_json", "--json" in sys.argv[1:]))


def _context() -> Context:
    """The command's context from the global options: the deployment is loaded here, not by the
    group, so that `veche-verify poll --help` needs none."""
    options = _options()
    try:
        if options.get("deployment_file"):
            deployment = Deployment.load(options["deployment_file"])
        elif options.get("poll_book") and options.get("city_points"):
            with RpcClient(options["rpc"]) as client:
                chain_id = client.chain_id()
            deployment = Deployment(chain_id, options["poll_book"], options["city_points"], options["start_block"])
        else:
            raise click.UsageError("give --deployment FILE, or --poll-book and --city-points")
        metadata = names.from_file(options["metadata_file"]) if options.get("metadata_file") else None
    except (OSError, VecheError) as exc:
        _fail_unverified(str(exc))
    workers = options.get("workers") or work.default_workers()
    return Context(options["rpc"], deployment, bool(options.get("as_json")), workers, options.get("city"), metadata)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(VERSION, prog_name="veche-verify")
@_global_options
def cli() -> None:
    """Recompute Veche polls from chain state alone, and check every rule by number.

    Point it at any node's JSON-RPC (your own) and at the city's deployment file. Options go
    before the command or after it. Exit codes: 0 PASS, 1 FAIL (a rule was broken), 2 COULD NOT
    VERIFY (a setup mistake: no node, a wrong deployment file, no such poll), 3 NOT YET (the poll
    is open, its key is not released or its result not published).
    """


def main(args: Sequence[str] | None = None) -> NoReturn:
    """The `veche-verify` entry point: click's, with usage errors as JSON under --json."""
    argv = list(sys.argv[1:] if args is None else args)
    try:
        code = cli.main(argv, prog_name="veche-verify", standalone_mode=False)
    except click.ClickException as exc:
        if "--json" in argv:
            click.echo(json.dumps({"verdict": Verdict.CANNOT_VERIFY.value, "error": exc.format_message()}, indent=2))
        else:
            exc.show()
        sys.exit(EXIT_UNVERIFIED)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_UNVERIFIED)
    sys.exit(code if isinstance(code, int) else 0)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _guard(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn node and input errors (and crashes) into exit code 2 with a plain sentence."""

    @functools.wraps(function)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return function(*args, **kwargs)
        except click.ClickException:
            raise
        except (OSError, VecheError) as exc:
            _fail_unverified(str(exc))
        except Exception as exc:  # noqa: BLE001 - a crash must never read as a verdict
            _fail_unverified(f"internal error: {exc!r}")

    return wrapper


def _load_dataset(path: str) -> list[dataset_format.DatasetRow]:
    return dataset_format.parse(Path(path).read_text())


@cli.command("poll")
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
@_global_options
@_guard
def poll_command(poll_id: int, dataset_file: str | None, write_file: str | None) -> None:
    """Every numbered check for one poll, the recomputed and the published tally."""
    obj = _context()
    rows = _load_dataset(dataset_file) if dataset_file else None
    with obj.client() as client:
        snapshot = obj.read(client, poll_id)
    verdict = obj.verify(snapshot, poll_id, rows)
    if write_file:
        if verdict.recomputed is None:
            key_check = next((c.number for c in verdict.checks if c.number in (7, 15)), 7)
            obj.err.print(f"no dataset written to {write_file}: the ballots could not be decrypted (check {key_check})")
        else:
            Path(write_file).write_bytes(dataset_format.canonical_csv(verdict.counted_rows))
    if not obj.as_json:
        report.print_poll(obj.out, verdict)
    obj.finish(verdict.to_dict(), verdict.verdict)


def overall(verdicts: list[checks.PollVerdict]) -> Verdict:
    """`all`: FAIL if any poll fails; PASS if the others pass or are not yet, and one passed;
    NOT YET if none is finished; COULD NOT VERIFY if there is no poll at all."""
    seen = {v.verdict for v in verdicts}
    for verdict in (Verdict.FAIL, Verdict.CANNOT_VERIFY, Verdict.PASS, Verdict.NOT_YET):
        if verdict in seen:
            return verdict
    return Verdict.CANNOT_VERIFY


@cli.command("all")
@_global_options
@_guard
def all_command() -> None:
    """Every numbered check for every poll of the deployment; polls not finished are listed."""
    obj = _context()
    with obj.client() as client:
        snapshot = obj.read(client)
    verdicts = [obj.verify(snapshot, pid) for pid in sorted(snapshot.polls)]
    result = overall(verdicts)
    not_yet = [v.poll_id for v in verdicts if v.verdict is Verdict.NOT_YET]
    if not obj.as_json:
        for verdict in verdicts:
            report.print_poll(obj.out, verdict)
        if not verdicts:
            obj.out.print(f"{report.mark(result)}: no polls on chain, nothing was verified")
        else:
            waiting = f"; not yet: {', '.join(f'poll {p}' for p in not_yet)}" if not_yet else ""
            obj.out.print(f"All {len(verdicts)} polls: {report.mark(result)}{waiting}")
    payload: dict[str, Any] = {"verdict": result.value, "polls": [v.to_dict() for v in verdicts], "notYet": not_yet}
    if not verdicts:
        payload["error"] = "no polls on chain: nothing was verified"
    obj.finish(payload, result)


@cli.command("receipt")
@click.argument("receipt_file", type=click.Path(exists=True, dir_okay=False))
@_global_options
@_guard
def receipt_command(receipt_file: str) -> None:
    """Check a resident's receipt: the relay's signature, and its ballot counted or superseded."""
    obj = _context()
    receipt = Receipt.from_json(Path(receipt_file).read_text())
    with obj.client() as client:
        snapshot = obj.read(client, receipt.poll_id, ballot_hashes=True)
    verdict = obj.verify(snapshot, receipt.poll_id)
    result = checks.check_receipt(snapshot, verdict, receipt)
    if not obj.as_json:
        obj.out.print(report.checks_table(f"Receipt for poll {receipt.poll_id}", [result]))
    obj.finish({"verdict": result.result.value, "checks": [result.to_dict()]}, result.result)


@cli.command("dataset")
@click.argument("poll_id", type=int)
@click.argument("dataset_file", type=click.Path(exists=True, dir_okay=False))
@_global_options
@_guard
def dataset_command(poll_id: int, dataset_file: str) -> None:
    """Compare the city's anonymised dataset (CSV or JSON) with the chain (check 10)."""
    obj = _context()
    rows = _load_dataset(dataset_file)
    with obj.client() as client:
        snapshot = obj.read(client, poll_id)
    verdict = obj.verify(snapshot, poll_id, rows)
    if verdict.verdict is Verdict.CANNOT_VERIFY:
        _fail_unverified(verdict.reason or f"no poll {poll_id}")
    result = next(c for c in verdict.checks if c.number == 10)
    if not obj.as_json:
        obj.out.print(report.checks_table(f"Dataset of poll {poll_id}", [result]))
        for failure in result.failures[:20]:
            obj.out.print(f"  - {failure}")
    obj.finish({"verdict": result.result.value, "checks": [result.to_dict()]}, result.result)


@cli.command("points")
@_global_options
@_guard
def points_command() -> None:
    """Audit points: credits per poll against issued tokens × points; balances against events."""
    obj = _context()
    with obj.client() as client:
        snapshot = obj.read(client)
        on_chain = balances(client, obj.deployment.city_points, sorted(snapshot.balances_by_events), snapshot.head)
    result = checks.check_points(snapshot, on_chain)
    if not obj.as_json:
        obj.out.print(report.checks_table("Points audit", [result]))
        for failure in result.failures[:20]:
            obj.out.print(f"  - {failure}")
    obj.finish({"verdict": result.result.value, "checks": [result.to_dict()]}, result.result)

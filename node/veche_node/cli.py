"""`veche-node`: run Veche's chain — a Clique validator network for the city, or anvil for one
machine.

Every command that works on a network takes `--dir` (alias `--network`, default `$VECHE_NETWORK`
or ./network), the directory `veche-node init` made.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import click

from .errors import VecheNodeError
from .network import (
    DEFAULT_CHAIN_ID,
    DEFAULT_GAS_LIMIT,
    DEFAULT_PERIOD,
    OBSERVER,
    VALIDATOR,
    Network,
)


def _network_option(command):
    return click.option(
        "--dir",
        "--network",
        "network_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: os.environ.get("VECHE_NETWORK", "network"),
        show_default="$VECHE_NETWORK or ./network",
        help="The network directory (made by `veche-node init`).",
    )(command)


def _load(network_dir: Path) -> Network:
    return Network.load(network_dir)


def _names(net: Network, nodes: tuple[str, ...], all_nodes: bool) -> list[str]:
    if all_nodes and nodes:
        raise click.UsageError("give node names or --all, not both")
    if not all_nodes and not nodes:
        raise click.UsageError(f"name a node ({', '.join(net.names())}) or give --all")
    if all_nodes:
        return net.names()
    for name in nodes:
        net.node(name)  # fails early on a typo
    return list(nodes)


class _Group(click.Group):
    """Shows VecheNodeError as a one-line error and exit code 1 instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except VecheNodeError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group)
@click.version_option(package_name="veche", message="%(prog)s %(version)s")
def main() -> None:
    """Run Veche's chain: a go-ethereum Clique validator network, or anvil for one machine."""


@main.command()
@click.option(
    "--validators",
    "-n",
    type=click.IntRange(1, 64),
    default=3,
    show_default=True,
    help="Number of validators (Clique signers) in the genesis.",
)
@click.option(
    "--observers", type=click.IntRange(0, 16), default=1, show_default=True, help="Number of non-validating nodes."
)
@_network_option
@click.option("--chain-id", type=click.IntRange(1), default=DEFAULT_CHAIN_ID, show_default=True)
@click.option(
    "--period", type=click.IntRange(1), default=DEFAULT_PERIOD, show_default=True, help="Seconds between blocks."
)
@click.option(
    "--gas-limit",
    type=click.IntRange(30_000_000),
    default=DEFAULT_GAS_LIMIT,
    show_default=True,
    help="Block gas limit (ballot batches need ~7 M each).",
)
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Password for every keystore (first line). Default: a new random one.",
)
@click.option("--light-kdf", is_flag=True, help="Cheap keystore encryption (scrypt n=4096): tests and demos only.")
def init(validators, observers, network_dir, chain_id, period, gas_limit, password_file, light_kdf):
    """Create a network: keys, Clique genesis, node data directories, network.json."""
    from .network import init_network

    net = init_network(
        network_dir, validators=validators, observers=observers, chain_id=chain_id,
        period=period, gas_limit=gas_limit, password_file=password_file, light_kdf=light_kdf,
    )  # fmt: skip
    click.echo(f"created {net.manifest_path} (chain id {net.chain_id})")
    for spec in net.nodes:
        who = f" signer {spec.address}" if spec.is_validator else ""
        click.echo(f"  {spec.name:<14} {spec.url}  p2p {spec.p2p_port}{who}")
    for role, address in net.operators.items():
        click.echo(f"  operator {role:<13} {address}")
    click.echo(f"next: veche-node start --all --dir {network_dir}")


@main.command("add-node")
@_network_option
@click.option("--observer", "role", flag_value=OBSERVER, help="A non-validating node.")
@click.option(
    "--validator",
    "role",
    flag_value=VALIDATOR,
    default=True,
    help="A validator (it seals once the validators vote it in).",
)
@click.option("--name", help="Node name (default validator-N / observer-N).")
@click.option("--light-kdf", is_flag=True, help="Cheap keystore encryption: tests only.")
def add_node(network_dir, role, name, light_kdf):
    """Add a node on this machine; a validator then needs `propose add` to seal."""
    from .network import add_node as add

    net = _load(network_dir)
    spec = add(net, name, role=role, light_kdf=light_kdf)
    click.echo(f"added {spec.name} ({spec.role}) {spec.url}")
    if spec.is_validator:
        click.echo(f"start it, then vote it in: veche-node propose add {spec.address}")


@main.command("add-peer")
@_network_option
@click.argument("enode")
def add_peer(network_dir, enode):
    """Peer every local node with a node on another machine (its enode URL)."""
    from .network import add_peer as add

    add(_load(network_dir), enode)
    click.echo(f"peered with {enode}")


@main.command()
@_network_option
@click.argument("nodes", nargs=-1)
@click.option("--all", "all_nodes", is_flag=True, help="Every node of the network.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for each node's RPC.")
def start(network_dir, nodes, all_nodes, timeout):
    """Start nodes in the background (logs and pid in each node's directory)."""
    from .network import start_node

    net = _load(network_dir)
    for name in _names(net, nodes, all_nodes):
        pid = start_node(net, name, timeout=timeout)
        click.echo(f"{name}: running (pid {pid}) {net.node(name).url}")


@main.command()
@_network_option
@click.argument("nodes", nargs=-1)
@click.option("--all", "all_nodes", is_flag=True, help="Every node of the network.")
def stop(network_dir, nodes, all_nodes):
    """Stop nodes (SIGTERM, then SIGKILL after 30 s)."""
    from .network import stop_node

    net = _load(network_dir)
    for name in _names(net, nodes, all_nodes):
        click.echo(f"{name}: {'stopped' if stop_node(net, name) else 'was not running'}")


@main.command()
@_network_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(network_dir, as_json):
    """Per node: height, peers, signers, age of the last block, pending transactions."""
    from rich.console import Console
    from rich.table import Table

    from .network import network_status

    net = _load(network_dir)
    statuses = network_status(net)
    if as_json:
        click.echo(json.dumps({"chainId": net.chain_id, "nodes": [s.to_dict() for s in statuses]}, indent=2))
        return
    table = Table(title=f"Veche network {net.root} (chain {net.chain_id})")
    for column in ("node", "role", "state", "height", "peers", "signers", "signing",
                   "last block", "txpool", "rpc"):  # fmt: skip
        table.add_column(column, no_wrap=True, justify="right" if column in ("height", "peers", "signers") else "left")

    def show(value) -> str:
        return "-" if value is None else str(value)

    for s in statuses:
        state = "[green]running[/]" if s.running else "[red]stopped[/]"
        if s.error:
            state = "[yellow]no answer[/]"
        age = "-" if s.last_block_age is None else f"{s.last_block_age:.1f} s ago"
        if s.last_block_age is not None and s.last_block_age > 10 * net.period:
            age = f"[red]{age}[/]"
        signing = {True: "yes", False: "[yellow]no[/]", None: "-"}[s.signing]
        pool = "-" if s.pending is None else f"{s.pending} pending, {s.queued} queued"
        table.add_row(
            s.name, s.role, state, show(s.height), show(s.peers),
            show(len(s.signers) if s.signers is not None else None), signing, age, pool, s.url,
        )  # fmt: skip
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(table)
    for s in statuses:
        if s.error:
            console.print(f"{s.name}: {s.error}", markup=False)


@main.command()
@_network_option
@click.argument("action", type=click.Choice(["add", "remove"]))
@click.argument("address")
def propose(network_dir, action, address):
    """Every running validator here votes to add or remove a signer (clique_propose).

    The change happens once more than half of the current signers have voted the same way
    (partners run `propose` on their own validators, or `clique.propose` in `geth attach`).
    """
    from .network import propose as vote

    outcome = vote(_load(network_dir), address, authorize=action == "add")
    for name, result in outcome.items():
        click.echo(f"{name}: {result}")
    if not any(result == "voted" for result in outcome.values()):
        raise click.ClickException("no validator voted: start them first")


@main.command()
@_network_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default="deployment.json",
    show_default=True,
    help="Where to write the deployment file.",
)
@click.option("--node", help="Send through this node's RPC (default: the first running validator).")
def deploy(network_dir, out, node):
    """Deploy PollBook and CityPoints with the operators' keys; write the deployment file."""
    net = _load(network_dir)
    from .network import deploy_contracts

    deployment = deploy_contracts(net, net.node(node).url if node else None)
    deployment.save(out)
    click.echo(f"PollBook   {deployment.poll_book}")
    click.echo(f"CityPoints {deployment.city_points}")
    click.echo(f"wrote {out} (chain {deployment.chain_id}, logs from block {deployment.start_block})")


@main.command("rotate-role")
@_network_option
@click.argument("role", type=click.Choice(["relayer", "issuer", "poll-admin", "points-admin"]))
@click.option(
    "--deployment",
    "deployment_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default="deployment.json",
    show_default=True,
)
@click.option("--to", "to_address", help="Give the role to this address (default: a new key in the keystore).")
@click.option("--keep-old", is_flag=True, help="Do not revoke the role from the old key.")
def rotate_role(network_dir, role, deployment_file, to_address, keep_old):
    """Move an operator role to a new key: grantRole to the new, revokeRole from the old."""
    from veche_core.deployment import Deployment

    from .roles import rotate_role as rotate

    net = _load(network_dir)
    rotation = rotate(
        net, Deployment.load(deployment_file), role.replace("-", "_"), to=to_address,
        revoke_old=not keep_old,
    )  # fmt: skip
    click.echo(f"{role}: {rotation.old} -> {rotation.new}" + ("" if rotation.revoked else " (old kept)"))
    if rotation.keystore:
        click.echo(f"new key: {rotation.keystore} (give it to the service that holds the role)")


_DEPLOYMENT_OPTION = click.option(
    "--deployment",
    "deployment_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default="deployment.json",
    show_default=True,
)


@main.group()
def relay() -> None:
    """Relays residents may send ballots to: a partner's (veche-relay) or the city's own API."""


@relay.command("add")
@_network_option
@_DEPLOYMENT_OPTION
@click.argument("address")
@click.option("--name", required=True, help="Who runs it, as residents are shown it (1..64 bytes).")
@click.option("--url", required=True, help="Where it takes ballots (1..256 bytes).")
def relay_add(network_dir, deployment_file, address, name, url):
    """Register ADDRESS (the partner's `veche-relay init` prints it) as a relay: it is funded for
    gas and granted RELAYER_ROLE, and its name and URL are published on chain. Again for the same
    address: a new name or URL."""
    from veche_core.deployment import Deployment

    from .relays import add_relay

    hashes = add_relay(_load(network_dir), Deployment.load(deployment_file), address, name, url)
    click.echo(f"relay {address} registered as {name!r} at {url} (transactions {', '.join(hashes)})")


@relay.command("remove")
@_network_option
@_DEPLOYMENT_OPTION
@click.argument("address")
def relay_remove(network_dir, deployment_file, address):
    """Revoke ADDRESS's RELAYER_ROLE. Receipts it signed while it held the role stay valid."""
    from veche_core.deployment import Deployment

    from .relays import remove_relay

    tx = remove_relay(_load(network_dir), Deployment.load(deployment_file), address)
    click.echo(f"relay {address} removed (transaction {tx})")


@relay.command("list")
@_network_option
@_DEPLOYMENT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def relay_list(network_dir, deployment_file, as_json):
    """Every key that holds or held RELAYER_ROLE, with what it registered."""
    from veche_core.deployment import Deployment

    from .relays import list_relays

    relays = list_relays(_load(network_dir), Deployment.load(deployment_file))
    if as_json:
        rows = [{"address": r.address, "name": r.name, "url": r.url, "active": r.active} for r in relays]
        click.echo(json.dumps(rows, indent=2))
        return
    for r in relays:
        state = "active" if r.active else "removed"
        click.echo(f"{r.address}  {state:7}  {r.name or '(not registered)'}  {r.url or ''}".rstrip())


@main.command()
@_network_option
@click.argument("node")
@click.option("--lines", "-n", type=int, default=40, show_default=True)
def logs(network_dir, node, lines):
    """The end of a node's geth log."""
    from .network import log_tail

    click.echo(log_tail(_load(network_dir), node, lines))


@main.command()
@click.option("--port", type=int, default=8545, show_default=True, help="RPC port on 127.0.0.1 (0: any free).")
@click.option("--block-time", type=float, default=None, help="Seconds between blocks (default: one per transaction).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default="deployment.json",
    show_default=True,
    help="Where to write the deployment file.",
)
def dev(port, block_time, out):
    """Run the embedded anvil chain in the foreground, with the contracts deployed.

    anvil's well-known development accounts hold the operator roles (0 admin, 1 poll admin,
    2 issuer, 3 relayer, 4 points admin). For one machine only: its keys are public.
    """
    from .anvil import Anvil
    from .contracts import deploy_with_dev_accounts
    from .rpc import make_web3

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    with Anvil(port=port or None, block_time=block_time) as anvil:
        deployment, _ = deploy_with_dev_accounts(make_web3(anvil.url))
        deployment.save(out)
        click.echo(f"anvil on {anvil.url} (chain {anvil.chain_id})")
        click.echo(f"PollBook {deployment.poll_book}, CityPoints {deployment.city_points}; wrote {out}")
        click.echo("Ctrl-C stops it")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            click.echo("stopping anvil")


if __name__ == "__main__":
    sys.exit(main())

"""`veche-relay`: run a Veche relay — for a partner of the city (a validator's operator, an NGO, a
university) who carries residents' ballots to the chain so that the city, which issues the
tokens, need not see them arrive (docs/operations.md, "Running a relay").

Settings are the API's (`VECHE_*`, core/config.py), of which a relay reads the database, the
node, the deployment file, its relayer keystore and password, the relay's tuning, the ballot rate
limit and the serving options.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli import serve_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """A Veche relay: takes ballots, signs receipts, posts them to PollBook. Holds no key of the city's."""


@main.command("init")
@click.option(
    "--keystore",
    type=click.Path(dir_okay=False, path_type=Path),
    default="keys/relayer.json",
    show_default=True,
    help="Where to write the relay's key (VECHE_RELAYER_KEYSTORE).",
)
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The keystore's password, first line (give the same as VECHE_KEYSTORE_PASSWORD).",
)
@click.option("--name", default="", help="Who runs the relay, as residents will see it.")
@click.option("--url", default="", help="The relay's public URL.")
def init(keystore: Path, password_file: Path, name: str, url: str) -> None:
    """Make the relay's key (an encrypted keystore, scrypt as geth's) and say what the city's
    administrator must do: register it on chain, which grants it RELAYER_ROLE."""
    from veche_node.keys import create_keystore

    if keystore.exists():
        click.echo(f"veche-relay: {keystore} exists already: not overwritten", err=True)
        sys.exit(1)
    password = password_file.read_text().splitlines()[0] if password_file.read_text() else ""
    if not password:
        click.echo("veche-relay: the password file is empty", err=True)
        sys.exit(2)
    account = create_keystore(keystore, password)
    click.echo(f"relay key: {account.address} (in {keystore})")
    click.echo("Ask the city's administrator to register it (this grants it RELAYER_ROLE and funds its gas):")
    shown_name, shown_url = name or "<who runs it>", url or "<its URL>"
    click.echo(f'  veche-node relay add {account.address} --name "{shown_name}" --url "{shown_url}"')
    click.echo("Then start it: veche-relay run (with VECHE_RELAYER_KEYSTORE and VECHE_KEYSTORE_PASSWORD set).")


@main.command("run")
@click.option("--host", help="Address to listen on (VECHE_HOST, default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on (VECHE_PORT, default 8000).")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes (VECHE_WORKERS, default 1).")
def run(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the relay with the API's production limits (server.py)."""
    serve_command("veche-relay", "veche_api.relay_app:create_relay_app", host=host, port=port, workers=workers)


if __name__ == "__main__":
    main()

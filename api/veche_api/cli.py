"""`veche-api`: run the city's API.

Every setting is read from the environment (`VECHE_*`, see core/config.py); the options below
override the serving ones.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from pydantic import ValidationError

from .core.config import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The city's Veche API: enrolment, token issuance, the ballot relay, points, results."""


@main.command("run")
@click.option("--host", help="Address to listen on (VECHE_HOST, default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on (VECHE_PORT, default 8000).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Worker processes (VECHE_WORKERS, default 1); one of them runs the relay.",
)
def run(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API with the production limits: header, body and idle timeouts, a connection
    cap, and the open-file limit raised (see server.py)."""
    serve_command("veche-api", "veche_api.main:create_app", host=host, port=port, workers=workers)


def serve_command(program: str, app: str, **options: Any) -> None:
    """`run` of `veche-api` and `veche-relay`: the settings from the environment with the given
    serving options over them (a bad one exits 2, naming it), then serve `app` (server.py)."""
    from .server import serve

    try:
        settings = Settings(**{k: v for k, v in options.items() if v is not None})
    except ValidationError as exc:
        click.echo(f"{program}: bad settings: {exc}", err=True)
        sys.exit(2)
    serve(settings, app=app)

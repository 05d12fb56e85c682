"""`python -m veche_api` runs the `veche-api` CLI."""

from .cli import main

main()

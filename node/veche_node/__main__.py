"""`python -m veche_node` runs the `veche-node` CLI."""

from .cli import main

main()

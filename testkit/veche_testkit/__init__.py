"""Veche's test driver: what the tests, the demo and the benchmarks stand on, kept apart from
the product (as electionguard_tools is from ElectionGuard).

- `devchain`: anvil with the contracts deployed by dev accounts, the API's test keystores and
  settings, and the databases a test runs on;
- `servers`: the API over real HTTP (in a thread, or as a process to SIGKILL) and a proxy that
  loses its answers on purpose;
- `city`: the synthetic city — every party of a poll played through the contracts with the real
  protocol cryptography, on anvil or on a geth network;
- `waiting`: `eventually`, the one wait with a deadline.

It may import every product package; no product package imports it.
"""

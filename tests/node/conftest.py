"""Fixtures for the node tests: real geth processes on 127.0.0.1, always stopped at the end.

Tests marked `geth` need go-ethereum v1.13.15 (`make geth`, which `make test` runs); without it
they fail, as they should: the validator network is part of what the suite proves. Every wait is
bounded (`eventually` fails after its timeout), and every network fixture stops all of its nodes
in a `finally`, whatever the test did.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from veche_node.network import (
    Network,
    block_number,
    get_block,
    init_network,
    node_pid,
    start_all,
    stop_all,
)
from veche_node.rpc import rpc
from veche_testkit.waiting import eventually


def running_network(root, *, validators: int, observers: int) -> Iterator[Network]:
    """A started network whose nodes are all peered and sealing; stopped afterwards."""
    net = init_network(root, validators=validators, observers=observers, light_kdf=True)
    try:
        start_all(net, timeout=60)
        expected_peers = len(net.nodes) - 1
        for spec in net.nodes:
            eventually(
                lambda spec=spec: int(rpc(spec.url, "net_peerCount"), 16) >= expected_peers,
                timeout=30,
                what=f"{spec.name} to peer with the other nodes",
            )
        # A node that starts after the first blocks were sealed fetches them in geth's sync
        # cycle (up to 10 s): wait until every node holds the same recent block.
        first = net.validators()[0].url
        eventually(lambda: block_number(first) >= 2, timeout=30, what="the first blocks")
        target = block_number(first)
        for spec in net.nodes:
            eventually(
                lambda spec=spec: (
                    block_number(spec.url) >= target
                    and get_block(spec.url, target)["hash"] == get_block(first, target)["hash"]
                ),
                timeout=40,
                what=f"{spec.name} to sync block {target}",
            )
        yield net
    finally:
        # Reload: a test may have added nodes (the manifest on disk lists them all).
        try:
            net = Network.load(net.root)
        finally:
            stop_all(net)
        leftovers = [name for name in net.names() if node_pid(net, name)]
        assert not leftovers, f"nodes still running after stop: {leftovers}"


@pytest.fixture(scope="module")
def network(tmp_path_factory) -> Iterator[Network]:
    """Three validators and an observer."""
    yield from running_network(tmp_path_factory.mktemp("clique") / "network", validators=3, observers=1)

"""Validators vote a fourth validator in (it starts sealing), then vote it out (it stops).

Driven through the `veche-node` CLI, as city IT would: add-node, start, propose, status.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import running_network
from eth_utils import to_checksum_address

from veche_node.cli import main
from veche_node.network import (
    Network,
    block_number,
    block_signer,
    signers,
)
from veche_node.rpc import rpc
from veche_testkit.waiting import eventually

pytestmark = [pytest.mark.geth, pytest.mark.slow]


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """Three validators, no observer (a network of its own: its signer set changes)."""
    yield from running_network(tmp_path_factory.mktemp("governance") / "network", validators=3, observers=0)


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def signers_at(url: str, number: int) -> list[str]:
    return [to_checksum_address(a) for a in rpc(url, "clique_getSigners", [hex(number)])]


def sealed_by(url: str, address: str, first: int, last: int) -> list[int]:
    return [n for n in range(first, last + 1) if block_signer(url, n) == address]


def test_validators_vote_a_fourth_in_and_out(network):
    root = str(network.root)
    url = network.node("validator-1").url

    # A new validator: its own key and node, peered with the others, not yet a signer.
    cli("add-node", "--dir", root, "--name", "validator-4", "--light-kdf")
    cli("start", "--dir", root, "validator-4")
    net = Network.load(root)
    newcomer = net.node("validator-4")
    assert newcomer.address not in signers(url)
    eventually(lambda: int(rpc(newcomer.url, "net_peerCount"), 16) >= 3, timeout=30, what="validator-4 to peer")

    # Voted in: more than half of the three signers vote for it.
    output = cli("propose", "add", newcomer.address, "--dir", root)
    assert output.count("voted") >= 3
    eventually(lambda: newcomer.address in signers(url), timeout=40, what="validator-4 to become a signer")
    added_at = block_number(url)
    eventually(
        lambda: sealed_by(url, newcomer.address, added_at + 1, block_number(url)),
        timeout=40,
        what="validator-4 to seal a block",
    )
    status = {n["name"]: n for n in json.loads(cli("status", "--dir", root, "--json"))["nodes"]}
    assert status["validator-4"]["signing"] is True and len(status["validator-1"]["signers"]) == 4
    for spec in net.validators():  # withdraw the satisfied proposal everywhere
        rpc(spec.url, "clique_discard", [newcomer.address])

    # Voted out: more than half of four (three votes) to remove it.
    cli("propose", "remove", newcomer.address, "--dir", root)
    eventually(lambda: newcomer.address not in signers(url), timeout=60, what="validator-4 to be removed")
    head = block_number(url)
    removed_at = next(n for n in range(added_at, head + 1) if newcomer.address not in signers_at(url, n))
    eventually(lambda: block_number(url) >= removed_at + 8, timeout=30, what="eight more blocks")
    assert sealed_by(url, newcomer.address, removed_at + 1, removed_at + 8) == []
    assert len(signers(url)) == 3
    # It still runs and follows the chain as a plain node.
    status = {n["name"]: n for n in json.loads(cli("status", "--dir", root, "--json"))["nodes"]}
    assert status["validator-4"]["running"] and status["validator-4"]["signing"] is False
    for spec in net.validators():
        rpc(spec.url, "clique_discard", [newcomer.address])

"""Three Clique validators and an observer, as real geth processes on 127.0.0.1.

- Sealing: each validator seals in turn; the observer follows the same chain.
- A poll end to end on the network (blind tokens, sealed ballots, a revote, key shares, the
  result), and the observer serves exactly the logs a validator serves.
- Fault: one validator stops during a ballot load; blocks keep coming, every mined ballot is on
  chain; restarted, it catches up to the same head.

The tests share one network (module fixture) and run in file order: the fault test restarts the
validator it stops, so the network is whole again after it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from eth_account import Account

from veche_core.dataset import dataset_hash
from veche_core.deployment import Deployment
from veche_node.cli import main
from veche_node.contracts import bind
from veche_node.network import (
    Network,
    block_number,
    block_signer,
    get_block,
    node_pid,
    start_node,
    stop_node,
)
from veche_node.rpc import make_web3, rpc
from veche_testkit.city import RESIDENTS, City
from veche_testkit.waiting import eventually

pytestmark = [pytest.mark.geth, pytest.mark.slow]


def same_block(url_a: str, url_b: str, number: int) -> bool:
    return get_block(url_a, number)["hash"] == get_block(url_b, number)["hash"]


def wait_synced(follower: str, leader: str, *, timeout: float = 40) -> int:
    """Wait until `follower` has the leader's current head block (same hash); returns its number."""
    target = block_number(leader)
    eventually(
        lambda: block_number(follower) >= target and same_block(follower, leader, target),
        timeout=timeout,
        what=f"{follower} to reach block {target} of {leader}",
    )
    return target


def raw_logs(url: str, address: str, from_block: int, to_block: int) -> list[dict]:
    return rpc(
        url,
        "eth_getLogs",
        [{"address": address, "fromBlock": hex(from_block), "toBlock": hex(to_block)}],
        timeout=30,
    )


@pytest.fixture(scope="module")
def deployment(network, tmp_path_factory) -> Deployment:
    """The contracts, deployed with `veche-node deploy` through a validator."""
    out = tmp_path_factory.mktemp("deploy") / "deployment.json"
    result = CliRunner().invoke(main, ["deploy", "--network", str(network.root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    deployment = Deployment.load(out)
    assert deployment.chain_id == network.chain_id
    return deployment


@pytest.fixture(scope="module")
def driver(network, deployment) -> City:
    """Sends through validator-1's RPC with the operators' keys from the keystores."""
    return City.on_network(network, deployment, network.node("validator-1").url)


def test_each_validator_seals_in_turn_and_the_observer_follows(network):
    validator = network.node("validator-1").url
    observer = network.node("observer-1").url
    start = block_number(validator)
    eventually(lambda: block_number(validator) >= start + 9, timeout=30, what="nine more blocks")
    sealers = [block_signer(validator, n) for n in range(start + 1, start + 10)]

    addresses = {spec.address for spec in network.validators()}
    assert set(sealers) == addresses, "every validator sealed some of nine consecutive blocks"
    # Clique with 3 signers: nobody may seal two blocks in a row (limit = floor(3/2) + 1).
    assert all(a != b for a, b in zip(sealers, sealers[1:])), sealers
    # In-turn blocks (difficulty 2) rotate through the sorted signer list. (Out-of-turn ones,
    # difficulty 1, happen when the in-turn signer is late: on a busy machine, often.)
    in_turn = [n for n in range(start + 1, start + 10) if int(get_block(validator, n)["difficulty"], 16) == 2]
    assert in_turn, "some blocks are sealed in turn"
    ordered = sorted(addresses, key=lambda a: int(a, 16))
    for n in in_turn:
        assert block_signer(validator, n) == ordered[n % len(ordered)]

    # The observer seals nothing but holds the same chain.
    assert network.node("observer-1").address is None
    height = wait_synced(observer, validator)
    assert block_signer(observer, height) == block_signer(validator, height)

    # `status --json` reports the same picture.
    result = CliRunner().invoke(main, ["status", "--dir", str(network.root), "--json"])
    assert result.exit_code == 0, result.output
    nodes = {n["name"]: n for n in json.loads(result.output)["nodes"]}
    for name, node in nodes.items():
        assert node["running"] and node["peers"] == 3 and node["error"] is None
        assert set(node["signers"]) == addresses
        assert node["lastBlockAge"] < 10
        assert node["signing"] is (True if name.startswith("validator") else None)


def test_a_poll_runs_end_to_end_and_the_observer_serves_the_same_logs(network, deployment, driver):
    validator = network.node("validator-2").url  # not the node the driver sends through
    observer = network.node("observer-1").url

    poll = driver.create_poll(duration=25, option_count=3, max_choices=1, strata=1)
    tokens = driver.issue_tokens(poll, [(r, 0) for r in RESIDENTS[:6]])
    choices = [0, 1, 1, 2, 1, 0]
    driver.cast(poll, [driver.ballot(poll, t, [c]) for t, c in zip(tokens, choices)])
    # The last resident changes their mind: only the later ballot counts.
    driver.cast(poll, [driver.ballot(poll, tokens[-1], [2], sequence=2)])

    driver.close(poll, timeout=60)
    driver.release_shares(poll)
    tally, rows = driver.publish(poll)
    assert tally == [1, 3, 2]

    # The result as any node stores it.
    poll_book = make_web3(observer).eth.contract(address=deployment.poll_book, abi=driver.poll_book.abi)
    wait_synced(observer, network.node("validator-1").url)
    published, counts, published_hash = poll_book.functions.result(poll.poll_id).call()
    assert published and list(counts) == tally and published_hash == dataset_hash(rows)

    # Every log of the deployment, byte for byte, from the observer and from a validator.
    head = wait_synced(observer, validator)
    from_observer = raw_logs(observer, deployment.poll_book, deployment.start_block, head)
    from_validator = raw_logs(validator, deployment.poll_book, deployment.start_block, head)
    assert from_observer == from_validator
    ballot_cast = driver.poll_book.events.BallotCast().topic
    assert len([log for log in from_observer if log["topics"][0] == ballot_cast]) == 7


def test_a_v2_poll_runs_end_to_end_with_the_trustees_key(network, driver):
    """Protocol v2 on the validator network: the trustees register their keys and run the
    ceremony through PollBook (every message in a block the validators sealed), ballots are
    sealed with HPKE to the certified key, and two of three trustees release their shares."""
    poll = driver.create_poll(version=2, opens_in=30, duration=25, option_count=3, strata=1)
    attempt, members, certified, key = driver.poll_book.functions.ceremony(poll.poll_id).call()
    assert certified and bytes(key) == poll.election_public_key and list(members) == [0, 1, 2]
    tokens = driver.issue_tokens(poll, [(r, 0) for r in RESIDENTS[6:10]])
    driver.cast(poll, [driver.ballot(poll, t, [c]) for t, c in zip(tokens, [2, 2, 0, 1])])
    driver.close(poll, timeout=60)
    driver.release_shares(poll, [0, 2])
    tally, _ = driver.publish(poll)
    assert tally == [1, 1, 2]


def test_the_verifier_gives_the_same_verdict_on_the_observer_and_a_validator(network, deployment, tmp_path):
    """`veche-verify all --json` against the observer's RPC equals the verdict against a validator's."""
    deployment_file = tmp_path / "deployment.json"
    deployment.save(deployment_file)
    head = wait_synced(network.node("observer-1").url, network.node("validator-1").url)

    def verdict(url: str) -> tuple[int, dict]:
        done = subprocess.run(
            [sys.executable, "-c", "from veche_verify.cli import main; main()",
             "--rpc", url, "--deployment", str(deployment_file), "--json", "all"],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert done.returncode != 2, f"could not verify: {done.stdout}{done.stderr}"
        return done.returncode, json.loads(done.stdout)

    from_observer = verdict(network.node("observer-1").url)
    from_validator = verdict(network.node("validator-1").url)
    # Each names the block it read up to and that block's hash: the same chain on both nodes.
    for (_, report), other in ((from_observer, "validator-1"), (from_validator, "observer-1")):
        source = report.pop("source")
        wait_synced(network.node(other).url, network.node("validator-1").url)
        assert get_block(network.node(other).url, source["toBlock"])["hash"] == source["toBlockHash"]
    assert from_observer == from_validator
    # The polls of the end-to-end tests (v1 and v2) were run by the protocol's rules: every check passes.
    assert from_observer[0] == 0, json.dumps(from_observer[1], indent=1)
    assert block_number(network.node("observer-1").url) >= head


def test_a_stopped_validator_does_not_stop_the_chain_and_catches_up(network, driver):
    sender = network.node("validator-1").url
    stopped = network.node("validator-2")
    others = {network.node("validator-1").address, network.node("validator-3").address}

    poll = driver.create_poll(duration=600)
    batches = [driver.random_ballots(poll, 40) for _ in range(10)]
    gas = 3_000_000  # 40 ballots use ~1.9 M; a fixed limit skips estimation during the fault

    hashes = []
    for i, batch in enumerate(batches):
        hashes.append(driver.send_cast(poll, batch, gas=gas))
        if i == 3:
            assert stop_node(network, stopped.name)
            stopped_at = block_number(sender)
        time.sleep(0.3)

    # Two of three signers keep sealing: blocks keep coming, none by the stopped validator.
    eventually(lambda: block_number(sender) >= stopped_at + 6, timeout=30, what="blocks after the stop")
    after = [block_signer(sender, n) for n in range(stopped_at + 2, stopped_at + 7)]
    assert set(after) <= others, after

    # Every batch was mined; every ballot a mined transaction emitted is on chain.
    receipts = [driver.w3.eth.wait_for_transaction_receipt(h, timeout=60) for h in hashes]
    assert all(r["status"] == 1 for r in receipts)
    acknowledged = {
        log["args"]["token"].lower()
        for receipt in receipts
        for log in driver.poll_book.events.BallotCast().process_receipt(receipt)
    }
    assert acknowledged == {b.token_address.lower() for batch in batches for b in batch}
    on_chain = set(driver.latest_ballots(poll, from_block=receipts[0]["blockNumber"]))
    assert on_chain == acknowledged

    # Restarted, the stopped validator catches up with the head and seals again.
    assert node_pid(network, stopped.name) is None
    start_node(network, stopped.name, timeout=60)
    wait_synced(stopped.url, sender, timeout=60)
    resumed = block_number(sender)
    eventually(
        lambda: any(block_signer(sender, n) == stopped.address for n in range(resumed + 1, block_number(sender) + 1)),
        timeout=30,
        what=f"{stopped.name} to seal a block again",
    )


def test_a_partners_relay_is_registered_listed_and_removed_with_veche_node(network, deployment, tmp_path):
    """The city's side of a partner's relay, as city IT runs it: `veche-node relay add` funds the
    partner's key and registers it (RELAYER_ROLE, name, URL), `relay list` shows it, `relay
    remove` revokes it; the chain keeps its span of holding the role (check 11)."""
    deployment_file = tmp_path / "deployment.json"
    deployment.save(deployment_file)
    common = ["--dir", str(network.root), "--deployment", str(deployment_file)]
    partner = Account.create().address
    runner = CliRunner()

    added = runner.invoke(
        main, ["relay", "add", partner, "--name", "Memorial", "--url", "https://relay.memo.example", *common]
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(main, ["relay", "list", "--json", *common])
    assert listed.exit_code == 0, listed.output
    assert {"address": partner, "name": "Memorial", "url": "https://relay.memo.example", "active": True} in json.loads(
        listed.output
    )
    web3 = make_web3(network.node("validator-1").url)
    assert web3.eth.get_balance(partner) > 0  # funded for the gas of its batches
    removed = runner.invoke(main, ["relay", "remove", partner, *common])
    assert removed.exit_code == 0, removed.output
    listed = json.loads(runner.invoke(main, ["relay", "list", "--json", *common]).output)
    assert next(r for r in listed if r["address"] == partner)["active"] is False
    assert runner.invoke(main, ["relay", "add", "0x12", "--name", "x", "--url", "y", *common]).exit_code != 0


def test_rotate_role_moves_the_relayer_role_to_a_new_key(network, deployment, tmp_path):
    """Runs last: afterwards the driver's relayer key no longer holds the role."""
    deployment_file = tmp_path / "deployment.json"
    deployment.save(deployment_file)
    root = str(network.root)
    old = Network.load(root).operators["relayer"]

    result = CliRunner().invoke(main, ["rotate-role", "relayer", "--dir", root, "--deployment", str(deployment_file)])
    assert result.exit_code == 0, result.output

    net = Network.load(root)
    new = net.operators["relayer"]
    assert new != old and new in result.output
    assert net.operator_account("relayer").address == new  # the new keystore decrypts
    assert list((network.root / "keystore" / "retired").glob(f"relayer-{old}-*.json"))
    poll_book, _ = bind(make_web3(network.node("observer-1").url), deployment)
    role = poll_book.functions.RELAYER_ROLE().call()
    wait_synced(network.node("observer-1").url, network.node("validator-1").url)
    assert poll_book.functions.hasRole(role, new).call()
    assert not poll_book.functions.hasRole(role, old).call()

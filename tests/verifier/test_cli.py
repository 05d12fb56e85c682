"""`veche-verify` as an observer runs it: receipts, datasets, points, JSON and exit codes."""

from __future__ import annotations

import os
import re
import subprocess
import time
from importlib.metadata import version

from eth_account import Account

from veche_core import dataset as dataset_format
from veche_core._keccak import keccak
from veche_core.deployment import Deployment
from veche_core.receipt import sign_receipt
from veche_core.rpc import RpcClient
from veche_testkit.city import City
from veche_verify.chain import balances, read_snapshot

from .conftest import RESIDENTS, VERIFY, Forged, close_and_publish, deploy_forge, run_cli, verify


def _receipt(city, poll, ballot, key=None, address=None):
    relayer = city.relayer.account
    return sign_receipt(
        key or relayer.key,
        address or relayer.address,
        city.deployment.chain_id,
        city.deployment.poll_book,
        poll.poll_id,
        ballot.token_address,
        ballot.sequence,
        ballot.hash,
        int(time.time()),
    )


def test_poll_command_exit_codes_and_json(anvil, city, new_poll, tmp_path):
    poll = new_poll(voters=3)
    city.cast(poll, [city.ballot(poll, key, [1]) for key in poll.tokens])

    code, report = run_cli(anvil.url, city.deployment, "poll", str(poll.poll_id), tmp_path=tmp_path)
    assert code == 1, "an open poll cannot be verified yet: fail closed, never exit 0"
    assert report["verdict"] == "FAIL"
    assert {c["number"] for c in report["checks"] if not c["passed"]} == {7, 8, 9, 10}

    close_and_publish(city, poll)
    code, report = run_cli(anvil.url, city.deployment, "poll", str(poll.poll_id), tmp_path=tmp_path)
    assert code == 0, report
    assert report["verdict"] == "PASS"
    assert report["tally"]["recomputed"] == report["tally"]["published"] == [0, 3, 0]
    assert [c["number"] for c in report["checks"]] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]

    # What was read, for anyone to repeat and compare: the chain, the contracts, the last block
    # read and its hash, and the verifier's version.
    source = report["source"]
    with RpcClient(anvil.url) as rpc:
        block = rpc.call("eth_getBlockByNumber", [hex(source["toBlock"]), False])
        assert source["toBlock"] <= rpc.block_number()
    assert source == {
        "chainId": city.deployment.chain_id,
        "pollBook": city.deployment.poll_book,
        "cityPoints": city.deployment.city_points,
        "fromBlock": city.deployment.start_block,
        "toBlock": source["toBlock"],
        "toBlockHash": block["hash"],
        "verifier": version("veche-verifier"),
    }


def test_version_and_the_source_line_of_the_readable_report(anvil, city, new_poll, tmp_path):
    shown = subprocess.run([str(VERIFY), "--version"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and shown.stdout.strip() == f"veche-verify, version {version('veche-verifier')}"

    poll = new_poll(voters=1)
    city.cast(poll, [city.ballot(poll, key, [0]) for key in poll.tokens])
    close_and_publish(city, poll)
    path = tmp_path / "deployment.json"
    city.deployment.save(path)
    run = subprocess.run(
        [str(VERIFY), "--rpc", anvil.url, "--deployment", str(path), "poll", str(poll.poll_id)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    last = run.stdout.strip().splitlines()[-1]
    assert (
        last.startswith(f"Read blocks {city.deployment.start_block}–")
        and f"of chain {city.deployment.chain_id}" in last
    )
    assert re.search(r"\(block \d+ is 0x[0-9a-f]{64}\); veche-verify ", last), last


def test_check_11_receipts(anvil, city, new_poll, tmp_path):
    poll = new_poll(voters=3)
    first = city.ballot(poll, poll.tokens[0], [0])
    counted = city.ballot(poll, poll.tokens[1], [1])
    city.cast(poll, [first, counted])
    revote = city.ballot(poll, poll.tokens[0], [2])
    city.cast(poll, [revote])
    dropped = city.ballot(poll, poll.tokens[2], [0])  # acknowledged, never sent
    close_and_publish(city, poll)

    def check(receipt):
        path = tmp_path / "receipt.json"
        path.write_text(receipt.to_json())
        return run_cli(anvil.url, city.deployment, "receipt", str(path), tmp_path=tmp_path)

    code, report = check(_receipt(city, poll, counted))
    assert code == 0 and "counted" in report["checks"][0]["detail"]
    code, report = check(_receipt(city, poll, first))
    assert code == 0 and "superseded by sequence 2" in report["checks"][0]["detail"]

    code, report = check(_receipt(city, poll, dropped))
    assert code == 1 and report["checks"][0]["number"] == 11
    assert "the relay dropped it" in report["checks"][0]["detail"]

    stranger = Account.create()
    code, report = check(_receipt(city, poll, counted, key=stranger.key, address=stranger.address))
    assert code == 1 and "does not hold the relayer role" in report["checks"][0]["detail"]

    tampered = _receipt(city, poll, counted)
    tampered = type(tampered).from_dict({**tampered.to_dict(), "acceptedAt": tampered.accepted_at + 1})
    code, report = check(tampered)
    assert code == 1 and "not by the relayer" in report["checks"][0]["detail"]


def test_dataset_command_reads_csv_and_json(anvil, city, new_poll, tmp_path):
    poll = new_poll(voters=4)
    city.cast(poll, [city.ballot(poll, key, [i % 3]) for i, key in enumerate(poll.tokens)])
    close_and_publish(city, poll)
    rows = verify(city, poll.poll_id).counted_rows
    csv_file, json_file = tmp_path / "d.csv", tmp_path / "d.json"
    csv_file.write_bytes(dataset_format.canonical_csv(rows))
    json_file.write_text(dataset_format.to_json(poll.poll_id, rows))

    for path in (csv_file, json_file):
        code, report = run_cli(anvil.url, city.deployment, "dataset", str(poll.poll_id), str(path), tmp_path=tmp_path)
        assert code == 0, report

    csv_file.write_bytes(dataset_format.canonical_csv(rows[1:]))
    code, report = run_cli(anvil.url, city.deployment, "dataset", str(poll.poll_id), str(csv_file), tmp_path=tmp_path)
    assert code == 1 and report["checks"][0]["number"] == 10


def test_poll_writes_the_dataset_it_recomputed(anvil, city, new_poll, tmp_path):
    """The written file is the dataset the chain commits to: its keccak256 is the on-chain hash,
    and the dataset command accepts it."""
    poll = new_poll(voters=3)
    city.cast(poll, [city.ballot(poll, key, [i % 3]) for i, key in enumerate(poll.tokens)])
    written = tmp_path / "recomputed.csv"
    code, report = run_cli(
        anvil.url, city.deployment, "poll", str(poll.poll_id), "--write-dataset", str(written), tmp_path=tmp_path
    )
    assert code == 1 and not written.exists(), "before close nothing is decrypted: no file"

    close_and_publish(city, poll)
    code, report = run_cli(
        anvil.url, city.deployment, "poll", str(poll.poll_id), "--write-dataset", str(written), tmp_path=tmp_path
    )
    assert code == 0, report
    with RpcClient(anvil.url) as rpc:
        [published] = read_snapshot(rpc, city.deployment, poll.poll_id).polls[poll.poll_id].results
    assert keccak(written.read_bytes()) == published["datasetHash"]
    assert {row.token for row in dataset_format.parse(written.read_text())} == {k.address.lower() for k in poll.tokens}
    code, report = run_cli(anvil.url, city.deployment, "dataset", str(poll.poll_id), str(written), tmp_path=tmp_path)
    assert code == 0, report


def test_points_command(anvil, issuer_keys, tmp_path):
    city = City.deploy_on_dev_chain(anvil.url)  # its own deployment: only this test's polls
    poll = city.create_poll(issuer_keys=issuer_keys, strata=2)
    city.issue_tokens(poll, [(r, 0) for r in RESIDENTS[:3]])
    code, report = run_cli(anvil.url, city.deployment, "points", tmp_path=tmp_path)
    assert code == 0, report
    assert report["checks"][0]["counts"] == {"polls": 1, "residents": 3}

    # A points contract that credits a resident with no token (forged: CityPoints cannot).
    forged = Forged(city, deploy_forge(city), poll)
    forged.credit([RESIDENTS[10]], poll.points)
    code, report = run_cli(anvil.url, forged.deployment, "points", tmp_path=tmp_path)
    assert code == 1 and report["checks"][0]["number"] == 12
    assert report["checks"][0]["failures"] == [
        f"poll {poll.poll_id}: credited 80 points; 3 tokens × 20 = 60",
        f"poll {poll.poll_id}: {RESIDENTS[10]} credited without an issuance",
    ]


def test_balances_are_read_at_the_block_the_events_were_read_up_to(anvil, issuer_keys):
    """A credit mined after the verifier read the events must not read as a mismatch."""
    city = City.deploy_on_dev_chain(anvil.url)
    poll = city.create_poll(issuer_keys=issuer_keys, strata=1)
    city.issue_tokens(poll, [(RESIDENTS[0], 0)])
    residents = RESIDENTS[:2]
    with RpcClient(anvil.url) as rpc:
        read_at = rpc.block_number()
        city.issue_tokens(poll, [(RESIDENTS[1], 0)])  # credits RESIDENTS[1]
        assert balances(rpc, city.deployment.city_points, residents, read_at) == {
            RESIDENTS[0]: poll.points,
            RESIDENTS[1]: 0,
        }
        assert balances(rpc, city.deployment.city_points, residents, rpc.block_number()) == dict.fromkeys(
            residents, poll.points
        )


def test_could_not_verify_exits_2(anvil, city, tmp_path):
    code, output = run_cli("http://127.0.0.1:9", city.deployment, "all", tmp_path=tmp_path)
    assert code == 2 and "could not verify" in output

    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    proc = subprocess.run(
        [str(VERIFY), "--rpc", anvil.url, "--deployment", str(bad), "all"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "deployment file" in proc.stderr

    proc = subprocess.run([str(VERIFY), "--rpc", anvil.url, "poll", "1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2  # no deployment given: a usage error


def test_a_deployment_with_no_polls_does_not_pass(anvil, city, tmp_path):
    empty = Deployment(city.deployment.chain_id, city.deployment.poll_book, city.deployment.city_points, 10**9)
    code, report = run_cli(anvil.url, empty, "all", tmp_path=tmp_path)
    assert code == 1 and report["polls"] == []

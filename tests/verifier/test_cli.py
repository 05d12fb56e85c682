"""`veche-verify` as an observer runs it: receipts, datasets, points, JSON and exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import replace
from importlib.metadata import version

from eth_account import Account

from veche_core import dataset as dataset_format
from veche_core._keccak import keccak
from veche_core.deployment import Deployment
from veche_core.metadata import poll_metadata
from veche_core.receipt import sign_receipt
from veche_core.rpc import RpcClient
from veche_testkit.city import City
from veche_verify.chain import balances, read_snapshot
from veche_verify.checks import check_points

from .conftest import RESIDENTS, VERIFY, Forged, close_and_publish, deploy_forge, run_cli, verify
from .test_checks import spoiled_ballot


def _receipt(city, poll, ballot, key=None, address=None, accepted_at=None):
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
        int(time.time()) if accepted_at is None else accepted_at,
    )


def test_poll_command_exit_codes_and_json(anvil, city, new_poll, tmp_path):
    poll = new_poll(voters=3)
    city.cast(poll, [city.ballot(poll, key, [1]) for key in poll.tokens])

    def not_yet(report) -> set[int]:
        return {c["number"] for c in report["checks"] if c["result"] == "NOT_YET"}

    # Open: what can be checked passes, the rest is not yet (exit 3), never a failure.
    code, report = run_cli(anvil.url, city.deployment, "poll", str(poll.poll_id), tmp_path=tmp_path)
    assert code == 3 and report["verdict"] == "NOT_YET", report
    assert not_yet(report) == {7, 8, 9, 10} and all(
        c["passed"] for c in report["checks"] if c["number"] not in {7, 8, 9, 10}
    )
    assert report["reason"].startswith("the poll is open until ")

    # Closed, but the trustees have posted 1 of 2 shares: not yet.
    city.advance_to(poll.closes_at)
    city.release_shares(poll, [0])
    code, report = run_cli(anvil.url, city.deployment, "poll", str(poll.poll_id), tmp_path=tmp_path)
    assert code == 3 and not_yet(report) == {7, 8, 9, 10}
    assert report["reason"] == "the trustees have not released the key: 1 of 2 key shares are on chain"

    # The key is released, the result not yet published: counted, and 9 and 10 are not yet.
    city.release_shares(poll, [1])
    code, report = run_cli(anvil.url, city.deployment, "poll", str(poll.poll_id), tmp_path=tmp_path)
    assert code == 3 and not_yet(report) == {9, 10} and report["tally"]["recomputed"] == [0, 3, 0]

    city.publish(poll)
    code, report = run_cli(anvil.url, city.deployment, "poll", str(poll.poll_id), tmp_path=tmp_path)
    assert code == 0, report
    assert report["verdict"] == "PASS" and report["reason"] is None
    assert report["tally"]["recomputed"] == report["tally"]["published"] == [0, 3, 0]
    assert [c["number"] for c in report["checks"]] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]
    assert report["names"]["status"] == "not_checked"

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
    assert code == 1 and "never held the relayer role" in report["checks"][0]["detail"]

    tampered = _receipt(city, poll, counted)
    tampered = type(tampered).from_dict({**tampered.to_dict(), "acceptedAt": tampered.accepted_at + 1})
    code, report = check(tampered)
    assert code == 1 and "not by the relayer" in report["checks"][0]["detail"]


def test_a_poll_voted_through_two_relays_counts_per_relay_and_each_receipt_passes(anvil, city, new_poll, tmp_path):
    """Two relays of PollBook's RELAYER_ROLE, one ballot carried by both (a client that retried
    elsewhere): it counts once, the report counts ballots per relay and lists the one carried
    twice, and the receipt each relay signed passes check 11, naming the relay on chain."""
    poll = new_poll(voters=3)
    second = city.add_relay("University", "https://vote.uni.example")
    retried = city.ballot(poll, poll.tokens[0], [0])
    city.cast(poll, [retried, city.ballot(poll, poll.tokens[1], [1])])
    city.cast(poll, [retried, city.ballot(poll, poll.tokens[2], [2])], relayer=second)
    close_and_publish(city, poll)

    code, report = run_cli(anvil.url, city.deployment, "poll", str(poll.poll_id), tmp_path=tmp_path)

    assert code == 0 and report["verdict"] == "PASS", report
    assert report["tally"]["recomputed"] == [1, 1, 1]
    assert sorted((r["relay"], r["name"], r["counted"]) for r in report["countedByRelay"]) == sorted(
        [(city.relayer.address, None, 2), (second.address, "University", 1)]
    )
    [carried] = report["carriedByMoreThanOneRelay"]
    assert carried["token"] == retried.token_address and carried["relays"] == [city.relayer.address, second.address]
    path = tmp_path / "receipt.json"
    for relay in (city.relayer, second):
        path.write_text(_receipt(city, poll, retried, key=relay.account.key, address=relay.address).to_json())
        code, report = run_cli(anvil.url, city.deployment, "receipt", str(path), tmp_path=tmp_path)
        assert code == 0, report
        detail = report["checks"][0]["detail"]
        assert f"(carried by relay {relay.address}) and counted" in detail
        assert detail.startswith("signed by " + ("University (" if relay is second else "") + relay.address)


def test_check_11_asks_whether_the_relay_held_its_role_when_it_signed(anvil, city, new_poll, tmp_path):
    """A relay answers for what it acknowledged while it held RELAYER_ROLE (the receipt's
    acceptedAt against the times of the blocks that granted and revoked it): removed since, its
    receipt of a dropped ballot still proves the drop; one it signed after, or before it was
    granted, is no relay's promise."""
    poll = new_poll(voters=1)
    partner = city.add_relay("Partner", "https://relay.partner.example")
    granted = city.w3.eth.get_block("latest")["timestamp"]
    role = city.poll_book.functions.RELAYER_ROLE().call()
    city.advance_to(granted + 100)
    city.admin.transact(city.poll_book.functions.revokeRole(role, partner.address))
    revoked = city.w3.eth.get_block("latest")["timestamp"]
    dropped = city.ballot(poll, poll.tokens[0], [0])  # acknowledged by the partner, never sent
    path = tmp_path / "receipt.json"

    def check(accepted_at):
        receipt = _receipt(
            city, poll, dropped, key=partner.account.key, address=partner.address, accepted_at=accepted_at
        )
        path.write_text(receipt.to_json())
        code, report = run_cli(anvil.url, city.deployment, "receipt", str(path), tmp_path=tmp_path)
        assert code == 1 and report["checks"][0]["number"] == 11
        return report["checks"][0]["failures"]

    assert check(granted + 50) == [
        "the receipt's ballot never reached the chain and was not superseded: the relay dropped it"
    ]
    for outside in (granted - 1, revoked):
        [role_failure, _] = check(outside)
        assert role_failure.startswith(f"Partner ({partner.address}) did not hold the relayer role at ")


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
    assert code == 3 and not written.exists(), "before close nothing is decrypted: no file"

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

    # A points contract that credits a resident with no token (forged: CityPoints cannot). The
    # CLI refuses a forge as a deployment (not a CityPoints: could not verify), so the points
    # audit runs here on what the CLI would read.
    forged = Forged(city, deploy_forge(city), poll)
    forged.credit([RESIDENTS[10]], poll.points)
    code, _ = run_cli(anvil.url, forged.deployment, "points", tmp_path=tmp_path)
    assert code == 2
    with RpcClient(anvil.url) as rpc:
        snapshot = read_snapshot(rpc, forged.deployment)
        on_chain = balances(rpc, forged.deployment.city_points, sorted(snapshot.balances_by_events), snapshot.head)
    result = check_points(snapshot, on_chain).to_dict()
    assert not result["passed"] and result["number"] == 12
    assert result["failures"] == [
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
    assert code == 2 and output["verdict"] == "CANNOT_VERIFY" and "127.0.0.1:9" in output["error"]

    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    proc = subprocess.run(
        [str(VERIFY), "--rpc", anvil.url, "--deployment", str(bad), "all"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "deployment file" in proc.stderr

    proc = subprocess.run([str(VERIFY), "--rpc", anvil.url, "poll", "1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2  # no deployment given: a usage error


def test_setup_mistakes_could_not_verify_never_fail(anvil, city, new_poll, forge, tmp_path):
    """A poll that does not exist, a deployment file for another chain, a PollBook address with
    no code, or with another contract's code: exit 2 and the reason, never a failed check."""
    new_poll(voters=1)
    code, report = run_cli(anvil.url, city.deployment, "poll", "99999", tmp_path=tmp_path)
    assert code == 2 and report["verdict"] == "CANNOT_VERIFY" and report["checks"] == []
    assert report["reason"].startswith("no poll 99999 on PollBook ")

    d = city.deployment
    wrong = {
        "chain": (replace(d, chain_id=d.chain_id + 1), f"the node serves chain {d.chain_id}"),
        "an account": (replace(d, poll_book=RESIDENTS[0]), f"no contract at the PollBook address {RESIDENTS[0]}"),
        "CityPoints": (replace(d, poll_book=d.city_points), "its EIP-712 domain is 'Veche CityPoints'"),
        "another contract": (replace(d, poll_book=forge.address), f"{forge.address} is not a Veche PollBook"),
    }
    for what, (deployment, reason) in wrong.items():
        for command in (["poll", "1"], ["all"]):
            code, report = run_cli(anvil.url, deployment, *command, tmp_path=tmp_path)
            assert code == 2 and report["verdict"] == "CANNOT_VERIFY", (what, report)
            assert reason in report["error"], (what, report["error"])


def test_a_deployment_with_no_polls_verifies_nothing(anvil, city, tmp_path):
    empty = Deployment(city.deployment.chain_id, city.deployment.poll_book, city.deployment.city_points, 10**9)
    code, report = run_cli(anvil.url, empty, "all", tmp_path=tmp_path)
    assert code == 2 and report["polls"] == [] and report["verdict"] == "CANNOT_VERIFY"


def test_all_passes_when_every_finished_poll_passes_and_lists_the_others(anvil, issuer_keys, tmp_path):
    city = City.deploy_on_dev_chain(anvil.url)  # its own deployment: only this test's polls
    finished = city.create_poll(issuer_keys=issuer_keys, strata=1)
    city.issue_tokens(finished, [(RESIDENTS[0], 0)])
    city.cast(finished, [city.ballot(finished, key, [0]) for key in finished.tokens])
    open_one = city.create_poll(issuer_keys=issuer_keys, strata=1, duration=7200)
    code, report = run_cli(anvil.url, city.deployment, "all", tmp_path=tmp_path)
    assert code == 3 and report["verdict"] == "NOT_YET", "nothing finished yet: nothing passed"

    close_and_publish(city, finished)
    code, report = run_cli(anvil.url, city.deployment, "all", tmp_path=tmp_path)
    assert code == 0 and report["verdict"] == "PASS", report
    assert report["notYet"] == [open_one.poll_id]
    assert {p["pollId"]: p["verdict"] for p in report["polls"]} == {
        finished.poll_id: "PASS",
        open_one.poll_id: "NOT_YET",
    }


def test_spoiled_ballots_do_not_fail_the_poll(anvil, city, new_poll, tmp_path):
    """Residents cast a blank ciphertext and 50 random bytes with valid tokens: listed as
    spoiled with their tokens, not counted, and the poll passes (exit 0)."""
    poll = new_poll(voters=4)
    blank, noise = poll.tokens[2:]
    city.cast(
        poll,
        [city.ballot(poll, key, [0]) for key in poll.tokens[:2]]
        + [spoiled_ballot(city, poll, blank, b""), spoiled_ballot(city, poll, noise, os.urandom(50))],
    )
    close_and_publish(city, poll)

    code, report = run_cli(anvil.url, city.deployment, "poll", str(poll.poll_id), tmp_path=tmp_path)

    assert code == 0 and report["verdict"] == "PASS", report
    assert {s["token"] for s in report["spoiled"]} == {blank.address, noise.address} and report["spoiledCount"] == 2
    assert report["tally"]["recomputed"] == report["tally"]["published"] == [2, 0, 0]


def test_options_after_the_command_and_help_without_a_deployment(anvil, city, new_poll, tmp_path):
    poll = new_poll(voters=1)
    city.cast(poll, [city.ballot(poll, key, [0]) for key in poll.tokens])
    close_and_publish(city, poll)
    path = tmp_path / "deployment.json"
    city.deployment.save(path)

    def run(*args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("VECHE_DEPLOYMENT", "VECHE_RPC_URL")}
        return subprocess.run([str(VERIFY), *args], capture_output=True, text=True, timeout=120, env=env)

    after = run("poll", str(poll.poll_id), "--json", "--rpc", anvil.url, "--deployment", str(path))
    assert after.returncode == 0 and json.loads(after.stdout)["verdict"] == "PASS", after.stdout + after.stderr
    mixed = run("--rpc", "http://127.0.0.1:9", "poll", str(poll.poll_id), "--rpc", anvil.url, "--deployment", str(path))
    assert mixed.returncode == 0, "the option after the command wins"

    for args in (["poll", "--help"], ["--help"], ["all", "-h"]):
        shown = run(*args)
        assert shown.returncode == 0 and "Usage: veche-verify" in shown.stdout and "--json" in shown.stdout, args

    usage = run("poll", "--json", "--no-such-option")
    assert usage.returncode == 2 and "--no-such-option" in json.loads(usage.stdout)["error"]
    missing = run("poll", "1", "--json")
    assert missing.returncode == 2 and json.loads(missing.stdout) == {
        "verdict": "CANNOT_VERIFY",
        "error": "give --deployment FILE, or --poll-book and --city-points",
    }


def test_names_from_a_metadata_file_are_checked_against_the_metadata_hash(anvil, city, issuer_keys, tmp_path):
    audience = {"districts": ["Центральный", "Северный"], "minAge": None, "maxAge": None}
    texts = {"question": "Где поставить скамейки?", "options": ["У пруда", "Во дворе", "Нигде"], "audience": audience}
    poll = city.create_poll(issuer_keys=issuer_keys, strata=2, metadata=poll_metadata(**texts))
    city.issue_tokens(poll, [(r, i % 2) for i, r in enumerate(RESIDENTS[:2])])
    city.cast(poll, [city.ballot(poll, key, [1]) for key in poll.tokens])
    close_and_publish(city, poll)
    d = city.deployment
    served = {
        "id": poll.poll_id,
        **texts,
        "strata": audience["districts"],
        "chainId": d.chain_id,
        "pollBook": d.poll_book,
    }
    file = tmp_path / "polls.json"

    def verify_with(metadata) -> tuple[int, dict]:
        file.write_text(json.dumps(metadata, ensure_ascii=False))
        return run_cli(anvil.url, d, "poll", str(poll.poll_id), "--metadata", str(file), tmp_path=tmp_path)

    code, report = verify_with([served])
    assert code == 0 and report["names"]["status"] == "checked", report["names"]
    assert report["names"]["options"][1] == {"number": 2, "index": 1, "text": "Во дворе"}
    assert [s["name"] for s in report["names"]["strata"]] == audience["districts"] and report["names"][
        "strataCommitted"
    ]

    code, report = verify_with({**served, "options": ["У пруда", "Во дворе", "Везде"]})
    assert code == 1 and report["verdict"] == "FAIL" and report["names"]["status"] == "mismatch"
    assert all(c["passed"] for c in report["checks"]), "the mismatch is its own finding, not a check"

    code, report = verify_with({**served, "pollBook": RESIDENTS[0], "options": ["?"]})
    assert code == 0 and report["names"]["status"] == "not_checked", "another deployment's texts: a setup mistake"

    # Metadata v2 commits which districts form each stratum (merged small districts): the names
    # are the committed districts joined (not the name served), and another grouping is a mismatch.
    citywide = {**texts, "audience": {"districts": None, "minAge": None, "maxAge": None}}
    grouped = [["Центральный", "Северный"], ["Южный"]]
    v2 = city.create_poll(issuer_keys=issuer_keys, strata=2, metadata=poll_metadata(**citywide, strata=grouped))

    def served_v2(groups) -> dict:
        strata = [{"name": "?", "districts": g, "registerSize": 10} for g in groups]
        return {"id": v2.poll_id, **citywide, "strata": strata, "chainId": d.chain_id, "pollBook": d.poll_book}

    for groups, status in ((grouped, "checked"), ([["Центральный"], ["Северный", "Южный"]], "mismatch")):
        file.write_text(json.dumps(served_v2(groups), ensure_ascii=False))
        _, report = run_cli(anvil.url, d, "poll", str(v2.poll_id), "--metadata", str(file), tmp_path=tmp_path)
        assert report["names"]["status"] == status, report["names"]
    file.write_text(json.dumps(served_v2(grouped), ensure_ascii=False))
    _, report = run_cli(anvil.url, d, "poll", str(v2.poll_id), "--metadata", str(file), tmp_path=tmp_path)
    assert report["names"]["strataCommitted"] is True
    assert [s["name"] for s in report["names"]["strata"]] == ["Центральный + Северный", "Южный"]

    file.write_text(json.dumps(served, ensure_ascii=False))
    text = subprocess.run(
        [str(VERIFY), "--rpc", anvil.url, "--deployment", str(tmp_path / "deployment.json"), "poll", str(poll.poll_id)]
        + ["--metadata", str(file)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    assert f"Poll {poll.poll_id}: Где поставить скамейки?" in text and "2. Во дворе" in text and "Северный" in text

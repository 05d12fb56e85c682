"""The `veche` command line, driven as a resident and trustees would, against a real API on anvil
(on each database): create keys, vote, revote, check the receipt, redeem, donate, and release key
shares (refused before close). The poll is then published and the observer's verifier agrees
with it. Then through a proxy that loses answers: a lost 201, a lost 202, the CLI killed while
its token request or ballot waits for an answer, and a wallet whose sequence is behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from veche_core import events, sealing
from veche_core.rpc import RpcClient
from veche_testkit.devchain import ADMIN_KEY, DATABASES, database_url, start_chain
from veche_testkit.servers import LossyProxy, ThreadServer, remove_relay, start_partner_relay
from veche_testkit.waiting import eventually

BIN = Path(sys.executable).parent
ADMIN = {"X-Admin-Key": ADMIN_KEY}


class Person:
    """One wallet directory, and the `veche` command run with it."""

    def __init__(self, api_url: str, home: Path) -> None:
        self.api_url, self.home = api_url, home

    def command(self, *args: str) -> tuple[list[str], dict[str, str]]:
        env = {**os.environ, "VECHE_PASSWORD": "correct horse", "VECHE_KEYSTORE_SCRYPT_N": "1024", "COLUMNS": "200"}
        return [str(BIN / "veche"), "--api", self.api_url, "--home", str(self.home), *args], env

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        command, env = self.command(*args)
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        if ok:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def killed_while_waiting(self, proxy: LossyProxy, path: str, status: int, *args: str) -> None:
        """Run the command with the proxy holding the answer to its next POST `path`; SIGKILL it
        once the API has answered (and the answer is held)."""
        proxy.lose("POST", path, how="hold")
        held = len([e for e in proxy.seen("POST", path) if e.fate == "held"])
        command, env = self.command(*args)
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            proxy.wait_for(
                lambda seen: (
                    len([e for e in seen if e.path == path and e.fate == "held" and e.status == status]) > held
                ),
                timeout=60,
            )
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(10)

    def create_key(self) -> str:
        return re.search(r"0x[0-9a-fA-F]{40}", self.run("key", "create").stdout).group(0)


@pytest.fixture(scope="module", params=DATABASES)
def city(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("client")
    chain = start_chain(workdir, database_url(request.param, workdir))
    server = ThreadServer(chain.settings()).start()
    try:
        yield chain, server, httpx.Client(base_url=server.url, timeout=120)
    finally:
        server.stop()
        chain.anvil.stop()


def test_a_resident_and_trustees_through_the_cli(city, tmp_path):
    chain, server, http = city
    alice = Person(server.url, tmp_path / "alice")
    address = alice.create_key()
    assert alice.run("key", "show").stdout.strip().lower() == address.lower()
    trustees = [Person(server.url, tmp_path / f"trustee{i}") for i in range(3)]
    trustee_keys = []
    for trustee in trustees:
        trustee_address = trustee.create_key()
        public_key = re.search(r"Trustee public key: (0x[0-9a-f]{64})", trustee.run("trustee", "key").stdout).group(1)
        trustee_keys.append({"address": trustee_address, "publicKey": public_key})

    assert (
        http.post(
            "/admin/residents", headers=ADMIN, json={"address": address, "district": "Central", "birthYear": 1985}
        ).status_code
        == 201
    )
    now = chain.now()
    created = http.post(
        "/admin/polls",
        headers=ADMIN,
        json={
            "question": "Where should the new library go?",
            "options": ["Park", "Station", "School"],
            "opensAt": now,
            "closesAt": now + 3600,
            "points": 20,
            "trustees": trustee_keys,
            "threshold": 2,
            "keyCeremony": False,  # protocol v1: the API deals the key
        },
    ).json()
    poll_id, sealed = created["poll"]["id"], created["sealedShares"]
    assert (
        http.post("/admin/rewards", headers=ADMIN, json={"name": "Museum ticket", "price": 10, "stock": 5}).status_code
        == 201
    )
    assert (
        http.post(
            "/admin/charities", headers=ADMIN, json={"name": "City shelter", "account": trustee_keys[0]["address"]}
        ).status_code
        == 201
    )

    listing = alice.run("polls").stdout
    assert "Where should the new library go?" in listing and "2. Station" in listing

    assert "Options of poll" in alice.run("vote", str(poll_id), "4", "--max-delay", "0", ok=False).stdout
    first = alice.run("vote", str(poll_id), "2", "--max-delay", "0").stdout
    assert "Your vote is recorded: Station." in first
    second = alice.run("vote", str(poll_id), "3", "--max-delay", "0").stdout
    assert "Your new vote is recorded: School." in second and "Only your last vote counts." in second
    receipts = sorted((alice.home / "receipts").glob("*.json"), key=lambda p: p.stat().st_mtime)
    assert len(receipts) == 2

    eventually(
        lambda: alice.run("receipt").stdout,
        timeout=60,
        interval=0.5,
        until=lambda status: "on chain in block" in status,
        what="the receipt on chain",
    )

    assert "Balance: 20 points." in alice.run("points").stdout
    assert "Museum ticket" in alice.run("rewards").stdout
    assert "Redemption of reward 1 requested" in alice.run("redeem", "1").stdout
    eventually(
        lambda: alice.run("points").stdout,
        timeout=60,
        interval=0.5,
        until=lambda points: "Balance: 10 points." in points,
        what="the redemption on chain",
    )
    assert "Donation of 5 points to charity 1 requested" in alice.run("donate", "1", "5").stdout
    eventually(
        lambda: alice.run("points").stdout,
        timeout=60,
        interval=0.5,
        until=lambda points: "Balance: 5 points." in points,
        what="the donation on chain",
    )

    refused = trustees[0].run("trustee", "release", str(poll_id), sealed[0], ok=False)
    assert refused.returncode == 1 and "shares are released only after close" in refused.stdout
    assert "member 0" in trustees[0].run("trustee", "open", sealed[0]).stdout

    chain.anvil.increase_time(3600)
    for index in (0, 1):
        assert "is on chain" in trustees[index].run("trustee", "release", str(poll_id), sealed[index]).stdout
    published = http.post(f"/admin/polls/{poll_id}/publish", headers=ADMIN)
    assert published.status_code == 200, published.text
    assert published.json()["counts"] == [0, 0, 1]

    deployment = tmp_path / "deployment.json"
    chain.deployment.save(deployment)
    for receipt in receipts:  # the first is superseded by the revote, the second counted
        verify = subprocess.run(
            [
                str(BIN / "veche-verify"),
                "--rpc",
                chain.anvil.url,
                "--deployment",
                str(deployment),
                "receipt",
                str(receipt),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr


def signed(receipt: dict) -> dict:
    """A receipt without the fields filled in once on chain (they are not signed)."""
    return {k: v for k, v in receipt.items() if k not in ("transactionHash", "blockNumber")}


def test_the_cli_recovers_lost_answers_and_a_kill(city, tmp_path):
    chain, server, http = city
    proxy = LossyProxy(server.url)
    try:
        alice, bob = Person(proxy.url, tmp_path / "alice"), Person(proxy.url, tmp_path / "bob")
        for person in (alice, bob):
            enrolled = http.post(
                "/admin/residents",
                headers=ADMIN,
                json={"address": person.create_key(), "district": "Central", "birthYear": 1985},
            )
            assert enrolled.status_code == 201, enrolled.text
        now = chain.now()
        trustees = [
            {
                "address": Person(server.url, tmp_path / f"t{i}").create_key(),
                "publicKey": "0x" + sealing.generate_trustee_keypair().public_key.hex(),
            }
            for i in range(2)
        ]
        created = http.post(
            "/admin/polls",
            headers=ADMIN,
            json={
                "question": "Which bus route first?",
                "options": ["12", "34", "56"],
                "opensAt": now,
                "closesAt": now + 3600,
                "points": 10,
                "trustees": trustees,
                "threshold": 2,
                "keyCeremony": False,  # protocol v1: the API deals the key
            },
        )
        assert created.status_code == 201, created.text
        poll = str(created.json()["poll"]["id"])

        # A lost 201, then a lost 202: the SDK sends the same bytes again and gets the first answer.
        proxy.lose("POST", "/tokens")
        assert "Your vote is recorded: 12." in alice.run("vote", poll, "1", "--max-delay", "0").stdout
        lost, again = proxy.seen("POST", "/tokens")
        assert (lost.fate, lost.status, again.body, again.answer) == ("reset", 201, lost.body, lost.answer)
        proxy.lose("POST", "/ballots")
        assert "Your new vote is recorded: 34." in alice.run("vote", poll, "2", "--max-delay", "0").stdout
        lost, again = proxy.seen("POST", "/ballots")[-2:]
        assert (lost.fate, lost.status, again.body) == ("reset", 202, lost.body)

        # Killed while the 202 is on its way: the next vote sends that ballot first, then its own.
        alice.killed_while_waiting(proxy, "/ballots", 202, "vote", poll, "3", "--max-delay", "0")
        held = proxy.seen("POST", "/ballots")[-1]
        out = alice.run("vote", poll, "1", "--max-delay", "0").stdout
        assert (
            "Your earlier ballot, whose answer was lost, is recorded" in out and "Your new vote is recorded: 12." in out
        )
        resent, newest = proxy.seen("POST", "/ballots")[-2:]
        assert resent.body == held.body and resent.status == 202
        assert signed(json.loads(resent.answer)["receipt"]) == signed(json.loads(held.answer)["receipt"])
        assert json.loads(newest.body)["sequence"] == json.loads(held.body)["sequence"] + 1

        # Killed while the 201 is on its way: the saved request (its blinding state sealed) is
        # sent again and answered; a new request would have been refused as a second token.
        bob.killed_while_waiting(proxy, "/tokens", 201, "vote", poll, "2", "--max-delay", "0")
        [saved] = (bob.home / "tokens").glob("*.request.json")
        kept = json.loads(saved.read_text())
        assert set(kept["blinding"]) == {"salt", "sealed"} and kept["request"] == json.loads(
            proxy.seen("POST", "/tokens")[-1].body
        )
        assert "Your vote is recorded: 34." in bob.run("vote", poll, "2", "--max-delay", "0").stdout
        held, resent = proxy.seen("POST", "/tokens")[-2:]
        assert resent.body == held.body and resent.answer == held.answer
        assert not list((bob.home / "tokens").glob("*.request.json"))

        # A wallet whose sequence is behind the relay's (restored from an old copy): the vote
        # goes above it instead of failing with ballot.stale_sequence.
        [token_file] = (bob.home / "tokens").glob("*.json")
        token_file.write_text(json.dumps({**json.loads(token_file.read_text()), "sequence": 0}))
        assert "Your new vote is recorded: 56." in bob.run("vote", poll, "3", "--max-delay", "0").stdout
        stale, accepted = proxy.seen("POST", "/ballots")[-2:]
        assert (stale.status, accepted.status) == (409, 202) and json.loads(stale.answer)["error"][
            "code"
        ] == "ballot.stale_sequence"
        assert not list((alice.home / "tokens").glob("*.ballot.json")) and not list(
            (bob.home / "tokens").glob("*.ballot.json")
        )

        # Every receipt the wallets hold is of a ballot on chain, and no ballot is there twice.
        receipts = [
            json.loads(p.read_text()) for person in (alice, bob) for p in (person.home / "receipts").glob("*.json")
        ]
        assert len(receipts) == 6
        for receipt in receipts:
            eventually(
                lambda: http.get(f"/ballots/{receipt['ballotHash']}").json()["status"] == "confirmed",
                timeout=60,
                interval=0.2,
                what=f"ballot {receipt['ballotHash']} confirmed",
            )
        with RpcClient(chain.anvil.url) as rpc:
            casts = [
                events.ballot_cast(log)
                for log in rpc.iter_logs(chain.deployment.poll_book, [events.BALLOT_CAST_TOPIC], 0, rpc.block_number())
            ]
        mine = [(c.token, c.sequence) for c in casts if c.poll_id == int(poll)]
        assert len(mine) == len(set(mine)) == 6
    finally:
        proxy.close()


def test_the_cli_sends_ballots_to_a_partners_relay_by_default(city, tmp_path):
    """`veche vote` takes the token from the city and sends the ballot to a registered relay the
    city does not run (chosen at random; here the one there is), keeps which relay carried it
    beside the receipt, and `veche receipt` asks that relay; `--relay` sends to the one named;
    a removed relay is not chosen again."""
    chain, server, http = city
    relay, key = start_partner_relay(chain, tmp_path / "relay")
    try:
        bob = Person(server.url, tmp_path / "bob")
        address = bob.create_key()
        enrolled = http.post(
            "/admin/residents", headers=ADMIN, json={"address": address, "district": "Central", "birthYear": 1985}
        )
        assert enrolled.status_code == 201, enrolled.text
        now = chain.now()
        created = http.post(
            "/admin/polls",
            headers=ADMIN,
            json={
                "question": "Which relay?",
                "options": ["Theirs", "Ours"],
                "opensAt": now,
                "closesAt": now + 3600,
                "points": 0,
                "trustees": [{"address": Account.create().address, "publicKey": "0x" + "11" * 32}],
                "threshold": 1,
                "keyCeremony": False,  # protocol v1: the API deals the key
            },
        )
        assert created.status_code == 201, created.text
        poll_id = created.json()["poll"]["id"]

        listing = " ".join(bob.run("relays").stdout.split())
        assert "University" in listing and relay.url in listing and "a partner" in listing

        out = " ".join(bob.run("vote", str(poll_id), "1", "--max-delay", "0").stdout.split())
        assert f"Carried by University ({relay.url}), relayer {key.address}." in out
        [receipt] = (tmp_path / "bob" / "receipts").glob("*.json")
        assert json.loads(receipt.read_text())["relayer"] == key.address
        assert receipt.with_suffix(".relay").read_text().strip() == relay.url
        eventually(
            lambda: bob.run("receipt").stdout,
            30,
            until=lambda text: "on chain in block" in text,
            what="the partner's relay to put the ballot on chain",
        )

        out = " ".join(bob.run("vote", str(poll_id), "2", "--max-delay", "0", "--relay", server.url).stdout.split())
        assert f"Carried by the city's own relay ({server.url})" in out
    finally:
        relay.stop()
        remove_relay(chain, key.address)  # so that no later test of this module picks it

"""The `veche` command line, driven as a resident and trustees would, against a real API on anvil:
create keys, vote, revote, check the receipt, redeem, donate, and release key shares (refused
before close). The poll is then published and the observer's verifier agrees with it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from veche_api.testing import ADMIN_KEY, ThreadServer, start_chain

BIN = Path(sys.executable).parent
ADMIN = {"X-Admin-Key": ADMIN_KEY}


class Person:
    """One wallet directory, and the `veche` command run with it."""

    def __init__(self, api_url: str, home: Path) -> None:
        self.api_url, self.home = api_url, home

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "VECHE_PASSWORD": "correct horse", "VECHE_KEYSTORE_SCRYPT_N": "1024", "COLUMNS": "200"}
        proc = subprocess.run([str(BIN / "veche"), "--api", self.api_url, "--home", str(self.home), *args],
                              capture_output=True, text=True, timeout=120, env=env)
        if ok:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def create_key(self) -> str:
        return re.search(r"0x[0-9a-fA-F]{40}", self.run("key", "create").stdout).group(0)


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("client")
    chain = start_chain(workdir, f"sqlite:///{workdir / 'veche.db'}")
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

    assert http.post("/admin/residents", headers=ADMIN, json={"address": address, "district": "Central", "birthYear": 1985}).status_code == 201
    now = int(httpx.post(chain.anvil.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["latest", False]}).json()["result"]["timestamp"], 16)
    created = http.post("/admin/polls", headers=ADMIN, json={
        "question": "Where should the new library go?", "options": ["Park", "Station", "School"],
        "opensAt": now, "closesAt": now + 3600, "points": 20, "trustees": trustee_keys, "threshold": 2,
    }).json()
    poll_id, sealed = created["poll"]["id"], created["sealedShares"]
    assert http.post("/admin/rewards", headers=ADMIN, json={"name": "Museum ticket", "price": 10, "stock": 5}).status_code == 201
    assert http.post("/admin/charities", headers=ADMIN, json={"name": "City shelter", "account": trustee_keys[0]["address"]}).status_code == 201

    listing = alice.run("polls").stdout
    assert "Where should the new library go?" in listing and "2. Station" in listing

    assert "Options of poll" in alice.run("vote", str(poll_id), "4", "--max-delay", "0", ok=False).stdout
    first = alice.run("vote", str(poll_id), "2", "--max-delay", "0").stdout
    assert "Your vote is recorded: Station." in first
    second = alice.run("vote", str(poll_id), "3", "--max-delay", "0").stdout
    assert "Your new vote is recorded: School." in second and "Only your last vote counts." in second
    receipts = sorted((alice.home / "receipts").glob("*.json"), key=lambda p: p.stat().st_mtime)
    assert len(receipts) == 2

    deadline = time.monotonic() + 60
    while "on chain in block" not in (status := alice.run("receipt").stdout):
        assert time.monotonic() < deadline, status
        time.sleep(0.5)

    assert "Balance: 20 points." in alice.run("points").stdout
    assert "Museum ticket" in alice.run("rewards").stdout
    assert "Redemption of reward 1 requested" in alice.run("redeem", "1").stdout
    deadline = time.monotonic() + 60
    while "Balance: 10 points." not in (points := alice.run("points").stdout):
        assert time.monotonic() < deadline, points
        time.sleep(0.5)
    assert "Donation of 5 points to charity 1 requested" in alice.run("donate", "1", "5").stdout
    deadline = time.monotonic() + 60
    while "Balance: 5 points." not in (points := alice.run("points").stdout):
        assert time.monotonic() < deadline, points
        time.sleep(0.5)

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
        verify = subprocess.run([str(BIN / "veche-verify"), "--rpc", chain.anvil.url, "--deployment", str(deployment),
                                 "receipt", str(receipt)], capture_output=True, text=True, timeout=120)
        assert verify.returncode == 0, verify.stdout + verify.stderr

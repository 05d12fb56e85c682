"""The city's API and the verifier run against the Clique network unchanged: the API sends to a
validator's RPC with the operators' keystores, the verifier reads from the observer's.

A poll runs in real time (geth's clock cannot be moved): tokens, a vote and a revote through the
API's relay, then close, two of three trustees' shares relayed by the API, publication, and the
verifier's verdict from the observer.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from veche_api.core.config import Settings
from veche_client.sdk import ResidentClient
from veche_core import key_shares, sealing
from veche_node.network import block_number, deploy_contracts, get_block
from veche_testkit.servers import ThreadServer
from veche_testkit.waiting import eventually

pytestmark = pytest.mark.geth
ADMIN_KEY = "geth-admin-key"
VOTING_SECONDS = 45


def test_a_poll_through_the_api_on_the_clique_network(network, tmp_path):
    validator, observer = network.validators()[0], network.observers()[0]
    deployment = deploy_contracts(network, validator.url)
    deployment_file = tmp_path / "deployment.json"
    deployment.save(deployment_file)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'city.db'}",
        rpc_url=validator.url,
        deployment_file=deployment_file,
        admin_keystore=network.operator_keystore("poll_admin"),
        issuer_keystore=network.operator_keystore("issuer"),
        relayer_keystore=network.operator_keystore("relayer"),
        points_admin_keystore=network.operator_keystore("points_admin"),
        keystore_password=network.password(),
        secret_key=secrets.token_hex(32),
        admin_api_key=ADMIN_KEY,
        districts=["Central", "Northern"],
        batch_interval=0.2,
        chain_time_ttl=0,
        min_stratum=0,
    )
    server = ThreadServer(settings).start()
    admin = {"X-Admin-Key": ADMIN_KEY}
    try:
        http = httpx.Client(base_url=server.url, timeout=120)
        residents = [ResidentClient(http, Account.create()) for _ in range(3)]
        for i, resident in enumerate(residents):
            reply = http.post(
                "/admin/residents",
                headers=admin,
                json={"address": resident.address, "district": ["Central", "Northern"][i % 2], "birthYear": 1980},
            )
            assert reply.status_code == 201, reply.text
        trustees = [(Account.create(), sealing.generate_trustee_keypair()) for _ in range(3)]
        now = int(get_block(validator.url, "latest")["timestamp"], 16)
        created = http.post(
            "/admin/polls",
            headers=admin,
            json={
                "question": "Open the library on Sundays?",
                "options": ["Yes", "No"],
                "opensAt": now,
                "closesAt": now + VOTING_SECONDS,
                "points": 20,
                "trustees": [{"address": a.address, "publicKey": "0x" + p.public_key.hex()} for a, p in trustees],
                "threshold": 2,
                "keyCeremony": False,  # protocol v1: the API deals the key
            },
        )
        assert created.status_code == 201, created.text
        poll_id = created.json()["poll"]["id"]

        hashes = []
        for i, resident in enumerate(residents):
            poll = next(p for p in resident.polls() if p["id"] == poll_id)
            token = resident.get_token(poll)
            hashes.append(resident.submit(resident.make_ballot(token, [i % 2]))["ballotHash"])
            if i == 0:  # a revote through the relay: the last ballot counts
                hashes.append(resident.submit(resident.make_ballot(token, [1]))["ballotHash"])
        eventually(
            lambda: [resident.ballot_status(h) for resident, h in zip(residents * 2, hashes)],
            timeout=60,
            until=lambda found: all(b["status"] == "confirmed" for b in found),
            interval=0.5,
            what="every ballot confirmed",
        )

        closes_at = created.json()["poll"]["closesAt"]
        eventually(
            lambda: int(get_block(validator.url, "latest")["timestamp"], 16) > closes_at,
            timeout=2 * VOTING_SECONDS,
            interval=1,
            what="a block past the poll's close",
        )
        poll = created.json()["poll"]
        for index in (0, 2):
            account, keypair = trustees[index]
            share = key_shares.open_trustee_share(
                keypair.secret_key, bytes.fromhex(created.json()["sealedShares"][index][2:])
            )
            ResidentClient(http, account).release_share(poll, index, share)
        published = http.post(f"/admin/polls/{poll_id}/publish", headers=admin)
        assert published.status_code == 200, published.text
        assert published.json()["counts"] == [1, 2]  # resident 0 revoted to "No"

        # Let the observer catch up, then recount from it.
        head = block_number(validator.url)
        eventually(lambda: block_number(observer.url) >= head, timeout=30, interval=0.5, what="the observer to sync")
        verify = subprocess.run(
            [
                str(Path(sys.executable).with_name("veche-verify")),
                "--rpc",
                observer.url,
                "--deployment",
                str(deployment_file),
                "--json",
                "poll",
                str(poll_id),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        report = json.loads(verify.stdout)
        assert verify.returncode == 0 and report["verdict"] == "PASS", verify.stdout[-3000:] + verify.stderr
        assert report["tally"]["recomputed"] == [1, 2]
    finally:
        server.stop()

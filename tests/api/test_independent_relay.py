"""`veche-relay`: a relay the city does not run, as a process of its own on the city's chain, with
its own database and key and none of the city's (issue 18). A resident takes a token from the
city's API and sends the ballot to the partner's relay; the relay acknowledges it with a receipt
signed by its own key and posts it; the verifier counts it per relay and passes the receipt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from veche_api import relay_cli
from veche_client.sdk import ResidentClient, ballot_body
from veche_node.keys import load_keystore
from veche_testkit.servers import start_partner_relay
from veche_testkit.waiting import eventually

from .conftest import make_api
from .test_flow import release_shares

VERIFY = Path(sys.executable).with_name("veche-verify")


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    api = make_api(tmp_path_factory, "sqlite")
    try:
        yield api
    finally:
        api.http.close()
        api.server.stop()
        api.chain.anvil.stop()


def test_a_ballot_through_a_partner_relay_counts_and_its_receipt_passes(city, tmp_path):
    relay, key = start_partner_relay(city.chain, tmp_path)
    try:
        resident, neighbour = city.resident("Central"), city.resident("Central")
        poll = city.create_poll(opens_in=2, lasts=600)
        tokens = [r.get_token(city.poll_for(poll["id"], r)) for r in (resident, neighbour)]
        city.advance(3)

        ballot = ResidentClient.make_ballot(tokens[0], [1])
        with httpx.Client(base_url=relay.url, timeout=30) as http:
            reply = http.post("/ballots", json=ballot_body(ballot))
            assert reply.status_code == 202, reply.text
            receipt = reply.json()["receipt"]
            assert receipt["relayer"] == key.address
            again = http.post("/ballots", json=ballot_body(ballot))  # a retry: the same receipt
            assert again.status_code == 202 and again.json()["receipt"] == receipt
            confirmed = eventually(
                lambda: http.get(f"/ballots/{reply.json()['ballotHash']}").json(),
                30,
                until=lambda body: body["status"] == "confirmed",
                what="the relay to confirm the ballot",
            )
            health = http.get("/health").json()
            assert health["status"] == "ok", health
            assert http.get("/tokens").status_code == 404  # a relay issues nothing
        reply = neighbour.cast(tokens[1], [0])  # through the city's own relay
        assert reply.status_code == 202, reply.text
        city.wait_ballot(reply.json()["ballotHash"])

        listed = city.http.get("/relays").json()["relays"]
        assert {"address": key.address, "name": "University", "url": relay.url, "active": True, "city": False} in listed

        city.advance(700)
        release_shares(city, poll, [0, 1])
        published = city.http.post(f"/admin/polls/{poll['id']}/publish", headers=city.admin)
        assert published.status_code == 200, published.text
        deployment = tmp_path / "deployment.json"
        city.chain.deployment.save(deployment)
        verify = [str(VERIFY), "--rpc", city.chain.anvil.url, "--deployment", str(deployment), "--json"]
        report = json.loads(subprocess.run([*verify, "poll", str(poll["id"])], capture_output=True, text=True).stdout)
        assert report["verdict"] == "PASS", report
        assert report["tally"]["recomputed"] == [1, 1, 0]
        carried = {r["name"]: r["counted"] for r in report["countedByRelay"]}
        assert carried == {"University": 1, None: 1}
        path = tmp_path / "receipt.json"
        path.write_text(json.dumps(confirmed["receipt"]))
        checked = subprocess.run([*verify, "receipt", str(path)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout
        assert json.loads(checked.stdout)["checks"][0]["detail"].startswith(f"signed by University ({key.address})")
    finally:
        relay.stop()


def test_veche_relay_init_makes_the_key_and_says_what_the_admin_runs(tmp_path):
    password = tmp_path / "relay.pass"
    password.write_text("a long relay password\n")
    keystore = tmp_path / "keys" / "relayer.json"
    args = ["init", "--keystore", str(keystore), "--password-file", str(password), "--name", "Memorial"]

    made = CliRunner().invoke(relay_cli.main, [*args, "--url", "https://relay.memo.example"])

    assert made.exit_code == 0, made.output
    address = load_keystore(keystore, "a long relay password").address
    assert f"relay key: {address}" in made.output
    assert f'veche-node relay add {address} --name "Memorial" --url "https://relay.memo.example"' in made.output
    assert oct(keystore.stat().st_mode & 0o777) == "0o600"
    again = CliRunner().invoke(relay_cli.main, args)
    assert again.exit_code == 1 and "exists already" in again.output
    assert load_keystore(keystore, "a long relay password").address == address  # not overwritten

"""Protocol v2 in a real browser (Debian's chromium, headless, driven by playwright-core from
tests/web/browser_flow.mjs in its v2 mode) against the real API on anvil: three trustees (the
Python client's trustee steps) register their keys and make a v2 poll's key in its ceremony; a
resident votes in the resident's page, which seals the ballot with HPKE to the joint key (web/src/hpke.js); after
close the trustees release their shares, the city publishes, and `veche-verify` opens the
browser's ballot under its own token's info (check 16) and agrees with the count."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest
from eth_account import Account

from veche_client import trustee as trustee_steps
from veche_client.sdk import ResidentClient
from veche_core import dkg, hpke, plaintext
from veche_testkit.devchain import ADMIN_KEY, start_chain
from veche_testkit.servers import ThreadServer, wait_relay_drained

from test_browser import ARTIFACTS, BIN, CHROMIUM, PASSWORD, Browser, build_pages

ADMIN = {"X-Admin-Key": ADMIN_KEY}
CEREMONY_TIME = 700


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    assert CHROMIUM.exists(), f"the browser tests need {CHROMIUM}: run `make browser`"
    build_pages()
    workdir = tmp_path_factory.mktemp("web-v2")
    chain = start_chain(workdir, f"sqlite:///{workdir / 'veche.db'}")
    server = None
    try:
        server = ThreadServer(chain.settings()).start()
        with httpx.Client(base_url=server.url, timeout=60) as http:
            yield chain, server, http
    finally:
        if server is not None:
            server.stop()
        chain.anvil.stop()


def test_a_resident_votes_in_a_v2_poll_in_the_browser(city, tmp_path):
    chain, server, http = city
    trustees = [(ResidentClient(http, Account.create()), dkg.StaticKey.generate()) for _ in range(3)]
    for client, static in trustees:
        client.register_trustee_key(static.public_key, 1)

    browser = Browser(
        {
            "apiUrl": server.url,
            "artifacts": str(ARTIFACTS),
            "userDataDir": str(tmp_path / "profile"),
            "chromiumPath": str(CHROMIUM),
            "password": PASSWORD,
            "v2": True,
        },
        tmp_path / "browser.log",
    )
    try:
        address = browser.expect("address")["address"]
        enrolled = http.post(
            "/admin/residents", headers=ADMIN, json={"address": address, "district": "Central", "birthYear": 1985}
        )
        assert enrolled.status_code == 201, enrolled.text
        now = chain.now()
        created = http.post(
            "/admin/polls",
            headers=ADMIN,
            json={
                "question": "Which square gets the new fountain?",
                "options": ["North", "South", "East"],
                "opensAt": now + CEREMONY_TIME,
                "closesAt": now + CEREMONY_TIME + 3600,
                "threshold": 2,
                "trustees": [{"address": client.address} for client, _ in trustees],
                "keyCeremony": True,
            },
        )
        assert created.status_code == 201, created.text
        poll_id = created.json()["poll"]["id"]
        for _ in range(2):  # round 1 each, then round 2 and the certifications
            for client, static in trustees:
                trustee_steps.step(client, poll_id, static)
        poll = http.get(f"/polls/{poll_id}").json()
        assert poll["version"] == 2 and poll["electionKey"], poll
        chain.anvil.increase_time(CEREMONY_TIME)
        browser.reply(pollId=poll_id)
        voted = browser.expect("voted", timeout=150)
    finally:
        browser.stop()
    assert voted["consoleErrors"] == []
    ciphertext = bytes.fromhex(voted["ballot"]["ciphertext"][2:])
    assert ciphertext[0] == 0x02 and len(ciphertext) == hpke.sealed_length(plaintext.plaintext_length(3))

    wait_relay_drained(http)
    chain.anvil.increase_time(3601)
    for client, static in (trustees[0], trustees[2]):
        seen = trustee_steps.view(client, poll_id, static)
        client.release_share(poll, seen.index, trustee_steps.release_share(seen, static))
    published = http.post(f"/admin/polls/{poll_id}/publish", headers=ADMIN)
    assert published.status_code == 200, published.text
    assert published.json()["counts"] == [0, 0, 1]

    deployment = tmp_path / "deployment.json"
    chain.deployment.save(deployment)
    recount = subprocess.run(
        [str(BIN / "veche-verify"), "--rpc", chain.anvil.url, "--deployment", str(deployment), "--json", "poll", str(poll_id)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert recount.returncode == 0, recount.stdout + recount.stderr
    verdict = json.loads(recount.stdout)
    assert verdict["verdict"] == "PASS" and verdict["tally"]["recomputed"] == [0, 0, 1]

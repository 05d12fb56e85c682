"""Protocol v2 with the `veche` command line, against a real API on anvil (each database): three
trustees make their keys (no identity key first) and register them, and run a poll's key
ceremony with `veche trustee ceremony`, each run doing what is next and never posting twice; a
resident votes in the v2 poll; in a second poll one trustee sends a bad share (tampered at the
SDK level), is complained about by the CLI, and the administrator restarts without it; after
close the trustees release their shares (recomputed from the chain) and the poll is published,
and the observer's verifier agrees."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from veche_client import trustee as trustee_steps
from veche_client.sdk import ResidentClient
from veche_client.wallet import Wallet
from veche_core.ceremony import MessageKind
from veche_testkit.devchain import ADMIN_KEY, DATABASES, database_url, start_chain
from veche_testkit.waiting import eventually

BIN = Path(sys.executable).parent
ADMIN = {"X-Admin-Key": ADMIN_KEY}
PASSWORD = "correct horse"
CEREMONY_TIME = 700  # seconds from creation to opening (the API asks for 600 at least)


class Person:
    """One wallet directory, and the `veche` command run with it."""

    def __init__(self, api_url: str, home: Path) -> None:
        self.api_url, self.home = api_url, home

    def run(self, *args: str, ok: bool = True) -> str:
        env = {**os.environ, "VECHE_PASSWORD": PASSWORD, "VECHE_KEYSTORE_SCRYPT_N": "1024", "COLUMNS": "200"}
        command = [str(BIN / "veche"), "--api", self.api_url, "--home", str(self.home), *args]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        assert (proc.returncode == 0) == ok, proc.stdout + proc.stderr
        return " ".join(proc.stdout.split())  # (rich wraps long lines)

    def sdk(self, http: httpx.Client) -> tuple[ResidentClient, trustee_steps.dkg.StaticKey]:
        wallet = Wallet(self.home)
        return ResidentClient(http, wallet.identity(PASSWORD)), wallet.trustee_static_key(PASSWORD)


@pytest.fixture(scope="module", params=DATABASES)
def city(request, tmp_path_factory):
    from veche_testkit.servers import ThreadServer

    workdir = tmp_path_factory.mktemp("trustee-cli")
    chain = start_chain(workdir, database_url(request.param, workdir))
    server = ThreadServer(chain.settings()).start()
    try:
        yield chain, server, httpx.Client(base_url=server.url, timeout=120)
    finally:
        server.stop()
        chain.anvil.stop()


def create_v2_poll(chain, http, addresses: list[str]) -> int:
    now = chain.now()
    reply = http.post(
        "/admin/polls",
        headers=ADMIN,
        json={
            "question": "Which square gets the new fountain?",
            "options": ["North", "South", "East"],
            "opensAt": now + CEREMONY_TIME,
            "closesAt": now + CEREMONY_TIME + 3600,
            "trustees": [{"address": a} for a in addresses],
            "threshold": 2,
            "keyCeremony": True,
        },
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["poll"]["version"] == 2 and reply.json()["poll"]["electionKey"] is None
    return reply.json()["poll"]["id"]


def next_steps(http, poll_id: int) -> dict[int, str]:
    return {m["index"]: m["next"] for m in http.get(f"/polls/{poll_id}/ceremony").json()["members"]}


def test_trustees_run_v2_ceremonies_with_the_cli(city, tmp_path):
    chain, server, http = city
    trustees = [Person(server.url, tmp_path / f"trustee{i}") for i in range(3)]
    addresses, static_keys = [], []
    for trustee in trustees:
        out = trustee.run("trustee", "key")  # no `veche key create` first: the identity is made too
        assert "Made your identity key" in out and "veche trustee register" in out
        addresses.append(re.search(r"Trustee address: (0x[0-9a-fA-F]{40})", out).group(1))
        static_keys.append(re.search(r"Trustee static key: (0x0[23][0-9a-f]{64})", out).group(1))
        again = trustee.run("trustee", "key")
        assert "exist already" in again and static_keys[-1] in again and addresses[-1].lower() in again.lower()
    assert json.loads((trustees[0].home / "trustee.json").read_text())["version"] == 2

    refused = http.post(
        "/admin/polls",
        headers=ADMIN,
        json={
            "question": "?",
            "options": ["a", "b"],
            "opensAt": chain.now() + CEREMONY_TIME,
            "closesAt": chain.now() + 9999,
            "trustees": [{"address": a} for a in addresses],
            "threshold": 2,
            "keyCeremony": True,
        },
    )
    assert refused.status_code == 422 and addresses[0].lower() in refused.json()["error"]["message"].lower()
    for trustee, key in zip(trustees, static_keys):
        assert f"Registered your static key {key}" in trustee.run("trustee", "register")
        assert "registered already (serial 1)" in trustee.run("trustee", "register")

    alice = Person(server.url, tmp_path / "alice")
    alice_address = re.search(r"0x[0-9a-fA-F]{40}", alice.run("key", "create")).group(0)
    enrolled = http.post(
        "/admin/residents", headers=ADMIN, json={"address": alice_address, "district": "Central", "birthYear": 1985}
    )
    assert enrolled.status_code == 201, enrolled.text

    # Poll A: an honest ceremony, each trustee running `veche trustee ceremony` when it likes.
    poll_a = create_v2_poll(chain, http, addresses)
    a = str(poll_a)
    first = trustees[0].run("trustee", "ceremony", a)
    assert "Posted your round-1 message (attempt 1)." in first and "wait for trustee(s) 1, 2 (round 1)" in first
    again = trustees[0].run("trustee", "ceremony", a)  # nothing twice
    assert "Nothing to post now." in again and "Posted" not in again
    # With --rpc (its own node), a trustee checks what the API shows against the chain first.
    assert "Posted your round-1 message" in trustees[1].run("trustee", "ceremony", a, "--rpc", chain.anvil.url)
    assert next_steps(http, poll_a) == {0: "wait", 1: "wait", 2: "round1"}
    last = trustees[2].run("trustee", "ceremony", a)  # round 1, then straight on to round 2
    assert "Posted your round-1 message" in last and "certified the election key" in last
    assert "wait for trustee(s) 0, 1 (certification)" in last
    assert next_steps(http, poll_a) == {0: "certify", 1: "certify", 2: "wait"}
    # A round 1 that an API showed otherwise than the chain holds stops the trustee before it
    # computes anything: it could lead it into a complaint that the chain refutes.
    client0, key0 = trustees[0].sdk(http)
    seen = trustee_steps.view(client0, poll_a, key0, chain.anvil.url)  # the API showed the chain's: no error
    forged = next(m for m in seen.state["messages"] if m["index"] == 2 and m["kind"] == MessageKind.Round1)
    forged["payload"] = forged["payload"][:-2] + ("01" if forged["payload"][-2:] == "00" else "00")
    with pytest.raises(trustee_steps.TrusteeError, match="other round-1 messages than your node holds"):
        trustee_steps.check_against_chain(seen, chain.anvil.url)
    assert "certified the election key" in trustees[0].run("trustee", "ceremony", a, "--rpc", chain.anvil.url)
    done = trustees[1].run("trustee", "ceremony", a)
    assert "Every member has certified it" in done and f"veche trustee release {a}" in done
    joint = http.get(f"/polls/{poll_a}").json()["electionKey"]
    assert joint and len(joint) == 68 and joint in done
    assert "Nothing to post now." in trustees[2].run("trustee", "ceremony", a)

    # Poll B: trustee 2 sends trustee 0 a share that does not decrypt (at the SDK level).
    poll_b = create_v2_poll(chain, http, addresses)
    b = str(poll_b)
    for trustee in trustees[:2]:
        assert "Posted your round-1 message" in trustee.run("trustee", "ceremony", b)
    cheat_client, cheat_key = trustees[2].sdk(http)
    seen = trustee_steps.view(cheat_client, poll_b, cheat_key)
    payload = bytearray(trustee_steps.round1(seen, cheat_key))
    at = 2 * 33 + 98 + 8  # member 1's share ciphertext
    payload[at : at + 48] = os.urandom(48)
    cheat_client.post_ceremony_message(seen.poll, seen.attempt, seen.index, MessageKind.Round1, bytes(payload))
    complained = trustees[0].run("trustee", "ceremony", b)
    assert "Trustee 2's round 1 fails for you (ShareDecryption): posted a complaint." in complained
    assert "is frozen by a complaint (trustee 2 was shown at fault by trustee 0's complaint)" in complained
    assert "Posted" not in trustees[1].run("trustee", "ceremony", b)  # frozen: nothing to post
    assert "posted a complaint" not in trustees[0].run("trustee", "ceremony", b)  # nothing twice
    state = http.get(f"/polls/{poll_b}/ceremony").json()
    assert [m["complainedAbout"] for m in state["members"]] == [[2], [], []]
    restarted = http.post(f"/admin/polls/{poll_b}/ceremony/restart", headers=ADMIN, json={"excluded": [2]})
    assert restarted.status_code == 200, restarted.text
    assert "the administrator excluded you" in trustees[2].run("trustee", "ceremony", b, ok=False)
    assert "Posted your round-1 message (attempt 2)." in trustees[0].run("trustee", "ceremony", b)
    assert "certified the election key" in trustees[1].run("trustee", "ceremony", b)
    assert "Every member has certified it" in trustees[0].run("trustee", "ceremony", b)

    # Alice votes in poll A (sealed with HPKE to the joint key), trustees release after close.
    chain.anvil.increase_time(CEREMONY_TIME)
    assert "Your vote is recorded: South." in alice.run("vote", a, "2", "--max-delay", "0")
    assert "shares are released only after close" in trustees[0].run("trustee", "release", a, ok=False)
    receipt = max((alice.home / "receipts").glob("*.json"), key=lambda p: p.stat().st_mtime)
    ballot_hash = json.loads(receipt.read_text())["ballotHash"]
    eventually(
        lambda: http.get(f"/ballots/{ballot_hash}").json()["status"] == "confirmed",
        timeout=60,
        interval=0.2,
        what="alice's ballot on chain",
    )
    chain.anvil.increase_time(3600)
    assert "is on chain (transaction" in trustees[0].run("trustee", "release", a, "--rpc", chain.anvil.url)
    assert "on chain already" in trustees[0].run("trustee", "release", a)
    assert "is on chain (transaction" in trustees[2].run("trustee", "release", a)
    assert "excluded you" in trustees[2].run("trustee", "release", b, ok=False)
    published = http.post(f"/admin/polls/{poll_a}/publish", headers=ADMIN)
    assert published.status_code == 200, published.text
    assert published.json()["counts"] == [0, 1, 0]

    deployment = tmp_path / "deployment.json"
    chain.deployment.save(deployment)
    verify = subprocess.run(
        [str(BIN / "veche-verify"), "--rpc", chain.anvil.url, "--deployment", str(deployment), "poll", a],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr

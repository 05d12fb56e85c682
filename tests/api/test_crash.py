"""Crash safety of the relay and of issuance: the API process is SIGKILLed at random moments
during the load while clients send ballots and ask for tokens, and restarted; clients resend
the same bytes until they get an answer. Afterwards every ballot that got a 202 is on chain
exactly once, every resident who asked holds a token that verifies, and each of them is
recorded on chain once."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from eth_account import Account

from veche_client.sdk import ResidentClient, ballot_body
from veche_api.testing import ADMIN_KEY, ProcessServer, start_chain
from veche_core import blind_rsa, events, sealing
from veche_core import token as token_mod
from veche_core.ballot import Ballot
from veche_core.rpc import RpcClient
from veche_node.anvil import rpc

from .conftest import DATABASES, database_url

TOKENS = 50
BALLOTS_PER_TOKEN = 4  # 200 ballots, revotes included
ASKING = 40  # residents who ask for their token during the load
KILL_AT = (0.2, 0.5, 0.8)  # fractions of the ballots acknowledged (a kill loses at most 10 answers)


@pytest.mark.slow
@pytest.mark.parametrize("kind", DATABASES)
def test_sigkill_during_load_loses_and_duplicates_nothing(tmp_path, kind):
    chain = start_chain(tmp_path, database_url(kind, tmp_path))
    env = {**chain.env, "VECHE_BATCH_INTERVAL": "0.1", "VECHE_BATCH_SIZE": "20",
           "VECHE_SQLITE_SYNCHRONOUS": "FULL", "VECHE_DISTRICTS": "Central"}
    server = ProcessServer(env, log_path=tmp_path / "api.log").start()
    admin = {"X-Admin-Key": ADMIN_KEY}
    try:
        http = httpx.Client(base_url=server.url, timeout=30)
        now = int(rpc(chain.anvil.url, "eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        trustees = [(Account.create(), sealing.generate_trustee_keypair()) for _ in range(2)]
        reply = http.post("/admin/polls", headers=admin, timeout=120, json={
            "question": "Crash?", "options": ["a", "b", "c"], "opensAt": now + 5, "closesAt": now + 36000,
            "trustees": [{"address": a.address, "publicKey": "0x" + p.public_key.hex()} for a, p in trustees],
            "threshold": 2,
        })
        assert reply.status_code == 201, reply.text
        poll_id = reply.json()["poll"]["id"]
        tokens = []
        for _ in range(TOKENS):
            resident = ResidentClient(http)
            assert http.post("/admin/residents", headers=admin, json={
                "address": resident.address, "district": "Central", "birthYear": 1990}).status_code == 201
            poll = next(p for p in http.get("/polls", params={"resident": resident.address}).json() if p["id"] == poll_id)
            tokens.append((resident, resident.get_token(poll)))
        # Residents who will ask for their token during the load: each request made (blinded and
        # signed) once, and sent again as the same bytes until it is answered.
        asking = []
        for _ in range(ASKING):
            resident = ResidentClient(http)
            assert http.post("/admin/residents", headers=admin, json={
                "address": resident.address, "district": "Central", "birthYear": 1990}).status_code == 201
            poll = next(p for p in http.get("/polls", params={"resident": resident.address}).json() if p["id"] == poll_id)
            body, pending, _ = resident.token_request(poll, 0, deadline=int(time.time()) + 3600)
            asking.append((poll, body, pending))
        chain.anvil.increase_time(6)
        # Every ballot is prepared before the load starts.
        queues = [
            [ResidentClient.make_ballot(token, [random.randrange(3)], sequence=s + 1) for s in range(BALLOTS_PER_TOKEN)]
            for _, token in tokens
        ]
        http.close()

        acknowledged: dict[str, Ballot] = {}
        lock = threading.Lock()
        done = threading.Event()

        def send_all(ballots: list[Ballot]) -> None:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                for ballot in ballots:
                    for _attempt in range(200):
                        try:
                            answer = client.post("/ballots", json=ballot_body(ballot))
                        except httpx.HTTPError:
                            time.sleep(0.1)
                            continue
                        if answer.status_code == 202:
                            with lock:
                                acknowledged[answer.json()["ballotHash"]] = ballot
                            break
                        if answer.status_code == 409 and answer.json()["error"]["code"] == "ballot.stale_sequence":
                            break  # persisted before the crash, but its 202 was lost
                        if answer.status_code >= 500:
                            time.sleep(0.1)
                            continue
                        raise AssertionError(answer.text)
                    time.sleep(random.random() * 0.05)

        credentials: list[bytes] = []

        def ask_all(requests) -> None:
            """Each token request resent, unchanged, until answered: a lost 201 must not lock the
            resident out (it used to answer 409 issuance.already_issued)."""
            with httpx.Client(base_url=server.url, timeout=10) as client:
                for poll, body, pending in requests:
                    for _attempt in range(300):
                        try:
                            answer = client.post("/tokens", json=body)
                        except httpx.HTTPError:
                            time.sleep(0.1)
                            continue
                        if answer.status_code == 201:
                            key = blind_rsa.PublicKey.decode(bytes.fromhex(poll["issuerKeys"][0][2:]))
                            signature = bytes.fromhex(answer.json()["blindSignature"][2:])
                            with lock:  # finish_token checks the unblinded signature
                                credentials.append(token_mod.finish_token(key, pending, signature))
                            break
                        if answer.status_code >= 500:
                            time.sleep(0.1)
                            continue
                        raise AssertionError(answer.text)
                    time.sleep(random.random() * 0.05)

        kills = 0

        def killer() -> None:
            """Kill the API three times during the load, whatever the machine's speed: once a
            fifth, a half and four fifths of the ballots are acknowledged, each at a random moment
            soon after (a killer on a clock missed a load that ran faster than it)."""
            nonlocal kills
            rng = random.Random()
            for fraction in KILL_AT:
                while not done.is_set() and len(acknowledged) < fraction * TOKENS * BALLOTS_PER_TOKEN:
                    time.sleep(0.002)
                if done.is_set():
                    break
                time.sleep(rng.uniform(0, 0.05))
                server.kill()
                kills += 1
                server.start()

        killer_thread = threading.Thread(target=killer, daemon=True)
        started = time.monotonic()
        killer_thread.start()
        with ThreadPoolExecutor(max_workers=12) as pool:
            asked = [pool.submit(ask_all, asking[i::2]) for i in range(2)]
            list(pool.map(send_all, queues))
            for future in asked:
                future.result()
        done.set()
        killer_thread.join(30)
        if server.process is None or server.process.poll() is not None:
            server.start()
        assert kills >= 2, "the load finished before the API was killed twice"
        assert time.monotonic() - started < 120

        # Wait for the relay to drain.
        with httpx.Client(base_url=server.url, timeout=10) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                queue = client.get("/health").json()["relay"]["queue"]
                if not queue.get("accepted") and not queue.get("sent"):
                    break
                time.sleep(0.2)
            else:
                raise AssertionError(f"relay did not drain: {queue}")

        with RpcClient(chain.anvil.url) as rpc_client:
            logs = list(rpc_client.iter_logs(
                chain.deployment.poll_book, ["0x" + events.BALLOT_CAST.topic0.hex()], 0, rpc_client.block_number()))
        on_chain: dict[str, int] = {}
        for log in logs:
            a = events.decode_log(log).args
            ballot = Ballot(a["pollId"], a["token"], a["sequence"], a["stratum"], a["ciphertext"],
                            a["tokenSignature"], a["signature"])
            key = "0x" + ballot.hash.hex()
            on_chain[key] = on_chain.get(key, 0) + 1
        def recorded() -> list[bytes]:
            with RpcClient(chain.anvil.url) as rpc_client:
                issued = [events.decode_log(log).args for log in rpc_client.iter_logs(
                    chain.deployment.poll_book, ["0x" + events.TOKENS_ISSUED.topic0.hex()], 0, rpc_client.block_number())]
            return [p for args in issued for p in args["pseudonyms"]]

        deadline = time.monotonic() + 60  # the last issuances go out on the relay's next batch
        while len(pseudonyms := recorded()) < TOKENS + ASKING and time.monotonic() < deadline:
            time.sleep(0.2)
        print(f"kills={kills} acknowledged={len(acknowledged)} on_chain={len(on_chain)} "
              f"tokens={len(credentials)} issuances on chain={len(pseudonyms)}")
        assert len(credentials) == ASKING, "a resident who asked holds no token"
        assert len(pseudonyms) == len(set(pseudonyms)) == TOKENS + ASKING, "issuances lost or recorded twice"
        assert len(acknowledged) >= TOKENS  # a real load got through
        missing = [h for h in acknowledged if h not in on_chain]
        assert not missing, f"{len(missing)} acknowledged ballots are not on chain"
        assert all(count == 1 for count in on_chain.values()), "a ballot is on chain twice"
    finally:
        server.stop()
        chain.anvil.stop()

"""Crash safety of the relay: the API process is SIGKILLed at random moments during the load
while residents ask for tokens and send ballots through the SDK (which sends the same bytes again
when an answer is lost), and restarted; afterwards every resident who asked has a token, recorded
on chain once, and every ballot is acknowledged and on chain exactly once."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from eth_account import Account

from veche_client.sdk import ResidentClient, RetryPolicy
from veche_core import events, sealing
from veche_core.ballot import Ballot
from veche_core.rpc import RpcClient
from veche_testkit.devchain import ADMIN_KEY, start_chain
from veche_testkit.servers import ProcessServer, wait_relay_drained
from veche_testkit.waiting import eventually

from .conftest import DATABASES, database_url

TOKENS = 50
BALLOTS_PER_TOKEN = 4  # 200 ballots, revotes included
KILL_AT = (0.2, 0.5, 0.8)  # fractions of the ballots acknowledged (a kill loses at most 10 answers)
SEED = 15  # the choices, pauses and kill moments are drawn from this seed: the same draws every run


@pytest.mark.slow
@pytest.mark.parametrize("kind", DATABASES)
def test_sigkill_during_load_loses_and_duplicates_nothing(tmp_path, kind):
    chain = start_chain(tmp_path, database_url(kind, tmp_path))
    env = {
        **chain.env,
        "VECHE_BATCH_INTERVAL": "0.1",
        "VECHE_BATCH_SIZE": "20",
        "VECHE_SQLITE_SYNCHRONOUS": "FULL",
        "VECHE_DISTRICTS": "Central",
    }
    server = ProcessServer(env, log_path=tmp_path / "api.log").start()
    admin = {"X-Admin-Key": ADMIN_KEY}
    try:
        http = httpx.Client(base_url=server.url, timeout=30)
        residents = []  # enrolled first: the poll's register is fixed at its creation
        for _ in range(TOKENS):
            resident = ResidentClient(http)
            assert (
                http.post(
                    "/admin/residents",
                    headers=admin,
                    json={"address": resident.address, "district": "Central", "birthYear": 1990},
                ).status_code
                == 201
            )
            residents.append(resident)
        now = chain.now()
        trustees = [(Account.create(), sealing.generate_trustee_keypair()) for _ in range(2)]
        reply = http.post(
            "/admin/polls",
            headers=admin,
            timeout=120,
            json={
                "question": "Crash?",
                "options": ["a", "b", "c"],
                "opensAt": now + 5,
                "closesAt": now + 36000,
                "trustees": [{"address": a.address, "publicKey": "0x" + p.public_key.hex()} for a, p in trustees],
                "threshold": 2,
                "keyCeremony": False,  # protocol v1: the API deals the key
            },
        )
        assert reply.status_code == 201, reply.text
        poll_id = reply.json()["poll"]["id"]
        poll = next(p for p in residents[0].polls() if p["id"] == poll_id)
        chain.anvil.increase_time(6)
        http.close()

        acknowledged: dict[str, Ballot] = {}
        tokens: dict[str, bytes] = {}  # resident → token credential
        lock = threading.Lock()
        done = threading.Event()
        # Long enough to outlast a restart: the SDK sends the same request until it is answered.
        patient = RetryPolicy(attempts=1000, deadline=90, first_delay=0.05, max_delay=0.5)
        # One generator a resident (and one for the killer), each seeded: threads do not share one.
        seeds = random.Random(SEED)
        rngs = {resident.address: random.Random(seeds.getrandbits(64)) for resident in residents}

        def vote(resident: ResidentClient) -> None:
            """One resident: a token (asked for while the API may be killed), then its ballots."""
            rng = rngs[resident.address]
            with httpx.Client(base_url=server.url, timeout=10) as client:
                resident = ResidentClient(client, resident.identity, retry=patient)
                token = resident.get_token(poll)  # all in Central: the same stratum
                with lock:
                    tokens[resident.address] = token.credential
                for _ in range(BALLOTS_PER_TOKEN):
                    ballot = resident.make_ballot(token, [rng.randrange(3)])
                    answer = resident.submit(ballot)  # a 202 lost in a kill is asked for again
                    with lock:
                        acknowledged[answer["ballotHash"]] = ballot
                    time.sleep(rng.random() * 0.05)

        kills = 0

        def killer() -> None:
            """Kill the API three times during the load, whatever the machine's speed: once a
            fifth, a half and four fifths of the ballots are acknowledged, each at a random moment
            soon after (a killer on a clock missed a load that ran faster than it)."""
            nonlocal kills
            rng = random.Random(seeds.getrandbits(64))
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
        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(vote, residents))
        done.set()
        killer_thread.join(30)
        if server.process is None or server.process.poll() is not None:
            server.start()
        assert kills >= 2, "the load finished before the API was killed twice"
        assert time.monotonic() - started < 120
        assert len(tokens) == TOKENS  # every resident who asked got a token
        assert len(acknowledged) == TOKENS * BALLOTS_PER_TOKEN  # and every ballot its receipt

        # Wait for the relay to drain: ballots, and the issuances recorded on chain.
        with httpx.Client(base_url=server.url, timeout=10) as client:
            wait_relay_drained(client)

        def issuances() -> list[bytes]:
            with RpcClient(chain.anvil.url) as rpc_client:
                return [
                    item.resident
                    for log in rpc_client.iter_logs(
                        chain.deployment.poll_book, [events.ISSUANCES_RECORDED_TOPIC], 0, rpc_client.block_number()
                    )
                    for item in events.issuances_recorded(log)[1]
                ]

        issued = eventually(
            issuances,
            timeout=60,
            interval=0.2,
            until=lambda found: len(found) >= TOKENS,
            what=f"{TOKENS} issuances on chain",
        )
        assert len(issued) == len(set(issued)) == TOKENS, "an issuance is missing from the chain or on it twice"

        with RpcClient(chain.anvil.url) as rpc_client:
            logs = list(
                rpc_client.iter_logs(
                    chain.deployment.poll_book, ["0x" + events.BALLOT_CAST.topic0.hex()], 0, rpc_client.block_number()
                )
            )
        on_chain: dict[str, int] = {}
        for log in logs:
            a = events.decode_log(log).args
            ballot = Ballot(
                a["pollId"],
                a["token"],
                a["sequence"],
                a["stratum"],
                a["ciphertext"],
                a["tokenSignature"],
                a["signature"],
            )
            key = "0x" + ballot.hash.hex()
            on_chain[key] = on_chain.get(key, 0) + 1
        print(f"kills={kills} tokens={len(tokens)} acknowledged={len(acknowledged)} on_chain={len(on_chain)}")
        missing = [h for h in acknowledged if h not in on_chain]
        assert not missing, f"{len(missing)} acknowledged ballots are not on chain"
        assert all(count == 1 for count in on_chain.values()), "a ballot is on chain twice"
    finally:
        server.stop()
        chain.anvil.stop()

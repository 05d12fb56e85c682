"""Three partners' relays (`veche-relay`, each a process with its own database and key) and the
city's API on one chain, one poll: residents take tokens from the city and send their ballots
(and a revote) to relays chosen as the SDK chooses them, while each relay is SIGKILLed and
restarted at random moments. Afterwards every acknowledged ballot is on chain and counted or
superseded, every receipt passes check 11 under its own relay's key, no ballot counts twice, and
the verifier counts ballots per relay (issue 18)."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
from eth_account import Account

from veche_client.sdk import ResidentClient, RetryPolicy, ballot_body, relay_order
from veche_core import sealing
from veche_core.receipt import Receipt
from veche_core.rpc import RpcClient
from veche_testkit.devchain import ADMIN_KEY, start_chain
from veche_testkit.servers import ThreadServer, start_partner_relay, wait_relay_drained
from veche_verify.chain import read_snapshot
from veche_verify.checks import Verdict, check_receipt, verify_poll

from .conftest import database_url
from .test_flow import release_shares

TOKENS = 60
BALLOTS_PER_TOKEN = 2  # a ballot and a revote: 120 ballots
KILL_AT = (0.15, 0.3, 0.45, 0.6, 0.75, 0.9)  # fractions acknowledged; relay i % 3 is killed
SEED = 18


def test_three_relays_killed_and_restarted_lose_and_double_count_nothing(tmp_path):
    chain = start_chain(tmp_path / "city", database_url("sqlite", tmp_path))
    city = ThreadServer(chain.settings(districts=["Central"])).start()
    relays = []
    try:
        relays = [start_partner_relay(chain, tmp_path / f"relay{i}", name=f"Partner {i}") for i in range(3)]
        admin = {"X-Admin-Key": ADMIN_KEY}
        http = httpx.Client(base_url=city.url, timeout=30)
        residents = []
        for _ in range(TOKENS):
            resident = ResidentClient(http)
            enrolled = http.post(
                "/admin/residents",
                headers=admin,
                json={"address": resident.address, "district": "Central", "birthYear": 1990},
            )
            assert enrolled.status_code == 201, enrolled.text
            residents.append(resident)
        trustees = [(Account.create(), sealing.generate_trustee_keypair()) for _ in range(2)]
        now = chain.now()
        created = http.post(
            "/admin/polls",
            headers=admin,
            timeout=120,
            json={
                "question": "Three relays?",
                "options": ["a", "b", "c"],
                "opensAt": now + 5,
                "closesAt": now + 36000,
                "trustees": [{"address": a.address, "publicKey": "0x" + p.public_key.hex()} for a, p in trustees],
                "threshold": 2,
                "keyCeremony": False,  # protocol v1: the API deals the key
            },
        )
        assert created.status_code == 201, created.text
        poll = {**created.json()["poll"], "sealedShares": created.json()["sealedShares"]}
        listed = residents[0].relays()
        assert sum(not r["city"] and r["active"] for r in listed) == 3
        chain.anvil.increase_time(6)

        acknowledged: dict[str, tuple[str, dict]] = {}  # ballot hash → (the relay's URL, its receipt)
        lock = threading.Lock()
        done = threading.Event()
        # Long enough to outlast a restart: the SDK sends the same bytes until they are answered.
        patient = RetryPolicy(attempts=1000, deadline=90, first_delay=0.05, max_delay=0.5)
        seeds = random.Random(SEED)
        rngs = {resident.address: random.Random(seeds.getrandbits(64)) for resident in residents}

        def vote(resident: ResidentClient) -> None:
            rng = rngs[resident.address]
            with httpx.Client(base_url=city.url, timeout=10) as client:
                resident = ResidentClient(client, resident.identity, retry=patient)
                token = resident.get_token(next(p for p in resident.polls() if p["id"] == poll["id"]))
                for _ in range(BALLOTS_PER_TOKEN):
                    ballot = resident.make_ballot(token, [rng.randrange(3)])
                    partners = relay_order(listed, city.url)[:-1]  # the partners only, in a random order
                    answer, url = resident.carry(ballot_body(ballot), partners)
                    with lock:
                        acknowledged[answer["ballotHash"]] = (url, answer["receipt"])
                    time.sleep(rng.random() * 0.05)

        kills = 0

        def killer() -> None:
            nonlocal kills
            rng = random.Random(seeds.getrandbits(64))
            for i, fraction in enumerate(KILL_AT):
                while not done.is_set() and len(acknowledged) < fraction * TOKENS * BALLOTS_PER_TOKEN:
                    time.sleep(0.002)
                if done.is_set():
                    break
                time.sleep(rng.uniform(0, 0.05))
                server = relays[i % 3][0]
                server.kill()
                kills += 1
                server.start()

        killer_thread = threading.Thread(target=killer, daemon=True)
        started = time.monotonic()
        killer_thread.start()
        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(vote, residents))
        done.set()
        killer_thread.join(60)
        for server, _ in relays:
            if server.process is None or server.process.poll() is not None:
                server.start()
        assert kills >= 4, f"the load finished before the relays were killed four times ({kills})"
        assert time.monotonic() - started < 180
        assert len(acknowledged) == TOKENS * BALLOTS_PER_TOKEN
        for server, _ in relays:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                wait_relay_drained(client, timeout=90)

        chain.anvil.increase_time(36000)
        release_shares(SimpleNamespace(http=http, trustees=trustees), poll, [0, 1])
        published = http.post(f"/admin/polls/{poll['id']}/publish", headers=admin, timeout=120)
        assert published.status_code == 200, published.text

        with RpcClient(chain.anvil.url) as rpc:
            snapshot = read_snapshot(rpc, chain.deployment, poll["id"], ballot_hashes=True)
        verdict = verify_poll(snapshot, poll["id"])
        assert verdict.verdict is Verdict.PASS, [c.to_dict() for c in verdict.checks if not c.passed]
        assert sum(verdict.recomputed or []) == TOKENS  # one counted ballot a token: none twice
        carried = {item["relay"]: item["counted"] for item in verdict.counted_by_relay()}
        keys = {key.address for _, key in relays}
        assert set(carried) <= keys and sum(carried.values()) == TOKENS and len(carried) >= 2, carried
        for url, receipt in acknowledged.values():
            result = check_receipt(snapshot, verdict, Receipt.from_dict(receipt))
            assert result.passed, (url, result.detail)
            assert receipt["relayer"] in keys
    finally:
        for server, _ in relays:
            server.stop()
        city.stop()
        chain.anvil.stop()

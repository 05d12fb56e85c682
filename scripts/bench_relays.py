"""Relays run by partners (not a test): is the chain, not the relay, the bound? Real anvil
mining a block a second, the city's API issuing the tokens, three partners' `veche-relay`
processes, real HTTP.

The same number of ballots is cast twice, in the same run: first all through one partner's
relay, then spread over three (a third each, all at once); each phase is timed from its first
request to the last ballot confirmed on chain. Three relays should carry at least what one does
(issue 18). Progress goes to stderr; stdout is a Markdown table (`--json OUT` also writes JSON).

    python scripts/bench_relays.py [--ballots 4000] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
from eth_account import Account

from bench_api import closed_loop, say
from veche_client.sdk import ResidentClient, Token, ballot_body
from veche_core import blind_rsa, sealing
from veche_core import token as token_mod
from veche_node.rpc import rpc
from veche_testkit.devchain import ADMIN_KEY, start_chain
from veche_testkit.servers import ProcessServer, start_partner_relay, wait_relay_drained

CONNECTIONS = 48  # in all, in each phase
DRAIN_TIMEOUT = 600
TUNING = {"VECHE_BALLOT_RATE_PER_MINUTE": "1000", "VECHE_BATCH_INTERVAL": "1.0", "VECHE_CHAIN_TIME_TTL": "0.5"}


def phase(relays: list[ProcessServer], bodies: list[bytes]) -> tuple[float, float]:
    """Cast `bodies` spread evenly over `relays`, at once; (accepted/s, confirmed/s)."""
    parts = [bodies[i :: len(relays)] for i in range(len(relays))]

    async def cast() -> None:
        per = CONNECTIONS // len(relays)
        await asyncio.gather(*(closed_loop(r.url, part, "/ballots", per) for r, part in zip(relays, parts)))

    start = time.perf_counter()
    asyncio.run(cast())
    accepted = time.perf_counter()
    for relay in relays:
        with httpx.Client(base_url=relay.url, timeout=60) as http:
            queue = wait_relay_drained(http, timeout=DRAIN_TIMEOUT, interval=0.05)
            if queue.get("confirmed", 0) < len(bodies) // len(relays):
                raise RuntimeError(f"relay {relay.url} confirmed {queue}")
    confirmed = time.perf_counter()
    return len(bodies) / (accepted - start), len(bodies) / (confirmed - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ballots", type=int, default=4000, help="ballots per phase")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="veche-bench-relays-"))
    chain = start_chain(work / "city", f"sqlite:///{work / 'city.db'}")
    env = {**chain.env, **TUNING, "VECHE_DISTRICTS": "Central", "VECHE_ISSUANCE_RATE_PER_MINUTE": "1000"}
    city = ProcessServer(env, log_path=work / "api.log").start()
    relays: list[ProcessServer] = []
    try:
        relays = [start_partner_relay(chain, work / f"relay{i}", f"Partner {i}", **TUNING)[0] for i in range(3)]
        admin = {"X-Admin-Key": ADMIN_KEY}
        http = httpx.Client(base_url=city.url, timeout=120)
        tokens_needed = 2 * args.ballots
        say(f"enrolling {tokens_needed} residents")
        residents = [ResidentClient(http) for _ in range(tokens_needed)]
        csv_text = "address,district,birth_year\n" + "".join(f"{r.address},Central,1980\n" for r in residents)
        http.post("/admin/residents/import", content=csv_text, headers={**admin, "content-type": "text/csv"})
        trustees = [(Account.create(), sealing.generate_trustee_keypair()) for _ in range(2)]
        now = chain.now()
        created = http.post(
            "/admin/polls",
            headers=admin,
            json={
                "question": "Bench",
                "options": ["a", "b", "c"],
                "opensAt": now + 5,
                "closesAt": now + 10**6,
                "trustees": [{"address": a.address, "publicKey": "0x" + p.public_key.hex()} for a, p in trustees],
                "threshold": 2,
                "keyCeremony": False,  # protocol v1: the API deals the key (the relays' work is the same)
            },
        )
        created.raise_for_status()
        poll = {**http.get(f"/polls/{created.json()['poll']['id']}").json(), "residentStratum": 0}
        rpc(chain.anvil.url, "evm_setAutomine", [False])
        rpc(chain.anvil.url, "evm_setIntervalMining", [1])

        say("issuing tokens")
        requests = [r.token_request(poll, 0) for r in residents]
        answers, _ = asyncio.run(closed_loop(city.url, [json.dumps(b).encode() for b, _, _ in requests], "/tokens"))
        key = blind_rsa.PublicKey.decode(bytes.fromhex(poll["issuerKeys"][0][2:]))
        tokens = [
            Token(
                poll,
                0,
                account,
                token_mod.finish_token(key, pending, bytes.fromhex(json.loads(a)["blindSignature"][2:])),
            )
            for (_, pending, account), a in zip(requests, answers)
        ]
        rpc(chain.anvil.url, "evm_increaseTime", [6])
        time.sleep(1.5)
        say("preparing ballots")
        bodies = [
            json.dumps(ballot_body(ResidentClient.make_ballot(t, [i % 3]))).encode() for i, t in enumerate(tokens)
        ]
        load_before = os.getloadavg()[0]
        say(f"{args.ballots} ballots through one relay")
        one = phase(relays[:1], bodies[: args.ballots])
        say(f"{args.ballots} ballots through three relays")
        three = phase(relays, bodies[args.ballots :])
        load_after = os.getloadavg()[0]
    finally:
        for relay in relays:
            relay.stop()
        city.stop()
        chain.anvil.stop()
    figures = {
        "ballots_per_phase": args.ballots,
        "one_relay": {"accepted_per_s": round(one[0]), "confirmed_per_s": round(one[1])},
        "three_relays": {"accepted_per_s": round(three[0]), "confirmed_per_s": round(three[1])},
        "three_over_one_confirmed": round(three[1] / one[1], 2),
        "load_average": [round(load_before, 2), round(load_after, 2)],
    }
    print("| measure | one relay | three relays | three ÷ one |")
    print("| --- | ---: | ---: | ---: |")
    accepted = f"| ballots accepted/s ({CONNECTIONS} connections) | {one[0]:,.0f} | {three[0]:,.0f}"
    print(f"{accepted} | {three[0] / one[0]:.2f}× |")
    print(
        f"| ballots accepted and confirmed on chain/s | {one[1]:,.0f} | {three[1]:,.0f} | {three[1] / one[1]:.2f}× "
        f"({'meets' if three[1] >= one[1] else 'MISSES'} the target of ≥ 1×) |"
    )
    print()
    print(
        f"{args.ballots:,} ballots a phase, each from its first request to its last ballot confirmed; anvil mining a "
        "block a second; the city's API issued the tokens; each relay a `veche-relay` process with its own SQLite "
        f"database and key; the client in this process. Load average {load_before:.2f} before, {load_after:.2f} after."
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

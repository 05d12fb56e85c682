"""How long the city's publish takes (not a test): `POST /admin/polls/{id}/publish` on polls of N
ballots, over real HTTP to `veche-api run` (a uvicorn process, as in production) on real anvil.

Each poll has N residents in three districts, N first ballots and N/4 revotes, all confirmed on
chain before the clock starts; then the poll closes, two of three trustees release their shares,
and the publish request is timed (reading the chain, counting, the publishResult transaction
on an auto-mining anvil, and the database write). A poll can be published once, so `--polls`
polls are built and each published once; the first publish of an API process also pays for
whatever the count sets up once (imports, a worker pool's start).

    python scripts/bench_publish.py [--ballots 3000] [--polls 3] [--count-workers 1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from eth_account import Account

from veche_client.sdk import ResidentClient, Token, ballot_body
from veche_core import blind_rsa, key_shares, sealing
from veche_core import token as token_mod
from veche_core.typed_data import key_share_digest, poll_book_domain, sign_digest
from veche_node.rpc import rpc
from veche_testkit.devchain import ADMIN_KEY, start_chain
from veche_testkit.servers import ProcessServer

sys.path.insert(0, str(Path(__file__).parent))
from bench_api import closed_loop  # the same keep-alive load generator

DISTRICTS = ["Central", "Northern", "Eastern"]


def say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def drained(http: httpx.Client) -> None:
    while True:
        queue = http.get("/health").json()["relay"]["queue"]
        if not queue.get("accepted") and not queue.get("sent"):
            return
        time.sleep(0.1)


def build_poll(http: httpx.Client, url: str, anvil_url: str, residents: list[ResidentClient], trustees) -> dict:
    """A poll with a token and a ballot for every resident and a revote for every fourth,
    all confirmed on chain; returns the poll as created (with its sealed shares)."""
    admin = {"X-Admin-Key": ADMIN_KEY}
    now = int(rpc(anvil_url, "eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    reply = http.post(
        "/admin/polls",
        headers=admin,
        timeout=300,
        json={
            "question": "Bench",
            "options": ["a", "b", "c"],
            "opensAt": now + 5,
            "closesAt": now + 3600,
            "trustees": [{"address": a.address, "publicKey": "0x" + p.public_key.hex()} for a, p in trustees],
            "threshold": 2,
            "keyCeremony": False,  # protocol v1: the API deals the key
        },
    )
    reply.raise_for_status()
    created = reply.json()
    poll = http.get(f"/polls/{created['poll']['id']}").json()
    tokens = []
    for stratum in range(len(DISTRICTS)):
        mine = [r for i, r in enumerate(residents) if i % len(DISTRICTS) == stratum]
        requests = [r.token_request(poll, stratum) for r in mine]
        answers, _ = asyncio.run(closed_loop(url, [json.dumps(body).encode() for body, _, _ in requests], "/tokens"))
        key = blind_rsa.PublicKey.decode(bytes.fromhex(poll["issuerKeys"][stratum][2:]))
        for (_, pending, account), answer in zip(requests, answers):
            signature = bytes.fromhex(json.loads(answer)["blindSignature"][2:])
            tokens.append(Token(poll, stratum, account, token_mod.finish_token(key, pending, signature)))
    rpc(anvil_url, "evm_increaseTime", [6])
    rpc(anvil_url, "evm_mine", [])
    first = [ResidentClient.make_ballot(t, [i % 3]) for i, t in enumerate(tokens)]
    again = [ResidentClient.make_ballot(t, [(i + 1) % 3]) for i, t in enumerate(tokens[: len(tokens) // 4])]
    for ballots in (first, again):
        asyncio.run(closed_loop(url, [json.dumps(ballot_body(b)).encode() for b in ballots], "/ballots"))
        drained(http)
    return {**poll, "sealedShares": created["sealedShares"]}


def release(http: httpx.Client, poll: dict, trustees, indices) -> None:
    domain = poll_book_domain(poll["chainId"], poll["pollBook"])
    for index in indices:
        account, pair = trustees[index]
        share = key_shares.open_trustee_share(pair.secret_key, bytes.fromhex(poll["sealedShares"][index][2:]))
        signature = sign_digest(account.key, key_share_digest(domain, poll["id"], index, share))
        http.post(
            f"/polls/{poll['id']}/key-shares",
            json={"index": index, "share": "0x" + share.hex(), "signature": "0x" + signature.hex()},
        ).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ballots", type=int, default=3000, help="residents (first ballots) per poll")
    parser.add_argument("--polls", type=int, default=3, help="polls built and published, one publish each")
    parser.add_argument("--count-workers", type=int, default=1, help="VECHE_COUNT_WORKERS of the API")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="veche-bench-publish-"))
    chain = start_chain(work, f"sqlite:///{work / 'veche.db'}")
    env = {
        **chain.env,
        "VECHE_DISTRICTS": ",".join(DISTRICTS),
        "VECHE_ISSUANCE_RATE_PER_MINUTE": "100000",
        "VECHE_BALLOT_RATE_PER_MINUTE": "100000",
        "VECHE_COUNT_WORKERS": str(args.count_workers),
    }
    server = ProcessServer(env, log_path=work / "api.log").start()
    try:
        http = httpx.Client(base_url=server.url, timeout=600)
        trustees = [(Account.create(), sealing.generate_trustee_keypair()) for _ in range(3)]
        residents = [ResidentClient(http) for _ in range(args.ballots)]
        csv_text = "address,district,birth_year\n" + "".join(
            f"{r.address},{DISTRICTS[i % len(DISTRICTS)]},1980\n" for i, r in enumerate(residents)
        )
        http.post(
            "/admin/residents/import", content=csv_text, headers={"X-Admin-Key": ADMIN_KEY, "content-type": "text/csv"}
        ).raise_for_status()
        polls = []
        for number in range(args.polls):
            say(f"poll {number + 1}/{args.polls}: {args.ballots} tokens, ballots and {args.ballots // 4} revotes")
            polls.append(build_poll(http, server.url, chain.anvil.url, residents, trustees))
        chain.anvil.increase_time(3700)
        load = os.getloadavg()[0]
        seconds = []
        for poll in polls:
            release(http, poll, trustees, [0, 2])
            start = time.perf_counter()
            reply = http.post(f"/admin/polls/{poll['id']}/publish", headers={"X-Admin-Key": ADMIN_KEY})
            seconds.append(time.perf_counter() - start)
            reply.raise_for_status()
            counted = reply.json()["ballotsCounted"]
            if counted != args.ballots:
                raise RuntimeError(f"{counted} ballots counted of {args.ballots}")
            say(f"poll {poll['id']}: published in {seconds[-1]:.3f} s")
        http.close()
    finally:
        server.stop()
        chain.anvil.stop()
    result = {
        "ballots": args.ballots,
        "revotes": args.ballots // 4,
        "count_workers": args.count_workers,
        "seconds": [round(s, 3) for s in seconds],
        "median_s": round(statistics.median(seconds), 3),
        "load_average_before": round(load, 2),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"| publish, {args.ballots:,} ballots + {args.ballots // 4:,} revotes, {args.count_workers} count "
            f"worker(s) | "
            f"{result['median_s']} s (median; each: {', '.join(map(str, result['seconds']))}; load {load:.2f}) |"
        )


if __name__ == "__main__":
    main()

"""End-to-end benchmark of the city's API (not a test): real anvil, real contracts, the API as
a uvicorn subprocess, real HTTP.

Measures, each beside the ceilings measured in the same run:
- tokens issued per second (50 concurrent clients; blinding done before the clock starts);
- ballots accepted and confirmed on chain per second (50 concurrent clients, ballots prepared
  before the clock starts);
- acceptance latency p50/p99 at a fixed offered load (default 500 ballots/s);
- ceilings: the per-ballot and per-token crypto of the API alone (one core), and castBallots
  batches of 500 sent straight to the chain.

    python scripts/bench_api.py [--tokens 2000] [--rate 500] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from eth_account import Account
from web3 import Web3

from veche_client.sdk import ResidentClient, ballot_body
from veche_api.testing import ADMIN_KEY, ProcessServer, start_chain
from veche_core import blind_rsa, sealing, token as token_mod
from veche_core.receipt import sign_receipt
from veche_node.anvil import rpc
from veche_node.contracts import Sender, bind, dev_accounts

CLIENTS = 50


def crypto_ceiling(poll: dict, ballots, tokens_key: blind_rsa.PrivateKey, seconds: float = 2.0) -> tuple[float, float]:
    from veche_core.typed_data import poll_book_domain

    domain = poll_book_domain(poll["chainId"], poll["pollBook"])
    key = blind_rsa.PublicKey.decode(bytes.fromhex(poll["issuerKeys"][0][2:]))
    relayer = Account.create()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        b = ballots[n % len(ballots)]
        b.verify_signature(domain)
        token_mod.verify_token_signature(key, poll["chainId"], poll["pollBook"], b.poll_id, b.stratum, b.token,
                                         b.token_credential)
        sign_receipt(relayer.key, relayer.address, poll["chainId"], poll["pollBook"], b.poll_id, b.token_address,
                     b.sequence, b.hash, 0)
        n += 1
    ballot_rate = n / (time.perf_counter() - start)
    message = b"\x01" * tokens_key.public_key.modulus_length
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        blind_rsa.blind_sign(tokens_key, message)
        n += 1
    return ballot_rate, n / (time.perf_counter() - start)


def chain_ceiling(url: str, deployment, poll_id: int, ballots) -> float:
    w3 = Web3(Web3.HTTPProvider(url))
    poll_book, _ = bind(w3, deployment)
    sender = Sender(w3, dev_accounts(4)[3])  # the relayer role
    start = time.perf_counter()
    for i in range(0, len(ballots), 500):
        chunk = ballots[i:i + 500]
        sender.transact(poll_book.functions.castBallots(poll_id, [
            (b.token_address, b.sequence, b.stratum, b.ciphertext, b.token_credential, b.signature) for b in chunk]))
    return len(ballots) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--rate-seconds", type=float, default=5.0)
    parser.add_argument("--synchronous", default="FULL")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="veche-bench-"))
    chain = start_chain(work, f"sqlite:///{work / 'veche.db'}")
    env = {**chain.env, "VECHE_DISTRICTS": "Central", "VECHE_ISSUANCE_RATE_PER_MINUTE": "1000",
           "VECHE_BALLOT_RATE_PER_MINUTE": "1000", "VECHE_BATCH_SIZE": "500", "VECHE_BATCH_INTERVAL": "1.0",
           "VECHE_SQLITE_SYNCHRONOUS": args.synchronous, "VECHE_CHAIN_TIME_TTL": "0.5"}
    server = ProcessServer(env, log_path=work / "api.log").start()
    admin = {"X-Admin-Key": ADMIN_KEY}
    results: dict[str, str] = {}
    try:
        http = httpx.Client(base_url=server.url, timeout=120)
        now = int(rpc(chain.anvil.url, "eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        trustee = [(Account.create(), sealing.generate_trustee_keypair()) for _ in range(2)]
        polls = []
        for _ in range(2):  # one for the throughput run, one for the chain ceiling
            reply = http.post("/admin/polls", headers=admin, json={
                "question": "Bench", "options": ["a", "b", "c"], "opensAt": now + 5, "closesAt": now + 10**6,
                "trustees": [{"address": a.address, "publicKey": "0x" + p.public_key.hex()} for a, p in trustee],
                "threshold": 2})
            reply.raise_for_status()
            polls.append(reply.json()["poll"])
        poll = polls[0]
        residents = [ResidentClient(http) for _ in range(args.tokens)]
        csv_text = "address,district,birth_year\n" + "".join(f"{r.address},Central,1980\n" for r in residents)
        http.post("/admin/residents/import", content=csv_text, headers={**admin, "content-type": "text/csv"}).raise_for_status()
        poll = {**http.get(f"/polls/{poll['id']}").json(), "residentStratum": 0}
        requests = [r.token_request(poll, 0) for r in residents]
        key = blind_rsa.PublicKey.decode(bytes.fromhex(poll["issuerKeys"][0][2:]))

        def issue(i):
            body, pending, account = requests[i]
            with_client = clients[i % CLIENTS]
            reply = with_client.post("/tokens", json=body)
            reply.raise_for_status()
            return token_mod.finish_token(key, pending, bytes.fromhex(reply.json()["blindSignature"][2:]))

        clients = [httpx.Client(base_url=server.url, timeout=60) for _ in range(CLIENTS)]
        start = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            credentials = list(pool.map(issue, range(len(residents))))
        results["tokens issued/s (50 clients)"] = f"{len(residents) / (time.perf_counter() - start):.0f}"

        from veche_client.sdk import Token

        tokens = [Token(poll, 0, requests[i][2], credentials[i]) for i in range(len(residents))]
        chain.anvil.increase_time(6)
        half = len(tokens) // 2
        throughput = [ResidentClient.make_ballot(t, [i % 3]) for i, t in enumerate(tokens[:half])]
        paced = [ResidentClient.make_ballot(t, [i % 3]) for i, t in enumerate(tokens[half:])]

        def cast(i):
            reply = clients[i % CLIENTS].post("/ballots", json=ballot_body(throughput[i]))
            assert reply.status_code == 202, reply.text

        start = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(cast, range(len(throughput))))
        accepted_at = time.perf_counter()
        while True:
            queue = http.get("/health").json()["relay"]["queue"]
            if not queue.get("accepted") and not queue.get("sent"):
                break
            time.sleep(0.05)
        confirmed_at = time.perf_counter()
        results["ballots accepted/s (50 clients)"] = f"{len(throughput) / (accepted_at - start):.0f}"
        results["ballots accepted+confirmed/s (50 clients)"] = f"{len(throughput) / (confirmed_at - start):.0f}"

        # Fixed offered load: open loop at args.rate ballots/s.
        count = min(len(paced), int(args.rate * args.rate_seconds))
        latencies: list[float] = []
        lock = threading.Lock()

        def paced_cast(i):
            due = begin + i / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t0 = time.perf_counter()
            reply = clients[i % CLIENTS].post("/ballots", json=ballot_body(paced[i]))
            assert reply.status_code == 202, reply.text
            with lock:
                latencies.append(time.perf_counter() - t0)

        begin = time.perf_counter() + 0.2
        with ThreadPoolExecutor(CLIENTS * 2) as pool:
            list(pool.map(paced_cast, range(count)))
        latencies.sort()
        results[f"acceptance latency p50 at {args.rate}/s (ms)"] = f"{1000 * statistics.median(latencies):.1f}"
        results[f"acceptance latency p99 at {args.rate}/s (ms)"] = f"{1000 * latencies[int(len(latencies) * 0.99) - 1]:.1f}"

        # Ceilings, same run.
        import sqlite3  # noqa: F401  (the API's key is sealed; a fresh key has the same cost)

        ballot_ceiling, sign_ceiling = crypto_ceiling(poll, throughput, blind_rsa.generate_private_key())
        results["ceiling: API crypto per ballot, one core (/s)"] = f"{ballot_ceiling:.0f}"
        results["ceiling: blind signatures, one core (/s)"] = f"{sign_ceiling:.0f}"
        # Chain alone: the same ballots, re-signed for the second poll, straight to castBallots.
        second = {**http.get(f"/polls/{polls[1]['id']}").json()}
        again = [ResidentClient.make_ballot(t, [0], sequence=1, poll_id=second["id"]) for t in tokens[:half]]
        results["ceiling: chain alone, castBallots x500 (/s)"] = f"{chain_ceiling(chain.anvil.url, chain.deployment, second['id'], again):.0f}"
        for c in clients:
            c.close()
    finally:
        server.stop()
        chain.anvil.stop()
    width = max(len(k) for k in results)
    lines = ["| measure | value |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in results.items()]
    print("\n".join(f"{k.ljust(width)}  {v}" for k, v in results.items()))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

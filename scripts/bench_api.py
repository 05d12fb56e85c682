"""End-to-end benchmark of the city's API (not a test): real anvil mining a block every second,
real contracts, the API as uvicorn worker processes, real HTTP.

Measures, each beside the ceilings measured in the same run:
- tokens issued per second (50 concurrent connections; blinding before the clock starts,
  unblinding and checking every token after it stops);
- ballots accepted, and accepted and confirmed on chain, per second (50 concurrent connections,
  ballots prepared and JSON-encoded before the clock starts);
- acceptance latency p50/p99 at a fixed offered load (open loop: request i is due at
  start + i/rate and its latency counts from then, so a stall shows up as latency);
- ceilings: the chain alone (the same castBallots batches, pre-signed, sent straight to the same
  anvil), and the API's cryptography alone (per ballot; blind signatures), on one core.

The load generator is a small asyncio HTTP/1.1 client with keep-alive connections, in this
process, on the same two cores as the API and anvil; its CPU time per request is reported.
Progress goes to stderr; stdout is a Markdown table (`--json` prints JSON instead).

    python scripts/bench_api.py [--tokens 10000] [--rate 500] [--workers 2] [--json]
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

from veche_api.relay import plan_batch
from veche_client.sdk import ResidentClient, Token, ballot_body
from veche_core import blind_rsa, calls, events, sealing
from veche_core import token as token_mod
from veche_core.abi import checksum_address
from veche_core.rpc import RpcClient
from veche_core.typed_data import DigestSigner, poll_book_domain, receipt_digest
from veche_node.contracts import dev_accounts
from veche_node.rpc import rpc
from veche_testkit.devchain import ADMIN_KEY, start_chain
from veche_testkit.servers import ProcessServer, wait_relay_drained

CLIENTS = 50
TARGETS = {"tokens": 500, "confirmed": 1000, "p99": 100.0}
DRAIN_TIMEOUT = 600  # seconds the relay may take to confirm all it accepted (a run takes far less)


def cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        stats[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


class CpuMeter:
    """CPU seconds used by the API (all workers), anvil and this process over a phase."""

    def __init__(self, server, anvil) -> None:
        self.pids = {"api": server.process.pid, "anvil": anvil._process.pid}

    def __enter__(self):
        self.start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.start["client"] = time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.used = {name: cpu_seconds(pid) - self.start[name] for name, pid in self.pids.items()}
        self.used["client"] = time.process_time() - self.start["client"]

    def per_item(self, count: int) -> dict[str, float]:
        return {name: round(1e6 * seconds / count) for name, seconds in self.used.items()}


def say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


# --- a small HTTP/1.1 keep-alive client -----------------------------------------------------


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            await self.connect()
        head = (
            f"{method} {path} HTTP/1.1\r\nhost: {self.host}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        status_line = await asyncio.wait_for(self.reader.readline(), 60)
        status = int(status_line.split(b" ", 2)[1])
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"connection":
                close = value.strip().lower() == b"close"
        answer = await self.reader.readexactly(length)
        if close:  # the API closes the connection of each token request and ballot: open another
            self.close()
            self.reader = self.writer = None
        return status, answer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def closed_loop(url: str, bodies: list[bytes], path: str, clients: int = CLIENTS) -> tuple[list[bytes], float]:
    """Send every body with `clients` connections, each sending its next as soon as it has an
    answer; every answer must be a success. The connections are opened before the clock starts,
    a few milliseconds apart, as independent clients would: opened in one burst, they would all
    be accepted by whichever worker process woke first. Returns the answers and the seconds."""
    host, port = url.removeprefix("http://").split(":")
    answers: list[bytes] = [b""] * len(bodies)
    position = 0
    connections = []
    for _ in range(clients):
        conn = Connection(host, int(port))
        await conn.connect()
        connections.append(conn)
        await asyncio.sleep(0.005)

    async def worker(conn: Connection) -> None:
        nonlocal position
        while position < len(bodies):
            i = position
            position += 1
            status, answer = await conn.request("POST", path, bodies[i])
            if status >= 300:
                raise RuntimeError(f"{path}: {status} {answer[:300]!r}")
            answers[i] = answer

    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker(conn) for conn in connections))
    finally:
        for conn in connections:
            conn.close()
    return answers, time.perf_counter() - start


async def open_loop(url: str, bodies: list[bytes], rate: float, max_connections: int = 200) -> list[float]:
    """Request i is due at start + i/rate; its latency runs from its due time to its answer."""
    host, port = url.removeprefix("http://").split(":")
    idle: list[Connection] = []
    latencies: list[float] = []
    start = time.perf_counter() + 0.2
    limit = asyncio.Semaphore(max_connections)

    async def one(i: int) -> None:
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        async with limit:
            conn = idle.pop() if idle else Connection(host, int(port))
            status, answer = await conn.request("POST", "/ballots", bodies[i])
            latencies.append(time.perf_counter() - due)
            idle.append(conn)
        if status != 202:
            raise RuntimeError(f"/ballots: {status} {answer[:300]!r}")

    await asyncio.gather(*(one(i) for i in range(len(bodies))))
    for conn in idle:
        conn.close()
    return latencies


# --- ceilings -------------------------------------------------------------------------------


def crypto_ceiling(poll: dict, ballots, seconds: float = 2.0) -> tuple[float, float]:
    """What the API computes per ballot (signature, token signature, hash, receipt) and per
    token (one blind signature), one core, nothing else."""
    domain = poll_book_domain(poll["chainId"], poll["pollBook"])
    key = blind_rsa.PublicKey.decode(bytes.fromhex(poll["issuerKeys"][0][2:]))
    poll_book = bytes.fromhex(poll["pollBook"][2:])
    signer = DigestSigner(Account.create().key)
    n, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        b = ballots[n % len(ballots)]
        b.verify_signature(domain)
        token_mod.verify_token_signature(
            key, poll["chainId"], poll_book, b.poll_id, b.stratum, b.token, b.token_credential
        )
        checksum_address(b.token)
        signer.sign(receipt_digest(domain, b.poll_id, b.token, b.sequence, b.hash, 0))
        n += 1
    ballot_rate = n / (time.process_time() - start)
    private = blind_rsa.generate_private_key()
    message = b"\x01" * private.public_key.modulus_length
    n, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        blind_rsa.blind_sign(private, message)
        n += 1
    return ballot_rate, n / (time.process_time() - start)


def chain_ceiling(
    url: str, deployment, poll_id: int, ballots, batch_size: int, max_bytes: int, ballot_gas: int
) -> tuple[float, int]:
    """The same castBallots batches the relay makes (cut by count and calldata size, same gas
    limits), signed before the clock starts, sent at once to the same anvil (one block a
    second); ballots mined per second from the first send to the last receipt."""
    relayer = dev_accounts(4)[3]
    nonce = first_nonce = int(rpc(url, "eth_getTransactionCount", [relayer.address, "latest"]), 16)
    base = int(rpc(url, "eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)
    raws, position = [], 0
    items = [
        (i, calls.ballot_calldata_size(len(b.ciphertext), len(b.token_credential), len(b.signature)))
        for i, b in enumerate(ballots)
    ]
    while position < len(ballots):
        ids, _ = plan_batch(items[position:], batch_size, max_bytes)
        chunk = [ballots[i] for i in ids]
        position += len(ids)
        data = calls.encode_cast_ballots(
            poll_id, [(b.token, b.sequence, b.stratum, b.ciphertext, b.token_credential, b.signature) for b in chunk]
        )
        gas = 80_000 + len(chunk) * ballot_gas + 24 * len(data)
        tx = {
            "to": deployment.poll_book,
            "data": data,
            "value": 0,
            "gas": gas,
            "gasPrice": base * 2 + 10**9,
            "nonce": nonce,
            "chainId": deployment.chain_id,
        }
        raws.append(bytes(relayer.sign_transaction(tx).raw_transaction))
        nonce += 1
    with RpcClient(url, timeout=60) as client:
        start = time.perf_counter()
        hashes = [client.call("eth_sendRawTransaction", ["0x" + raw.hex()]) for raw in raws]
        pending, gas_used = list(hashes), 0
        while pending:
            receipt = client.call("eth_getTransactionReceipt", [pending[0]])
            if receipt is None:
                if client.call("eth_getTransactionByHash", [pending[0]]) is None:
                    # anvil dropped it from its pool (see Relay.reconcile): send it again, as the relay does
                    client.call("eth_sendRawTransaction", ["0x" + raws[hashes.index(pending[0])].hex()])
                if time.perf_counter() - start > 120:
                    raise RuntimeError(
                        f"chain ceiling: {len(pending)} of {len(raws)} transactions not mined; "
                        f"pool {client.call('txpool_status', [])}, first nonce {first_nonce}, "
                        f"account nonce {client.call('eth_getTransactionCount', [relayer.address, 'latest'])}"
                    )
                time.sleep(0.02)
                continue
            if int(receipt["status"], 16) != 1:
                raise RuntimeError("a castBallots batch reverted in the chain ceiling")
            gas_used += int(receipt["gasUsed"], 16)
            pending.pop(0)
        elapsed = time.perf_counter() - start
    say(f"chain ceiling: {len(raws)} transactions, {gas_used / len(ballots):.0f} gas a ballot")
    return len(ballots) / elapsed, len(raws)


def ballots_on_chain(url: str, poll_book: str, poll_id: int) -> int:
    with RpcClient(url, timeout=60) as client:
        topics = [events.BALLOT_CAST.topic, events.uint_topic(poll_id)]
        return sum(1 for _ in client.iter_logs(poll_book, topics, 0, client.block_number()))


# --- the run --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tokens",
        type=int,
        default=10_000,
        help="residents, tokens and ballots of the throughput run (long enough that the last "
        "batch's confirmation, ~2 s, is not most of the measured time)",
    )
    parser.add_argument("--rate", type=int, default=500, help="offered load of the latency run (ballots/s)")
    parser.add_argument("--rate-seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--block-time", type=int, default=1, help="seconds between blocks")
    parser.add_argument("--synchronous", default="FULL", help="SQLite synchronous pragma (FULL: power-loss safe)")
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    parser.add_argument("--markdown", type=Path, help="also write the Markdown table to this file")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="veche-bench-"))
    database_url = args.database_url or f"sqlite:///{work / 'veche.db'}"
    chain = start_chain(work, database_url)
    env = {
        **chain.env,
        "VECHE_DISTRICTS": "Central",
        "VECHE_ISSUANCE_RATE_PER_MINUTE": "1000",
        "VECHE_BALLOT_RATE_PER_MINUTE": "1000",
        "VECHE_BATCH_INTERVAL": "1.0",
        "VECHE_SQLITE_SYNCHRONOUS": args.synchronous,
        "VECHE_CHAIN_TIME_TTL": "0.5",
    }
    try:
        run(args, chain, env, database_url)
    finally:
        chain.anvil.stop()


def run(args, chain, env, database_url) -> None:
    work = chain.workdir
    load_before = os.getloadavg()[0]
    settings = chain.settings()
    server = ProcessServer(env, log_path=work / "api.log", workers=args.workers).start()
    admin = {"X-Admin-Key": ADMIN_KEY}
    measured: dict = {
        "load_average_before": round(load_before, 2),
        "workers": args.workers,
        "block_time_s": args.block_time,
        "sqlite_synchronous": args.synchronous,
        "database": "postgresql" if database_url.startswith("postgres") else "sqlite",
    }
    try:
        http = httpx.Client(base_url=server.url, timeout=120)
        say(f"enrolling {args.tokens} residents")  # first: a poll's register is fixed at its creation
        residents = [ResidentClient(http) for _ in range(args.tokens)]
        csv_text = "address,district,birth_year\n" + "".join(f"{r.address},Central,1980\n" for r in residents)
        http.post(
            "/admin/residents/import", content=csv_text, headers={**admin, "content-type": "text/csv"}
        ).raise_for_status()
        now = chain.now()
        trustees = [(Account.create(), sealing.generate_trustee_keypair()) for _ in range(2)]
        polls = []
        for _ in range(2):  # one for the API runs, one for the chain ceiling
            reply = http.post(
                "/admin/polls",
                headers=admin,
                json={
                    "question": "Bench",
                    "options": ["a", "b", "c"],
                    "opensAt": now + 5,
                    "closesAt": now + 10**6,
                    "trustees": [{"address": a.address, "publicKey": "0x" + p.public_key.hex()} for a, p in trustees],
                    "threshold": 2,
                    "keyCeremony": False,  # protocol v1: the API deals the key
                },
            )
            reply.raise_for_status()
            polls.append(reply.json()["poll"])
        poll = {**http.get(f"/polls/{polls[0]['id']}").json(), "residentStratum": 0}
        # From here on the chain mines one block a second, as a production chain does.
        rpc(chain.anvil.url, "evm_setAutomine", [False])
        rpc(chain.anvil.url, "evm_setIntervalMining", [args.block_time])

        # --- tokens
        requests = [r.token_request(poll, 0) for r in residents]
        key = blind_rsa.PublicKey.decode(bytes.fromhex(poll["issuerKeys"][0][2:]))
        bodies = [json.dumps(body).encode() for body, _, _ in requests]
        say("issuing tokens")
        with CpuMeter(server, chain.anvil) as meter:
            answers, elapsed = asyncio.run(closed_loop(server.url, bodies, "/tokens"))
        measured["tokens_per_s"] = len(bodies) / elapsed
        measured["cpu_us_per_token"] = meter.per_item(len(bodies))
        tokens = []
        for (_, pending, account), answer in zip(requests, answers):
            credential = token_mod.finish_token(key, pending, bytes.fromhex(json.loads(answer)["blindSignature"][2:]))
            tokens.append(Token(poll, 0, account, credential))

        # --- ballots: throughput
        rpc(chain.anvil.url, "evm_increaseTime", [6])
        time.sleep(args.block_time + 0.5)  # a block past the opening
        say("preparing ballots")
        first = [ResidentClient.make_ballot(t, [i % 3]) for i, t in enumerate(tokens)]
        count = min(len(tokens), int(args.rate * args.rate_seconds))
        second = [ResidentClient.make_ballot(t, [(i + 1) % 3]) for i, t in enumerate(tokens[:count])]
        bodies = [json.dumps(ballot_body(b)).encode() for b in first]
        paced = [json.dumps(ballot_body(b)).encode() for b in second]
        say(f"casting {len(bodies)} ballots with {CLIENTS} connections")
        with CpuMeter(server, chain.anvil) as meter:
            _, accepting = asyncio.run(closed_loop(server.url, bodies, "/ballots"))
            accepted_at = time.perf_counter()
            start = accepted_at - accepting
            queue = wait_relay_drained(http, timeout=DRAIN_TIMEOUT, interval=0.05)
            confirmed_at = time.perf_counter()
        measured["cpu_us_per_ballot"] = meter.per_item(len(bodies))
        measured["ballots_accepted_per_s"] = len(bodies) / (accepted_at - start)
        measured["ballots_confirmed_per_s"] = len(bodies) / (confirmed_at - start)
        on_chain = ballots_on_chain(chain.anvil.url, chain.deployment.poll_book, poll["id"])
        if on_chain != len(bodies) or queue.get("confirmed") != len(bodies):
            raise RuntimeError(f"{len(bodies)} ballots accepted, {queue} in the API, {on_chain} BallotCast on chain")

        # --- ballots: latency at a fixed offered load (revotes of the same tokens)
        say(f"latency run: {len(paced)} ballots at {args.rate}/s")
        latencies = sorted(asyncio.run(open_loop(server.url, paced, args.rate)))
        measured["latency_rate"] = args.rate
        measured["latency_p50_ms"] = 1000 * statistics.median(latencies)
        measured["latency_p99_ms"] = 1000 * latencies[max(0, int(len(latencies) * 0.99) - 1)]
        wait_relay_drained(http, timeout=DRAIN_TIMEOUT, interval=0.1)  # before the server stops
        http.close()
    finally:
        server.stop()
    # --- ceilings, same run, API stopped
    say("ceilings: chain alone")
    again = [ResidentClient.make_ballot(t, [0], sequence=1, poll_id=polls[1]["id"]) for t in tokens]
    rate, transactions = chain_ceiling(
        chain.anvil.url,
        chain.deployment,
        polls[1]["id"],
        again,
        settings.batch_size,
        settings.max_batch_bytes,
        settings.ballot_gas,
    )
    measured["ceiling_chain_per_s"] = rate
    measured["ceiling_chain_transactions"] = transactions
    say("ceilings: crypto")
    measured["ceiling_crypto_ballots_per_s_one_core"], measured["ceiling_blind_signatures_per_s_one_core"] = (
        crypto_ceiling(poll, first)
    )
    measured["load_average_after"] = round(os.getloadavg()[0], 2)

    if args.json:
        print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in measured.items()}, indent=2))
    table = markdown(measured, args)
    if not args.json:
        print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")


def markdown(m: dict, args) -> str:
    crypto, blind, chain = (
        m["ceiling_crypto_ballots_per_s_one_core"],
        m["ceiling_blind_signatures_per_s_one_core"],
        m["ceiling_chain_per_s"],
    )
    rows = [
        (
            "tokens issued/s (2048-bit keys, 50 connections)",
            f"{m['tokens_per_s']:.0f}",
            f"blind signatures: {blind:.0f}/s on one core, {2 * blind:.0f}/s on two",
            f"≥ {TARGETS['tokens']}",
        ),
        (
            "ballots accepted/s (50 connections)",
            f"{m['ballots_accepted_per_s']:.0f}",
            f"API crypto: {crypto:.0f}/s on one core",
            "",
        ),
        (
            "ballots accepted and confirmed on chain/s (50 connections)",
            f"{m['ballots_confirmed_per_s']:.0f}",
            f"chain alone: {chain:.0f}/s ({m['ceiling_chain_transactions']} castBallots transactions)",
            f"≥ {TARGETS['confirmed']}",
        ),
        (f"acceptance latency p50 at {m['latency_rate']} ballots/s (ms)", f"{m['latency_p50_ms']:.1f}", "", ""),
        (
            f"acceptance latency p99 at {m['latency_rate']} ballots/s (ms)",
            f"{m['latency_p99_ms']:.1f}",
            "",
            f"≤ {TARGETS['p99']:.0f}",
        ),
    ]
    b, t = m["cpu_us_per_ballot"], m["cpu_us_per_token"]
    lines = ["| measure | value | ceiling, same run | target |", "| --- | ---: | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    lines += [
        "",
        f"Setup: {args.tokens} residents, tokens and ballots (the latency run revotes "
        f"{int(args.rate * args.rate_seconds)} of them); the API as {m['workers']} uvicorn worker process(es) on "
        f"{m['database']} (synchronous={m['sqlite_synchronous']}); anvil mining one block every "
        f"{m['block_time_s']} s (60M gas). Load generator: an asyncio HTTP/1.1 keep-alive client in one process "
        f"on the same two cores (unblinding after the clock). CPU per ballot, accepted to confirmed: "
        f"API {b['api']} µs, anvil {b['anvil']} µs, client {b['client']} µs; per token: API {t['api']} µs, "
        f"anvil {t['anvil']} µs, client {t['client']} µs. "
        f"Load average before the run {m['load_average_before']}, after {m['load_average_after']}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

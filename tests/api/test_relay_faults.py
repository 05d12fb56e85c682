"""The relay under faults, on real anvil over real HTTP: the node cut off (a TCP proxy between
the API and anvil; the chain runs on behind it), a nonce taken by a transaction sent outside
the API, pending transactions dropped by the node, batches that revert (the poll closes
between sending and mining; a gas limit too low), a transaction evicted as underpriced, and a
SIGKILL between createPoll's broadcast and its receipt.

Each ballot test ends with every accepted ballot either on chain exactly once (BallotCast
events counted per (token, sequence) from eth_getLogs) or failed with its reason on the
receipt endpoint. Every wait has a deadline.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from veche_api.core.config import Settings
from veche_client.sdk import ResidentClient, ballot_body
from veche_core import events, key_shares, sealing
from veche_node.contracts import dev_accounts
from veche_node.rpc import rpc
from veche_testkit.devchain import ADMIN_KEY, start_chain
from veche_testkit.servers import ProcessServer, ThreadServer
from veche_testkit.servers import reset_socket as _reset
from veche_testkit.waiting import eventually

from .conftest import Api

GWEI = 10**9
RELAYER = dev_accounts(4)[3]  # start_chain gives the relayer role to dev account 3
FINAL = ("confirmed", "rejected", "failed")


class NodeProxy:
    """127.0.0.1:port → anvil, one thread per direction and connection. `cut()` closes every
    open connection and resets each new one at once (counted in `refused`) until `restore()`;
    anvil itself, and so the chain, runs on."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.refused = 0
        self._cut = False
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self._cut:
                with self._lock:
                    self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with self._lock:
                    self._open.discard(sock)
                _reset(sock)

    def cut(self) -> None:
        self._cut = True
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _reset(sock)

    def restore(self) -> None:
        self._cut = False

    def close(self) -> None:
        self.cut()
        self.listener.close()


@dataclass
class Faults:
    api: Api
    proxy: NodeProxy
    settings: Settings  # the running server's own object: a test may change a field for a while
    db_path: Path

    def node(self, method: str, *params):
        """anvil directly, never through the proxy."""
        return rpc(self.api.chain.anvil.url, method, list(params))

    def sql(self, query: str, *args) -> list[tuple]:
        with closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)) as conn:
            return conn.execute(query, args).fetchall()

    def voters(self, count: int, lasts: int = 3600):
        """A one-stratum poll, open, and `count` residents holding a token for it."""
        api = self.api
        poll = api.create_poll(opens_in=5, lasts=lasts, audience={"districts": ["Central"]}, trustees=2)
        tokens = []
        for _ in range(count):
            resident = api.resident("Central")
            tokens.append(resident.get_token(api.poll_for(poll["id"], resident)))
        api.advance(6)
        return poll, tokens

    def post(self, ballots) -> list[str]:
        hashes = []
        for ballot in ballots:
            reply = self.api.http.post("/ballots", json=ballot_body(ballot))
            assert reply.status_code == 202, reply.text
            hashes.append(reply.json()["ballotHash"])
        return hashes

    def status(self, ballot_hash: str) -> dict:
        return self.api.http.get(f"/ballots/{ballot_hash}").json()

    def wait_final(self, hashes: list[str], timeout: float = 30.0) -> dict[str, dict]:
        return eventually(
            lambda: {h: self.status(h) for h in hashes},
            timeout,
            until=lambda found: all(body["status"] in FINAL for body in found.values()),
            what="every ballot final",
        )

    def settled(self, timeout: float = 30.0) -> None:
        """Nothing queued or in flight: the next test starts from a quiet relay."""
        eventually(
            lambda: (
                not self.sql(
                    "SELECT 1 FROM chaintx WHERE status IN ('signed', 'sent') UNION ALL "
                    "SELECT 1 FROM ballot WHERE status IN ('accepted', 'sent') UNION ALL "
                    "SELECT 1 FROM issuance WHERE status IN ('pending', 'sent')"
                )
            ),
            timeout,
        )

    def pool(self, address: str) -> dict[int, str]:
        """nonce → hash of `address`'s transactions pending in anvil's pool."""
        pending = self.node("txpool_content")["pending"]
        mine = next((txs for sender, txs in pending.items() if sender.lower() == address.lower()), {})
        return {int(nonce): tx["hash"] for nonce, tx in mine.items()}

    def receipt(self, tx_hash: str, timeout: float = 10.0) -> dict:
        """The transaction's receipt, once mined: anvil answers a send (or the switch back to
        automine) before the block is in, noticeably so under load."""
        return eventually(lambda: self.node("eth_getTransactionReceipt", tx_hash), timeout, what=f"receipt {tx_hash}")

    def wait_sent(self, poll_id: int, address: str = RELAYER.address, timeout: float = 15.0) -> dict[int, str]:
        """Wait until the relay has put every ballot of the poll in a broadcast transaction; the
        sender's pending pool then (automine off)."""
        eventually(
            lambda: (
                not self.sql(
                    "SELECT 1 FROM ballot WHERE poll_id = ? AND status = 'accepted' UNION ALL "
                    "SELECT 1 FROM chaintx WHERE status = 'signed'",
                    poll_id,
                )
            ),
            timeout,
        )
        return self.pool(address)

    def cast_counts(self, poll_id: int) -> Counter:
        """(token, sequence) → BallotCast events on chain for the poll."""
        topics = ["0x" + events.BALLOT_CAST.topic0.hex(), "0x" + poll_id.to_bytes(32, "big").hex()]
        logs = self.node(
            "eth_getLogs",
            {"address": self.api.chain.deployment.poll_book, "topics": topics, "fromBlock": "0x0", "toBlock": "latest"},
        )
        decoded = [events.decode_log(log).args for log in logs]
        return Counter((args["token"].lower(), args["sequence"]) for args in decoded)

    def assert_once(self, poll_id: int, ballots) -> None:
        counts = self.cast_counts(poll_id)
        for ballot in ballots:
            assert counts[(ballot.token_address.lower(), ballot.sequence)] == 1, (ballot.token_address, ballot.sequence)
        assert all(n == 1 for n in counts.values()), counts


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("faults")
    db_path = workdir / "veche.db"
    chain = start_chain(workdir, f"sqlite:///{db_path}")
    proxy = NodeProxy(chain.anvil.port)
    settings = chain.settings(rpc_url=proxy.url, batch_size=4, batch_interval=0.1, resend_after=1.0, reprice_after=2.0)
    server = http = None
    try:
        server = ThreadServer(settings).start()
        http = httpx.Client(base_url=server.url, timeout=60)
        trustees = [(Account.create(), sealing.generate_trustee_keypair()) for _ in range(2)]
        yield Faults(Api(chain, server, http, {"X-Admin-Key": ADMIN_KEY}, trustees), proxy, settings, db_path)
    finally:
        proxy.restore()
        if http is not None:
            http.close()
        if server is not None:
            server.stop()
        proxy.close()
        chain.anvil.stop()


def make_ballots(tokens, sequence: int):
    return [ResidentClient.make_ballot(token, [0], sequence=sequence) for token in tokens]


def test_node_outage_queues_backs_off_and_resumes(env):
    poll, tokens = env.voters(8)
    env.settled()
    # A batch is in the node's pool when the node goes away, and is mined while the API is blind.
    in_flight = make_ballots(tokens[:4], 1)
    env.node("evm_setAutomine", False)
    try:
        first = env.post(in_flight)
        assert env.wait_sent(poll["id"])
        env.proxy.cut()
        env.node("evm_mine")
    finally:
        env.node("evm_setAutomine", True)

    queued = make_ballots(tokens[4:], 1) + make_ballots(tokens[:4], 2)  # new ballots and revotes
    cut_at = time.monotonic()
    second = env.post(queued)
    assert {env.status(h)["status"] for h in second} == {"accepted"}
    assert {env.status(h)["status"] for h in first} == {"sent"}  # mined, but the relay cannot know
    health = env.api.http.get("/health")
    assert health.status_code == 503, health.text
    assert health.json()["chain"]["ok"] is False and health.json()["status"] == "degraded"

    # Backing off, not spinning: the relay has met the cut (it reports the error), and then over
    # 4 quiet seconds its attempts (two connections each: one retry in the RPC client) stay few;
    # a loop at `receipt_poll` would make ~30. A rate is counted over a span of time: the sleep
    # is that span, not a guess at when something will have happened.
    eventually(
        lambda: env.api.http.get("/health").json()["relay"]["lastError"],
        timeout=30,
        what="the relay to report the node's outage",
    )
    before = env.proxy.refused
    time.sleep(4)
    attempts = env.proxy.refused - before
    assert attempts <= 10, f"{attempts} connections in 4 s while the node was down"
    assert env.api.http.get("/health").json()["relay"]["lastError"]
    assert {env.status(h)["status"] for h in second} == {"accepted"}

    env.proxy.restore()
    restored_at = time.monotonic()
    final = env.wait_final(first + second, timeout=30)
    assert {body["status"] for body in final.values()} == {"confirmed"}
    env.assert_once(poll["id"], in_flight + queued)
    assert env.api.http.get("/health").status_code == 200
    print(
        f"cut {restored_at - cut_at:.1f} s, {attempts} connection attempts in the quiet 4 s, "
        f"drained {time.monotonic() - restored_at:.1f} s after restore"
    )


def test_foreign_transaction_takes_the_relays_nonce(env):
    poll, tokens = env.voters(4)
    env.settled()
    warm = make_ballots(tokens[:1], 1)  # the relay now holds its next nonce in memory
    env.wait_final(env.post(warm))
    nonce = int(env.node("eth_getTransactionCount", RELAYER.address, "pending"), 16)
    base = int(env.node("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
    foreign = RELAYER.sign_transaction(
        {
            "nonce": nonce,
            "gas": 21_000,
            "gasPrice": 2 * base + GWEI,
            "to": RELAYER.address,
            "value": 0,
            "chainId": env.api.chain.deployment.chain_id,
        }
    )
    env.node("eth_sendRawTransaction", "0x" + bytes(foreign.raw_transaction).hex())
    assert env.receipt("0x" + bytes(foreign.hash).hex())["status"] == "0x1"

    later = make_ballots(tokens[1:], 1) + make_ballots(tokens[:1], 2)
    final = env.wait_final(env.post(later))
    assert {body["status"] for body in final.values()} == {"confirmed"}
    env.assert_once(poll["id"], warm + later)
    # The relay did sign with the taken nonce; that transaction was dropped and its ballots sent again.
    assert env.sql("SELECT status FROM chaintx WHERE sender = ? AND nonce = ?", RELAYER.address, nonce) == [
        ("dropped",)
    ]


@pytest.mark.parametrize("how", ["all", "first"])
def test_pending_transactions_dropped_by_the_node(env, how):
    poll, tokens = env.voters(8)
    env.settled()
    ballots = make_ballots(tokens, 1)
    env.node("evm_setAutomine", False)
    try:
        hashes = env.post(ballots)  # batch_size 4: two transactions (or more)
        pool = env.wait_sent(poll["id"])
        assert len(pool) >= 2
        sends = env.sql("SELECT SUM(attempts) FROM chaintx WHERE sender = ?", RELAYER.address)[0][0]
        if how == "all":
            env.node("anvil_dropAllTransactions")
        else:  # the lower nonce: a gap (anvil drops the transactions that depend on it too)
            env.node("anvil_dropTransaction", pool[min(pool)])
        # Dropped — unless the relay's periodic resend (every second here) already put it back,
        # which it records just after the broadcast.
        if min(pool) in env.pool(RELAYER.address):
            eventually(
                lambda: env.sql("SELECT SUM(attempts) FROM chaintx WHERE sender = ?", RELAYER.address)[0][0] > sends,
                timeout=5,
            )
    finally:
        env.node("evm_setAutomine", True)
    final = env.wait_final(hashes)
    assert {body["status"] for body in final.values()} == {"confirmed"}
    env.assert_once(poll["id"], ballots)


def test_batch_reverted_because_the_poll_closed(env):
    poll, tokens = env.voters(4, lasts=600)
    env.settled()
    ballots = make_ballots(tokens, 1)
    env.node("evm_setAutomine", False)
    try:
        hashes = env.post(ballots)
        pool = env.wait_sent(poll["id"])
        env.api.chain.anvil.set_next_timestamp(poll["closesAt"])  # mined at the close: castBallots reverts
    finally:
        env.node("evm_setAutomine", True)
    assert pool and all(env.receipt(h)["status"] == "0x0" for h in pool.values())
    final = env.wait_final(hashes)
    assert {(b["status"], b["reason"]) for b in final.values()} == {("failed", "poll.closed")}
    assert all(b["receipt"]["transactionHash"] is None for b in final.values())
    assert not env.cast_counts(poll["id"])


def test_batch_reverted_out_of_gas_is_retried(env):
    poll, tokens = env.voters(4)
    env.settled()
    ballots = make_ballots(tokens, 1)
    saved = env.settings.ballot_gas, env.settings.batch_interval
    # A gas limit below what four ballots use (~24,000 each) but above the transaction's
    # intrinsic gas (21,000 + 16 a calldata byte), so the node takes it and it runs out of gas
    # on chain: 80,000 - 4 × 15,000 + 24 × ~3,200 bytes ≈ 97,000. A long interval so that the
    # four ballots go out as one batch.
    env.settings.ballot_gas, env.settings.batch_interval = -15_000, 5.0
    try:
        hashes = env.post(ballots)
        final = env.wait_final(hashes)
    finally:
        env.settings.ballot_gas, env.settings.batch_interval = saved
    assert {body["status"] for body in final.values()} == {"confirmed"}
    env.assert_once(poll["id"], ballots)
    reverted = env.sql(
        "SELECT COUNT(*) FROM chaintx WHERE kind = 'ballots' AND poll_id = ? AND status = 'reverted'", poll["id"]
    )
    assert reverted[0][0] >= 1  # it did revert, and was sent again (estimated this time)


def test_underpriced_transaction_is_repriced(env):
    poll, tokens = env.voters(4)
    env.settled()
    ballots = make_ballots(tokens, 1)
    env.node("evm_setAutomine", False)
    try:
        hashes = env.post(ballots)
        pool = env.wait_sent(poll["id"])
        assert pool
        prices = {h: int(env.node("eth_getTransactionByHash", h)["gasPrice"], 16) for h in pool.values()}
        # The base fee jumps far above the transactions' price: anvil mines a block without
        # them and evicts them; sending the same bytes again is refused until the fee decays
        # (with automine and no other transaction: never).
        env.node("anvil_setNextBlockBaseFeePerGas", hex(1000 * GWEI))
        env.node("evm_mine")
        assert all(env.node("eth_getTransactionByHash", h) is None for h in pool.values())
    finally:
        env.node("evm_setAutomine", True)
    try:
        started = time.monotonic()
        final = env.wait_final(hashes, timeout=40)
        took = time.monotonic() - started
        assert {body["status"] for body in final.values()} == {"confirmed"}
        mined = {body["receipt"]["transactionHash"] for body in final.values()}
        assert not mined & set(pool.values())
        for nonce, first_hash in pool.items():
            assert env.node("eth_getTransactionReceipt", first_hash) is None
            ((tx_id, mined_hash, status),) = env.sql(
                "SELECT id, tx_hash, status FROM chaintx WHERE sender = ? AND nonce = ?", RELAYER.address, nonce
            )
            assert status == "mined" and mined_hash in mined
            tx = env.node("eth_getTransactionByHash", mined_hash)
            assert int(tx["nonce"], 16) == nonce
            assert int(tx["gasPrice"], 16) >= max(prices[first_hash] * 9 // 8, 1000 * GWEI)
            versions = env.sql("SELECT tx_hash, gas_price FROM txversion WHERE chain_tx_id = ?", tx_id)
            assert (first_hash, prices[first_hash]) in versions
        env.assert_once(poll["id"], ballots)
        print(f"{len(pool)} transaction(s) repriced; confirmed {took:.1f} s after the eviction")
    finally:
        env.node("anvil_setNextBlockBaseFeePerGas", hex(GWEI))
        env.node("evm_mine")


def test_poll_creation_survives_a_crash_after_broadcast(tmp_path):
    """SIGKILL while createPoll is in the node's pool: the chain then holds the poll, and the
    restarted API completes it from the receipt — issuer keys and sealed shares included."""
    chain = start_chain(tmp_path, f"sqlite:///{tmp_path / 'veche.db'}")
    db_path = tmp_path / "veche.db"
    server = ProcessServer(
        {**chain.env, "VECHE_DISTRICTS": "Central", "VECHE_BATCH_INTERVAL": "0.1"}, log_path=tmp_path / "api.log"
    )
    trustees = [(Account.create(), sealing.generate_trustee_keypair()) for _ in range(2)]
    admin = {"X-Admin-Key": ADMIN_KEY}
    try:
        server.start()
        enrolled_identity = Account.create()  # enrolled first: in the poll's register
        enrolled = httpx.post(
            server.url + "/admin/residents",
            headers=admin,
            json={"address": enrolled_identity.address, "district": "Central", "birthYear": 1990},
        )
        assert enrolled.status_code == 201, enrolled.text
        now = chain.now()
        body = {
            "question": "Crash?",
            "options": ["a", "b"],
            "opensAt": now + 5,
            "closesAt": now + 3600,
            "trustees": [{"address": a.address, "publicKey": "0x" + p.public_key.hex()} for a, p in trustees],
            "threshold": 2,
            "keyCeremony": False,  # protocol v1: the API deals the key
        }
        rpc(chain.anvil.url, "evm_setAutomine", [False])
        answers: list = []

        def create() -> None:
            try:
                answers.append(httpx.post(server.url + "/admin/polls", headers=admin, json=body, timeout=60))
            except httpx.HTTPError as exc:
                answers.append(exc)

        request = threading.Thread(target=create, daemon=True)
        request.start()
        eventually(
            lambda: rpc(chain.anvil.url, "txpool_content")["pending"],
            timeout=30,
            interval=0.05,
            what="createPoll to be broadcast",
        )
        server.kill()
        request.join(10)
        assert answers and isinstance(answers[0], httpx.HTTPError)  # the admin got no answer

        rpc(chain.anvil.url, "evm_mine")  # the poll exists on chain; the API's database has it pending
        rpc(chain.anvil.url, "evm_setAutomine", [True])
        topic = "0x" + events.POLL_CREATED.topic0.hex()
        created = rpc(
            chain.anvil.url,
            "eth_getLogs",
            [{"address": chain.deployment.poll_book, "topics": [topic], "fromBlock": "0x0", "toBlock": "latest"}],
        )
        assert len(created) == 1
        poll_id = events.decode_log(created[0]).args["pollId"]
        with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
            assert conn.execute("SELECT status FROM pollcreation").fetchall() == [("pending",)]
            assert conn.execute("SELECT COUNT(*) FROM poll").fetchone() == (0,)

        server.start()  # the relay's first pass reconciles the createPoll
        http = httpx.Client(base_url=server.url, timeout=30)
        poll = eventually(
            lambda: http.get(f"/polls/{poll_id}"),
            timeout=30,
            until=lambda reply: reply.status_code == 200,
            what=f"poll {poll_id} served",
        ).json()
        creation = http.get(f"/admin/polls/{poll_id}/creation", headers=admin)
        assert creation.status_code == 200, creation.text
        creation = creation.json()
        assert creation["poll"] == poll
        assert creation["transactionHash"] == created[0]["transactionHash"]
        shares = [
            key_shares.open_trustee_share(pair.secret_key, bytes.fromhex(sealed[2:]))
            for (_, pair), sealed in zip(trustees, creation["sealedShares"])
        ]
        key_shares.combine_shares(shares, bytes.fromhex(poll["electionKey"][2:]), 2)

        # The issuer key, sealed again under the chain's poll id, signs tokens (and the register,
        # saved from the receipt too, proves the resident); a ballot goes through.
        resident = ResidentClient(http, enrolled_identity)
        listed = next(p for p in resident.polls() if p["id"] == poll_id)
        token = resident.get_token(listed)
        chain.anvil.increase_time(6)
        ballot_hash = resident.submit(ResidentClient.make_ballot(token, [1]))["ballotHash"]
        status = eventually(
            lambda: http.get(f"/ballots/{ballot_hash}").json(),
            timeout=30,
            until=lambda body: body["status"] in FINAL,
            what="the ballot final",
        )
        assert status["status"] == "confirmed", status
        http.close()
    finally:
        server.stop()
        chain.anvil.stop()

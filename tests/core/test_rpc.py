"""veche_core.rpc.RpcClient against a small JSON-RPC node served by http.server in the test.

The node is a ThreadingHTTPServer on 127.0.0.1 (port 0) speaking HTTP/1.1 with keep-alive, whose
answers each test scripts; it records every request it receives (body, headers, path, and the
client's port, which tells the connections apart). Every test is bounded in time by an alarm.
"""

from __future__ import annotations

import base64
import json
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from veche_core.errors import VecheError
from veche_core.rpc import RpcClient, RpcError
from veche_node.ports import free_ports

TEST_SECONDS = 20


@pytest.fixture(autouse=True)
def _bounded_in_time():
    def expired(signum, frame):
        raise TimeoutError(f"test took more than {TEST_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Request:
    body: Any
    headers: dict[str, str]
    path: str
    port: int  # the client's port: one per TCP connection


class Node:
    """What the test server answers: `answer(body, n)` -> (HTTP status, JSON value or raw bytes),
    n counting requests from 1."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.answer: Callable[[Any, int], tuple[int, Any]] = lambda body, n: (200, result(body, None))
        self.close_after_answer = False

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def ports(self) -> set[int]:
        return {request.port for request in self.requests}


def result(body: dict, value: Any) -> dict:
    return {"jsonrpc": "2.0", "id": body["id"], "result": value}


def error(body: dict, message: str, code: int = -32000) -> dict:
    return {"jsonrpc": "2.0", "id": body["id"], "error": {"code": code, "message": message}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as nodes do
    timeout = 10  # an idle connection is closed by the server after this
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def do_POST(self) -> None:
        node: Node = self.server.node  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with node.lock:
            node.requests.append(Request(body, dict(self.headers), self.path, self.client_address[1]))
            n = len(node.requests)
        status, answer = node.answer(body, n)
        payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        if node.close_after_answer:
            self.close_connection = True  # as a node closing an idle keep-alive connection

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def node():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.node = Node(server)  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.node  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def client(node):
    with RpcClient(node.url, timeout=5, retries=1) as rpc:
        yield rpc


def test_a_keep_alive_connection_the_node_closed_is_reopened_at_once(node):
    """Without retries or backoff: a closed keep-alive connection is not a failed attempt."""
    node.close_after_answer = True
    node.answer = lambda body, n: (200, result(body, n))
    with RpcClient(node.url, timeout=5, retries=0) as rpc:
        started = time.monotonic()
        assert [rpc.call("eth_blockNumber") for _ in range(3)] == [1, 2, 3]
        assert time.monotonic() - started < 0.15
    assert len(node.ports()) == 3


def test_a_call_round_trips(node, client):
    node.answer = lambda body, n: (200, result(body, {"method": body["method"], "params": body["params"]}))
    assert client.call("veche_echo", [1, "a", {"b": None}]) == {"method": "veche_echo", "params": [1, "a", {"b": None}]}
    assert client.call("veche_echo") == {"method": "veche_echo", "params": []}
    [first, second] = node.requests
    assert first.body["jsonrpc"] == "2.0" and isinstance(first.body["id"], int)
    assert first.body["id"] != second.body["id"]
    assert first.headers["Content-Type"] == "application/json"
    assert first.path == "/"
    assert "Authorization" not in first.headers


def test_typed_helpers_read_the_answers(node, client):
    answers = {
        "eth_chainId": "0x7a69",
        "eth_blockNumber": "0x2a",
        "eth_getCode": "0x6001",
        "eth_getBlockByNumber": {"number": "0x5", "timestamp": "0x65"},
    }
    node.answer = lambda body, n: (200, result(body, answers[body["method"]]))
    assert client.chain_id() == 31337
    assert client.block_number() == 42
    assert client.get_code("0x" + "11" * 20) == b"\x60\x01"
    assert client.block_timestamp(5) == 0x65
    assert node.requests[-1].body["params"] == ["0x5", False]


def test_head_block_is_the_latest_blocks_number_and_hash_from_one_answer(node, client):
    block_hash = "0x" + "Ab" * 32
    node.answer = lambda body, n: (200, result(body, {"number": "0x2a", "hash": block_hash, "timestamp": "0x1"}))
    assert client.head_block() == (42, block_hash.lower())
    assert [r.body["params"] for r in node.requests] == [["latest", False]]


@pytest.mark.parametrize(
    "block",
    [
        None,
        {"number": "0x2a"},
        {"number": "0x2a", "hash": "0x" + "ab" * 31},
        {"number": "0x2a", "hash": "0x" + "zz" * 32},
        {"number": "nope", "hash": "0x" + "ab" * 32},
    ],
)
def test_a_head_block_without_a_proper_number_and_hash_is_an_rpc_error(node, client, block):
    node.answer = lambda body, n: (200, result(body, block))
    with pytest.raises(RpcError, match="latest block"):
        client.head_block()


def test_sequential_calls_share_one_keep_alive_connection(node, client):
    node.answer = lambda body, n: (200, result(body, n))
    assert [client.call("eth_blockNumber") for _ in range(5)] == [1, 2, 3, 4, 5]
    assert len(node.ports()) == 1


def test_http_500_twice_then_success_is_retried(node):
    node.answer = lambda body, n: (500, b"busy") if n <= 2 else (200, result(body, "0x1"))
    started = time.monotonic()
    with RpcClient(node.url, timeout=5, retries=3) as client:
        assert client.call("eth_blockNumber") == "0x1"
    assert len(node.requests) == 3
    assert all(request.body["method"] == "eth_blockNumber" for request in node.requests)
    assert time.monotonic() - started >= 0.2 + 0.4 - 0.05  # the backoff between the attempts


def test_a_node_that_keeps_failing_gives_rpc_error_after_retries_plus_one_attempts(node):
    node.answer = lambda body, n: (503, b"down")
    with RpcClient(node.url, timeout=5, retries=2) as client:
        with pytest.raises(RpcError, match="HTTP 503") as raised:
            client.call("eth_blockNumber")
    assert len(node.requests) == 3
    assert isinstance(raised.value, ConnectionError) and isinstance(raised.value, VecheError)


def test_an_answer_that_is_not_json_is_retried_then_an_rpc_error(node):
    node.answer = lambda body, n: (200, b"<html>gateway</html>")
    with RpcClient(node.url, timeout=5, retries=1) as client:
        with pytest.raises(RpcError):
            client.call("eth_blockNumber")
    assert len(node.requests) == 2


def test_an_unreachable_node_is_an_rpc_error():
    (port,) = free_ports(1)  # a port nothing listens on
    with RpcClient(f"http://127.0.0.1:{port}/", timeout=2, retries=1) as client:
        with pytest.raises(RpcError, match="eth_chainId"):
            client.chain_id()


def test_a_json_rpc_error_object_becomes_rpc_error_with_the_nodes_message(node, client):
    node.answer = lambda body, n: (200, error(body, "execution reverted: no such poll", code=3))
    with pytest.raises(RpcError, match="execution reverted: no such poll"):
        client.call("eth_call", [{"to": "0x" + "11" * 20, "data": "0x"}, "latest"])
    assert len(node.requests) == 1  # the node answered: not a transport error, not retried


def test_a_batch_is_answered_in_the_order_asked(node, client):
    node.answer = lambda body, n: (200, [result(call, call["params"][0] * 10) for call in reversed(body)])
    assert client.batch("veche_times_ten", [[1], [2], [3]]) == [10, 20, 30]
    assert client.batch("veche_times_ten", []) == []
    assert len(node.requests) == 1


def _logs_node(node: Node, limit_message: str, most_blocks: int) -> None:
    """eth_getLogs answering one log per block, refusing ranges of more than most_blocks."""

    def answer(body, n):
        query = body["params"][0]
        low, high = int(query["fromBlock"], 16), int(query["toBlock"], 16)
        if high - low + 1 > most_blocks:
            return 200, error(body, limit_message, code=-32005)
        return 200, result(body, [{"blockNumber": hex(b), "address": query["address"]} for b in range(low, high + 1)])

    node.answer = answer


def _asked(node: Node) -> list[tuple[int, int]]:
    return [(int(r.body["params"][0]["fromBlock"], 16), int(r.body["params"][0]["toBlock"], 16)) for r in node.requests]


HALVED = [(0, 99), (0, 49), (0, 24), (25, 49), (50, 74), (75, 99)]


@pytest.mark.parametrize(
    "message",
    [
        "query returned more than 10000 results. Try with this block range [0x0, 0x18].",  # Infura, with its hint
        "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range",
        "query exceeds max results 10000",
    ],
)
def test_iter_logs_halves_the_range_when_the_node_refuses_it(node, client, message):
    _logs_node(node, message, most_blocks=25)
    address, topics = "0x" + "ab" * 20, [["0x" + "01" * 32, "0x" + "02" * 32]]
    logs = list(client.iter_logs(address, topics, 0, 99, page=100))
    assert [int(log["blockNumber"], 16) for log in logs] == list(range(100))
    assert _asked(node) == HALVED
    assert all(
        r.body["params"][0]["address"] == address and r.body["params"][0]["topics"] == topics for r in node.requests
    )


def test_iter_logs_halves_the_range_on_query_returned_more_than_10000_results(node, client):
    _logs_node(node, "query returned more than 10000 results", most_blocks=25)
    logs = list(client.iter_logs("0x" + "ab" * 20, None, 0, 99, page=100))
    assert [int(log["blockNumber"], 16) for log in logs] == list(range(100))
    assert _asked(node) == HALVED


def test_iter_logs_pages_and_stops_at_the_last_block(node, client):
    _logs_node(node, "unused", most_blocks=10**9)
    logs = list(client.iter_logs("0x" + "ab" * 20, None, 5, 16, page=5))
    assert [int(log["blockNumber"], 16) for log in logs] == list(range(5, 17))
    assert _asked(node) == [(5, 9), (10, 14), (15, 16)]
    assert node.requests[0].body["params"][0]["topics"] == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda log: log.update(address="0x" + "cd" * 20), "which was not asked for"),
        (lambda log: log.update(blockNumber=hex(int(log["blockNumber"], 16) + 100)), "with a log of block"),
    ],
)
def test_a_node_that_ignores_the_filter_is_an_rpc_error(node, client, change, message):
    """Foreign events must not be read as ours: another contract's, or outside the blocks asked."""
    _logs_node(node, "unused", most_blocks=10**9)
    plain = node.answer

    def answer(body, n):
        status, reply = plain(body, n)
        change(reply["result"][-1])
        return status, reply

    node.answer = answer
    with pytest.raises(RpcError, match=message):
        list(client.iter_logs("0x" + "ab" * 20, None, 5, 16))


def test_iter_logs_matches_addresses_in_any_case_and_passes_malformed_logs_to_the_decoders(node, client):
    found = [
        {"address": "0x" + "ab" * 20, "blockNumber": "0x5"},
        {"address": "0x" + "CD" * 20, "blockNumber": "0x6"},
        {"no": "address"},
        "not a log",
    ]
    node.answer = lambda body, n: (200, result(body, found))
    assert list(client.iter_logs(["0x" + "AB" * 20, "0x" + "cd" * 20], None, 5, 6)) == found


def test_iter_logs_does_not_halve_on_other_errors_nor_below_one_block(node, client):
    node.answer = lambda body, n: (200, error(body, "header not found"))
    with pytest.raises(RpcError, match="header not found"):
        list(client.iter_logs("0x" + "ab" * 20, None, 0, 99))
    assert len(node.requests) == 1
    node.requests.clear()
    _logs_node(node, "query returned too many results", most_blocks=0)
    with pytest.raises(RpcError, match="too many"):
        list(client.iter_logs("0x" + "ab" * 20, None, 0, 3, page=4))
    assert _asked(node) == [(0, 3), (0, 1), (0, 0)]


def test_a_url_with_user_and_password_sends_basic_authorization(node):
    host, port = node.server.server_address[:2]
    node.answer = lambda body, n: (200, result(body, "0x1"))
    with RpcClient(f"http://alice:s%3Acr%40t@{host}:{port}/rpc/v1?project=veche", timeout=5, retries=0) as client:
        assert client.call("eth_chainId") == "0x1"
    [request] = node.requests
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"alice:s:cr@t").decode()
    assert request.path == "/rpc/v1?project=veche"
    assert "alice" not in request.path and "Host" in request.headers


def test_one_client_used_from_four_threads_at_once(node, client):
    in_flight = [0, 0]  # now, most

    def answer(body, n):
        with node.lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
        time.sleep(0.001 * (n % 3))  # answers finish out of order across connections
        with node.lock:
            in_flight[0] -= 1
        return 200, result(body, {"echo": body["params"]})

    node.answer = answer
    calls, threads = 40, 4
    barrier = threading.Barrier(threads)
    got: dict[int, list[Any]] = {}
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait(5)
            got[index] = [client.call("veche_echo", [index, i])["echo"] for i in range(calls)]
        except BaseException as exc:  # reported below
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(index,), daemon=True) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(TEST_SECONDS / 2)
    assert not any(worker.is_alive() for worker in workers)
    assert failures == []
    assert got == {index: [[index, i] for i in range(calls)] for index in range(threads)}
    assert len(node.requests) == threads * calls
    assert len(node.ports()) == threads  # one keep-alive connection per thread
    assert in_flight[1] >= 2  # the calls did overlap


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/",
        "ws://127.0.0.1:8545",
        "file:///tmp/node.ipc",
        "127.0.0.1:8545",
        "localhost:8545",
        "http://",
        "https:///path",
        "",
    ],
)
def test_a_url_that_is_not_http_is_an_rpc_error_at_construction(url):
    with pytest.raises(RpcError):
        RpcClient(url)

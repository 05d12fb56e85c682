"""The city's API for tests, the demo and the benchmarks, over real HTTP on 127.0.0.1: in a thread
of the test's process, or as `veche-api run` in a process of its own (to SIGKILL); a partner's
`veche-relay` beside it; and a proxy in front of it that loses chosen answers on purpose."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from eth_account import Account
from eth_account.signers.local import LocalAccount

from veche_api.core.config import Settings
from veche_api.server import uvicorn_config
from veche_node.contracts import Sender, bind, dev_accounts
from veche_node.ports import free_ports
from veche_node.rpc import make_web3

from .devchain import ChainEnv, write_test_keystore
from .waiting import eventually


class ThreadServer:
    """uvicorn in a thread of this process (real HTTP on 127.0.0.1)."""

    def __init__(self, settings: Settings) -> None:
        from veche_api.main import create_app

        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn_config(settings, create_app(settings), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 30.0) -> ThreadServer:
        self.thread.start()

        def started() -> bool:
            if not self.thread.is_alive():
                raise RuntimeError("the API server's thread ended before it started serving")
            return self.server.started

        eventually(started, timeout, interval=0.02, what="the API server to start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


class ProcessServer:
    """`veche-api run` (as `python -m veche_api run`) as a subprocess, for kill -9 tests; with
    `program="veche_api.relay_cli"`, `veche-relay run`."""

    def __init__(
        self,
        env: dict[str, str],
        port: int | None = None,
        log_path: Path | None = None,
        workers: int = 1,
        program: str = "veche_api",
    ) -> None:
        self.env = {**os.environ, **env}
        self.program = program
        self.workers = workers
        self.port = port or free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0, *, node_up: bool = True) -> ProcessServer:
        """Start and wait until /health answers: 200, or also 503 when the node is meant to be
        down (`node_up=False`)."""
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                self.program,
                "run",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            env=self.env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        ready = (200,) if node_up else (200, 503)

        def answering() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"the API exited with {process.returncode}")
            return httpx.get(self.url + "/health", timeout=1).status_code in ready

        try:
            eventually(answering, timeout, interval=0.05, ignoring=(httpx.HTTPError,), what="the API to answer /health")
        except AssertionError:
            self.kill()
            raise
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_relay_drained(http: httpx.Client, timeout: float = 60.0, interval: float = 0.2) -> dict:
    """Until the API's relay has sent and confirmed everything it acknowledged (nothing
    `accepted` or `sent` in GET /health's queue); that queue."""
    return eventually(
        lambda: http.get("/health").json()["relay"]["queue"],
        timeout,
        interval=interval,
        until=lambda queue: not any(queue.get(state, 0) for state in ("accepted", "sent")),
        what="the relay to drain",
    )


@dataclass(eq=False)
class Exchange:
    """One request the proxy saw: its bytes, the API's answer (None if not yet or never asked
    for), and what the client got: "pending" (not yet), "answered", "reset" (the answer was
    dropped), "held" (never answered) or "failed" (the proxy answered 503 itself; the API never
    saw the request). Recorded before the client gets anything."""

    method: str
    path: str
    body: bytes
    status: int | None = None
    answer: bytes | None = None
    fate: str = "pending"


class LossyProxy:
    """127.0.0.1:port → the API, HTTP/1.1 aware, losing chosen answers on purpose.

    `lose(method, path)` makes the next matching request reach the API and be handled, then
    drops the answer: the client's connection is reset (RST, the lost 201/202 of a crash or a
    dropped connection) or, with `how="hold"`, left open and unanswered until the client gives
    up or dies. `fail(method, path)` answers 503 without forwarding. Every request is kept in
    `exchanges`, with the answer the API gave. Requests and answers are framed by
    Content-Length or chunked encoding, one at a time per connection (these clients do not
    pipeline)."""

    def __init__(self, target_url: str) -> None:
        host, _, port = target_url.removeprefix("http://").partition(":")
        self.target = (host, int(port.rstrip("/")))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.exchanges: list[Exchange] = []
        self._rules: list[list] = []  # [method, path, remaining, action]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        threading.Thread(target=self._accept, daemon=True).start()

    # --- what to lose ---------------------------------------------------------------------------

    def lose(self, method: str, path: str, times: int = 1, how: str = "reset") -> None:
        if how not in ("reset", "hold"):
            raise ValueError("how is reset or hold")
        with self._lock:
            self._rules.append([method.upper(), path, times, how])

    def fail(self, method: str, path: str, times: int = 1) -> None:
        with self._lock:
            self._rules.append([method.upper(), path, times, "fail"])

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def seen(self, method: str, path: str) -> list[Exchange]:
        with self._lock:
            return [e for e in self.exchanges if e.method == method.upper() and e.path == path]

    def wait_for(self, predicate, timeout: float = 30.0) -> None:
        """Until `predicate(exchanges)` holds (checked on every exchange), or AssertionError."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self.exchanges)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the proxy did not see the expected exchanges in time")
                self._changed.wait(left)

    def close(self) -> None:
        """Stop listening (new connections are refused) and reset every open connection."""
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        except OSError:
            pass
        self.listener.close()
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            reset_socket(sock)

    # --- the proxy --------------------------------------------------------------------------------

    def _action(self, method: str, path: str) -> str:
        with self._lock:
            for rule in self._rules:
                if rule[0] == method and rule[1] == path and rule[2] > 0:
                    rule[2] -= 1
                    return rule[3]
        return "answer"

    def _record(self, exchange: Exchange, **changes) -> None:
        with self._changed:
            for name, value in changes.items():
                setattr(exchange, name, value)
            if not any(e is exchange for e in self.exchanges):
                self.exchanges.append(exchange)
            self._changed.notify_all()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self._open.add(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        reader = _Reader(client)
        try:
            while True:
                request = reader.message(is_request=True)
                if request is None:
                    return
                head, body, method, path = request
                exchange = Exchange(method, path, body)
                self._record(exchange)
                action = self._action(method, path)
                if action == "fail":
                    payload = b'{"error":{"code":"proxy.unavailable","message":"the proxy failed this request"}}'
                    self._record(exchange, fate="failed", status=503)
                    client.sendall(
                        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                        b"content-length: %d\r\n\r\n%s" % (len(payload), payload)
                    )
                    continue
                if upstream is None:
                    upstream = socket.create_connection(self.target, timeout=60)
                    with self._lock:
                        self._open.add(upstream)
                    upstream_reader = _Reader(upstream)
                upstream.sendall(head + body)
                answer = upstream_reader.message(is_request=False, method=method)
                if answer is None:
                    return
                answer_head, answer_body, status, _ = answer
                if action == "answer":
                    self._record(exchange, status=status, answer=answer_body, fate="answered")
                    client.sendall(answer_head + answer_body)
                    if b"\r\nconnection: close" in answer_head.lower():
                        return
                    continue
                if action == "hold":
                    self._record(exchange, status=status, answer=answer_body, fate="held")
                    while client.recv(65536):  # until the client gives up (or the proxy closes)
                        pass
                    return
                self._record(exchange, status=status, answer=answer_body, fate="reset")
                return
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with self._lock:
                        self._open.discard(sock)
                    reset_socket(sock)


class _Reader:
    """HTTP/1.1 messages off a socket: (head bytes, body bytes, method or status, path)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise OSError("the connection closed mid-message")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise OSError("the connection closed mid-message")
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line + b"\r\n"

    def message(self, is_request: bool, method: str = "GET"):
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                if self.buffer:
                    raise OSError("the connection closed mid-message")
                return None
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        head += b"\r\n\r\n"
        first, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip().lower()
        kind: str | int  # a request's method, a response's status
        status = 0
        if is_request:
            verb, target, _ = first.split(" ", 2)
            kind, path = verb.upper(), target.split("?", 1)[0]
        else:
            kind = status = int(first.split(" ", 2)[1])
            path = ""
        no_body = not is_request and (method == "HEAD" or status in (204, 304) or 100 <= status < 200)
        if no_body:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", ""):
            chunks = []
            while True:
                size_line = self._line()
                chunks.append(size_line)
                size = int(size_line.split(b";")[0], 16)
                chunks.append(self._take(size + 2))
                if size == 0:
                    break
            body = b"".join(chunks)
        elif "content-length" in headers:
            body = self._take(int(headers["content-length"]))
        elif is_request:
            body = b""
        else:  # no framing: the body runs to the end of the connection
            while self._fill():
                pass
            body, self.buffer = self.buffer, b""
        return head, body, kind, path


def reset_socket(sock: socket.socket) -> None:
    """Close with RST: the peer sees the connection fail at once, not a half-open socket."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def start_partner_relay(
    chain: ChainEnv, workdir: Path, name: str = "University", **settings: str
) -> tuple[ProcessServer, LocalAccount]:
    """A partner's `veche-relay` on the city's dev chain: a fresh key the admin registers on chain
    (and funds for gas), its own SQLite database, the city's node and deployment file, and none
    of the city's keys or secrets; `settings` are more `VECHE_*` variables. Started; the caller
    stops it."""
    workdir.mkdir(parents=True, exist_ok=True)
    account = Account.create()
    admin = Sender(make_web3(chain.anvil.url), dev_accounts(1)[0])  # the deployer holds the admin role
    poll_book, _ = bind(admin.w3, chain.deployment)
    env = {
        **{k: v for k, v in chain.env.items() if k not in CITY_ONLY},
        "VECHE_DATABASE_URL": f"sqlite:///{workdir / 'relay.db'}",
        "VECHE_RELAYER_KEYSTORE": str(write_test_keystore(workdir / "relay-key.json", account)),
        **{key: "" for key in CITY_ONLY},
        **settings,
    }
    server = ProcessServer(env, log_path=workdir / "relay.log", program="veche_api.relay_cli")
    admin.send({"to": account.address, "value": 10**18})
    admin.transact(poll_book.functions.registerRelay(account.address, name, server.url))
    return server.start(), account


def remove_relay(chain: ChainEnv, address: str) -> None:
    """The admin revokes a relay's RELAYER_ROLE: it is no longer active, and no client picks it."""
    admin = Sender(make_web3(chain.anvil.url), dev_accounts(1)[0])
    poll_book, _ = bind(admin.w3, chain.deployment)
    admin.transact(poll_book.functions.revokeRole(poll_book.functions.RELAYER_ROLE().call(), address))


# What the city's API is given and a partner's relay is not (a relay that needed one would fail to start).
CITY_ONLY = (
    "VECHE_ISSUER_KEYSTORE",
    "VECHE_ADMIN_KEYSTORE",
    "VECHE_POINTS_ADMIN_KEYSTORE",
    "VECHE_SECRET_KEY",
    "VECHE_ADMIN_API_KEY",
)

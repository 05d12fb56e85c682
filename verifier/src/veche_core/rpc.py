"""A small JSON-RPC client: the verifier trusts a node for data, never for rules.

Plain `eth_getLogs` in block ranges (halved when a node refuses a range as too large), with
retries and backoff on transport errors. No web3: the verifier installs with few dependencies and
reads logs several times faster without web3's per-log formatting. A 100,000-ballot poll is
~330 MB of JSON: it is received with the standard library's http.client over one keep-alive
connection per thread (httpx spent ~3x more CPU per response) and parsed by msgspec (~35% less
CPU than the json module on these logs).
"""

from __future__ import annotations

import base64
import http.client
import re
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import msgspec

from .errors import VecheError

_BLOCK_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


class RpcError(VecheError, ConnectionError):
    """The node could not be reached, or answered with an error."""


def redact_url(url: str) -> str:
    """`url` as it may be shown in a message, a log line or a report: scheme, host and port only.
    A node's URL may carry credentials (`https://user:key@host/`) or a key in its path or query
    (`/v3/<key>`); none of them belongs in text that reaches other people."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "<an unparseable URL>"
    if ":" in host:
        host = f"[{host}]"
    return (
        f"{parts.scheme}://{host}"
        + (f":{port}" if port is not None else "")
        + ("/…" if parts.path.strip("/") or parts.query else "")
    )


class RpcClient:
    """Safe to share between threads (each gets its own connection); after a fork, make a new one."""

    def __init__(self, url: str, *, timeout: float = 30.0, retries: int = 4) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RpcError(f"{redact_url(url)!r} is not an http:// or https:// address")
        self.url = url
        self.shown_url = redact_url(url)
        self.retries = retries
        self._timeout = timeout
        self._connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._host, self._port = parts.hostname, parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if parts.username is not None:  # a node behind basic authentication: https://user:key@host/
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        self._local = threading.local()
        self._open: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._next_id = 0

    def close(self) -> None:
        with self._lock:
            for connection in self._open:
                connection.close()
            self._open.clear()
        self._local = threading.local()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connection_class(self._host, self._port, timeout=self._timeout)
            self._local.connection = connection
            with self._lock:
                self._open.append(connection)
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
            with self._lock:
                if connection in self._open:
                    self._open.remove(connection)

    def _post(self, body: Any, what: str) -> Any:
        """POST one JSON-RPC body, retrying transport errors with exponential backoff."""
        payload = msgspec.json.encode(body)
        delay = 0.2
        attempt = 0
        while True:
            reused = getattr(self._local, "connection", None) is not None
            try:
                connection = self._connection()
                connection.request("POST", self._path, payload, self._headers)
                reply = connection.getresponse()
                data = reply.read()
                if reply.status >= 400:
                    raise http.client.HTTPException(f"HTTP {reply.status} {reply.reason}")
                return msgspec.json.decode(data)  # malformed JSON: a ValueError, retried
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self._drop_connection()  # a fresh connection for the next attempt
                if reused and isinstance(exc, (ConnectionError, http.client.RemoteDisconnected)):
                    continue  # the node closed an idle keep-alive connection: reconnect at once
                if attempt == self.retries:
                    raise RpcError(f"{what} at {self.shown_url} failed: {exc}") from exc
                attempt += 1
                time.sleep(delay)
                delay *= 2

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        self._next_id += 1
        body = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params or []}
        answer = self._post(body, method)
        if not isinstance(answer, dict):
            raise RpcError(f"{method}: the node's answer is not a JSON-RPC object")
        if "error" in answer:
            error = answer["error"]
            raise RpcError(f"{method}: {error.get('message', error) if isinstance(error, dict) else error}")
        return answer.get("result")

    def batch(self, method: str, params_list: list[list[Any]]) -> list[Any]:
        """Many calls of one method in one JSON-RPC batch; answers in the order asked."""
        if not params_list:
            return []
        body = [{"jsonrpc": "2.0", "id": i, "method": method, "params": params} for i, params in enumerate(params_list)]
        answers = self._post(body, f"{method} batch")
        if not isinstance(answers, list) or len(answers) != len(body):
            raise RpcError(f"{method} batch: the node did not answer every call")
        by_id = {answer.get("id"): answer for answer in answers if isinstance(answer, dict)}
        results = []
        for i in range(len(body)):
            answer = by_id.get(i)
            if not isinstance(answer, dict) or "error" in answer:
                raise RpcError(f"{method} batch: {answer and answer.get('error')}")
            results.append(answer["result"])
        return results

    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def head_block(self) -> tuple[int, str]:
        """The latest block's number and hash, from one answer (so the two belong together)."""
        block = self.call("eth_getBlockByNumber", ["latest", False])
        try:
            number, block_hash = int(block["number"], 16), block["hash"]
        except (TypeError, KeyError, ValueError):
            raise RpcError("the node's latest block has no number or hash") from None
        if not (isinstance(block_hash, str) and _BLOCK_HASH.fullmatch(block_hash)):
            raise RpcError("the node's latest block hash is not 32 bytes of hex")
        return number, block_hash.lower()

    def block_timestamp(self, number: int) -> int:
        block = self.call("eth_getBlockByNumber", [hex(number), False])
        if block is None:
            raise RpcError(f"block {number} not found")
        return int(block["timestamp"], 16)

    def block_timestamps(self, numbers: list[int], chunk: int = 500) -> dict[int, int]:
        """Timestamps of many blocks, fetched in JSON-RPC batches."""
        stamps: dict[int, int] = {}
        for start in range(0, len(numbers), chunk):
            part = numbers[start : start + chunk]
            blocks = self.batch("eth_getBlockByNumber", [[hex(n), False] for n in part])
            for number, block in zip(part, blocks):
                if block is None:
                    raise RpcError(f"block {number} not found")
                stamps[number] = int(block["timestamp"], 16)
        return stamps

    def get_code(self, address: str) -> bytes:
        return bytes.fromhex(self.call("eth_getCode", [address, "latest"])[2:])

    def eth_call(self, to: str, data: bytes) -> bytes:
        return bytes.fromhex(self.call("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])[2:])

    def iter_logs(
        self,
        address: str | list[str],
        topics: list[Any] | None,
        from_block: int,
        to_block: int,
        *,
        page: int = 5_000,
    ) -> Iterator[dict[str, Any]]:
        """Every log in [from_block, to_block], in chain order, read in pages of blocks.

        A log of another contract or outside the page's blocks means the node ignored the filter:
        an RpcError, rather than foreign events read as ours. (A malformed log object is left for
        the decoders, which refuse it.)"""
        wanted = {address.lower()} if isinstance(address, str) else {a.lower() for a in address}
        start = from_block
        while start <= to_block:
            end = min(start + page - 1, to_block)
            try:
                logs = self.call(
                    "eth_getLogs",
                    [{"address": address, "topics": topics or [], "fromBlock": hex(start), "toBlock": hex(end)}],
                )
            except RpcError as exc:
                if end > start and _is_too_large(exc):
                    page = max(1, (end - start + 1) // 2)
                    continue
                raise
            for log in logs:
                _check_in_filter(log, wanted, start, end)
            yield from logs
            start = end + 1


def _check_in_filter(log: Any, addresses: set[str], start: int, end: int) -> None:
    try:
        address, block = log["address"].lower(), int(log["blockNumber"], 16)
    except (TypeError, KeyError, ValueError, AttributeError):
        return  # malformed: the decoders say so
    if address not in addresses:
        raise RpcError(f"the node answered eth_getLogs with a log of {log['address']}, which was not asked for")
    if not start <= block <= end:
        raise RpcError(f"the node answered eth_getLogs for blocks {start}-{end} with a log of block {block}")


def _is_too_large(exc: RpcError) -> bool:
    """The node's ways of saying an eth_getLogs range holds too many logs (geth, Infura, Alchemy,
    Erigon); a rate limit is not one of them."""
    text = str(exc).lower()
    if "rate limit" in text or "too many requests" in text:
        return False
    return any(word in text for word in ("too many", "too large", "more than", "limit", "range", "exceed"))

"""A small JSON-RPC client: the verifier trusts a node for data, never for rules.

Plain `eth_getLogs` in block ranges (halved when a node refuses a range as too large), with
retries and backoff on transport errors. No web3: the verifier installs with few dependencies and
reads logs several times faster without web3's per-log formatting.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx

from .errors import VecheError


class RpcError(VecheError, ConnectionError):
    """The node could not be reached, or answered with an error."""


class RpcClient:
    def __init__(self, url: str, *, timeout: float = 30.0, retries: int = 4) -> None:
        self.url = url
        self.retries = retries
        self._client = httpx.Client(timeout=timeout)
        self._next_id = 0

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "RpcClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _post(self, body: Any, what: str) -> Any:
        """POST one JSON-RPC body, retrying transport errors with exponential backoff."""
        delay = 0.2
        for attempt in range(self.retries + 1):
            try:
                reply = self._client.post(self.url, json=body)
                reply.raise_for_status()
                return reply.json()
            except (httpx.HTTPError, ValueError) as exc:
                if attempt == self.retries:
                    raise RpcError(f"{what} at {self.url} failed: {exc}") from exc
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
        body = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
            for i, params in enumerate(params_list)
        ]
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
        """Every log in [from_block, to_block], in chain order, read in pages of blocks."""
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
            yield from logs
            start = end + 1


def _is_too_large(exc: RpcError) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("too many", "too large", "limit", "range", "exceed"))

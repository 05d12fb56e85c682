"""The API's view of the chain: web3 contracts, custom-error decoding, the chain clock, and
synchronous transactions for administrative calls.

Administrative transactions (publish a result, add a reward, relay a key share) are rare and
answered synchronously, signed locally by `veche_node.contracts.Sender` under a lock. The
high-volume transactions (ballots, issuances, credits, points requests) go through the relay's
write-ahead outbox instead (the relay package), and so does createPoll, under the same lock: a
poll's issuer keys must be in the database before the poll can exist on chain.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any

from eth_utils import to_checksum_address
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted

from veche_core import calls, events
from veche_core.deployment import Deployment
from veche_core.rpc import RpcClient, RpcError
from veche_core.typed_data import Domain, city_points_domain, poll_book_domain
from veche_node.contracts import Sender, bind, contract_type
from veche_node.rpc import make_web3  # the relay takes it from here too

from .errors import ApiError


def _error_selectors() -> dict[bytes, str]:
    """Selector → name of every custom error the two contracts declare (from the compiled ABI)."""
    return {
        calls.selector(calls.abi_signature(entry)): entry["name"]
        for name in ("PollBook", "CityPoints")
        for entry in contract_type(name)["abi"]
        if entry.get("type") == "error"
    }


_SELECTORS: dict[bytes, str] | None = None


def revert_name(exc: BaseException) -> str | None:
    """The custom error's name (e.g. `PollBookNotOpen`) of a reverted call, if it has one."""
    global _SELECTORS
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if not isinstance(data, str) or not data.startswith("0x") or len(data) < 10:
        # web3 sometimes puts the raw data in the message only
        text = str(exc)
        idx = text.find("0x")
        if idx < 0:
            return None
        data = text[idx : idx + 10]
    if _SELECTORS is None:
        _SELECTORS = _error_selectors()
    try:
        selector = bytes.fromhex(data[2:10])
    except ValueError:
        return None
    return _SELECTORS.get(selector)


REVERTS = (ContractCustomError, ContractLogicError)


class Chain:
    """Contracts and clocks of one deployment, shared by the request handlers."""

    def __init__(self, rpc_url: str, deployment: Deployment, *, time_ttl: float = 0.5) -> None:
        self.url = rpc_url
        self.deployment = deployment
        self.w3 = make_web3(rpc_url)
        self.poll_book, self.city_points = bind(self.w3, deployment)
        self.chain_id = deployment.chain_id
        self.poll_book_address = to_checksum_address(deployment.poll_book)
        self.poll_book_bytes = bytes.fromhex(self.poll_book_address[2:])
        self.poll_domain: Domain = poll_book_domain(deployment.chain_id, deployment.poll_book)
        self.points_domain: Domain = city_points_domain(deployment.chain_id, deployment.city_points)
        self._time_ttl = time_ttl
        self._time: tuple[float, int] | None = None
        self._time_lock = threading.Lock()
        self._down_until = 0.0  # monotonic: after a failed read, the node is not asked again until then
        # One client for all threads (httpx's pool is thread-safe): a client per request
        # thread built a TLS context each time the server started a new worker thread (an eighth
        # of the token route's CPU samples under load).
        self._rpc = RpcClient(self.url, timeout=30, retries=2)

    def rpc(self) -> RpcClient:
        return self._rpc

    def check(self) -> bool:
        """At start-up: False when the node does not answer (the API starts anyway: it queues
        ballots durably and /health says the node is down; the relay checks the chain id
        before it signs anything); an error when it serves another chain."""
        try:
            actual = int(self._rpc.call("eth_chainId"), 16)
        except (RpcError, ValueError, TypeError):
            return False
        if actual != self.chain_id:
            raise RuntimeError(
                f"the node at {self._rpc.shown_url} serves chain {actual}, the deployment is on chain {self.chain_id}"
            )
        return True

    def cached_now(self) -> int | None:
        """The cached chain time while it is fresh, else None (the caller then calls `now`,
        which reads the node: off the event loop, as it may block)."""
        cached = self._time
        if cached and time.monotonic() - cached[0] < self._time_ttl:
            return cached[1]
        return None

    def now(self) -> int:
        """The chain's clock: the latest block's timestamp (reused for `time_ttl` seconds).

        While the node is unreachable, the last timestamp read runs on with the local clock:
        the durable relay keeps accepting ballots (and sends them when the node is back), and
        the contract still enforces the window, so a ballot accepted just past the close ends
        `failed` with `poll.closed`. After a failed read the node is asked again only after a
        second, so that each request does not wait for the client's retries."""
        cached = self._time
        mono = time.monotonic()
        if cached and mono - cached[0] < self._time_ttl:
            return cached[1]
        block = None
        if mono >= self._down_until or cached is None:
            try:
                block = self.rpc().call("eth_getBlockByNumber", ["latest", False])
            except Exception:
                self._down_until = time.monotonic() + 1.0
        if block is None:
            if cached is None:
                raise ApiError("chain.unavailable", 503, "the chain node is not reachable")
            return cached[1] + int(time.monotonic() - cached[0])
        value = int(block["timestamp"], 16)
        with self._time_lock:
            self._time = (time.monotonic(), value)
        return value

    def logs(self, contract: str, topics: list[Any]) -> list[events.DecodedEvent]:
        rpc = self.rpc()
        latest = rpc.block_number()
        out = []
        for raw in rpc.iter_logs(contract, topics, self.deployment.start_block, latest):
            try:
                out.append(events.decode_log(raw))
            except Exception:  # not one of ours (or malformed): the verifier lists such logs
                continue
        return out

    def resident_logs(self, resident: str) -> list[events.DecodedEvent]:
        specs = (events.POINTS_CREDITED, events.REWARD_REDEEMED, events.POINTS_DONATED)
        return self.logs(self.deployment.city_points, [[s.topic for s in specs], events.address_topic(resident)])


class AdminSender:
    """Synchronous administrative transactions from one local key (nonce kept by Sender)."""

    def __init__(self, chain: Chain, account) -> None:
        self.chain = chain
        self.account = account
        self.address = account.address
        self._sender: Sender | None = None
        self._lock = threading.Lock()

    @contextmanager
    def exclusive(self):
        """Hold the key for a transaction sent another way (poll creation's write-ahead log);
        the Sender re-reads its nonce afterwards."""
        with self._lock:
            try:
                yield
            finally:
                self._sender = None

    def estimate(self, function) -> int:
        """The gas limit of a call (as Sender: the estimate + 20%), its revert as a stable error."""
        try:
            return int(function.estimate_gas({"from": self.address}) * 1.2)
        except REVERTS as exc:
            name = revert_name(exc) or "Reverted"
            raise ApiError(f"chain.{name}", 409, f"the contract refused the call: {name}") from None
        except Exception:
            raise ApiError("chain.unavailable", 503, "the chain node is not reachable") from None

    def transact(self, function) -> dict:
        """Simulate (to turn a revert into a stable error code), then send and wait."""
        with self._lock:
            try:
                function.call({"from": self.address})
            except REVERTS as exc:
                name = revert_name(exc) or "Reverted"
                raise ApiError(f"chain.{name}", 409, f"the contract refused the call: {name}") from None
            except Exception:
                raise ApiError("chain.unavailable", 503, "the chain node is not reachable") from None
            try:
                if self._sender is None:
                    self._sender = Sender(self.chain.w3, self.account)
                return self._sender.transact(function)
            except REVERTS as exc:
                self._sender = None  # re-read the nonce next time
                name = revert_name(exc) or "Reverted"
                raise ApiError(f"chain.{name}", 409, f"the contract refused the call: {name}") from None
            except (TimeExhausted, RuntimeError, OSError, ValueError) as exc:
                self._sender = None
                raise ApiError("chain.unavailable", 503, f"transaction failed: {type(exc).__name__}") from None

"""Talking to a node: one JSON-RPC call, and web3 for any Veche chain.

The product's only one-call JSON-RPC helper and only web3 factory: the node tooling, the API and
the test driver all use these. The call is made with the protocol core's `RpcClient` (the
verifier's own client), so there is one JSON-RPC implementation in the tree.
"""

from __future__ import annotations

from typing import Any

from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware

from veche_core.rpc import RpcClient, RpcError, redact_url

from .errors import NodeRpcError


def rpc(url: str, method: str, params: list[Any] | None = None, *, timeout: float = 10.0) -> Any:
    """One JSON-RPC call, not retried (callers that wait for a node poll it themselves);
    NodeRpcError on a transport failure or an error answer, naming the node without credentials."""
    try:
        with RpcClient(url, timeout=timeout, retries=0) as client:
            return client.call(method, params)
    except RpcError as exc:
        shown, message = redact_url(url), str(exc)
        raise NodeRpcError(message if shown in message else f"{message} (at {shown})") from exc


def make_web3(url: str, *, timeout: float = 30.0) -> Web3:
    """web3 for any Veche chain: Clique blocks (geth) carry 97 bytes of extra data (vanity and
    seal) that web3 refuses without the proof-of-authority middleware; anvil's blocks do not
    mind it. Every client of a network needs it, the API's relayer included."""
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3

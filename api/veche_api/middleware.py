"""The ASGI layers both apps serve behind (the city's API, main.py; a relay, relay_app.py): body
limits, connections closed after a ballot or a token request, and the fast path of the two
hottest routes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from . import errors

#: A route served without FastAPI's machinery: (its body's model, its handler, its status).
FastRoute = tuple[type[BaseModel], Callable[[Any, Any], Awaitable[dict]], int]


class BodyLimit:
    """Refuse bodies over the limit with 413, and bodies not complete `timeout` seconds after
    they began with 408, before the app sees them (pure ASGI)."""

    def __init__(self, app, limit: int, timeout: float = 30.0, large: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout
        self.large = large or {}  # paths allowed a larger body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        limit = self.large.get(scope["path"], self.limit)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await self._refuse(send, 413, "request.too_large", f"the body exceeds {limit} bytes")
        chunks, size = [], 0
        deadline = asyncio.get_running_loop().time() + self.timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - asyncio.get_running_loop().time()))
            except TimeoutError:
                return await self._refuse(
                    send, 408, "request.timeout", f"the body did not arrive within {self.timeout:g} s"
                )
            if message["type"] != "http.request":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await self._refuse(send, 413, "request.too_large", f"the body exceeds {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return await self.app(scope, _replaying(b"".join(chunks), receive), send)

    @staticmethod
    async def _refuse(send, status: int, code: str, message: str):
        payload = json.dumps(errors.error_body(code, message)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _replaying(body: bytes, receive):
    """An ASGI `receive` that hands the app a body already read, then defers to the real one."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class EndConnection:
    """Answers to a token request or a ballot close their connection (`connection: close`), so
    the client's next request goes on a new one: a browser, which pools connections and cannot
    be asked for a fresh one, never sends its ballot, or a request naming the resident, on the
    connection of a token request, nor anything after a ballot on the ballot's connection
    (docs/threat-model.md, What the operator's logs can link). Pure ASGI."""

    PATHS = ("/tokens", "/ballots")

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.PATHS:
            return await self.app(scope, receive, send)

        async def closing(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        return await self.app(scope, receive, closing)


class FastPost:
    """`POST /ballots` and `POST /tokens` without FastAPI's per-request machinery (routing,
    dependency solving, a thread-pool hop, response models): at hundreds of requests a second
    that machinery cost more CPU than a ballot's cryptography. The body is parsed and validated
    exactly as the FastAPI route does it (`json.loads`, then the same pydantic model), and
    anything that does not validate — or is not `application/json` — is handed to the FastAPI
    route unchanged, so every error answer stays byte for byte the route's own. Sits inside
    BodyLimit."""

    def __init__(self, app, routes: dict[str, FastRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope, receive, send):
        route = self.routes.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if route is None:
            return await self.app(scope, receive, send)
        model, handler, created = route
        content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        body_in = None
        if content_type.split(b";")[0].strip().lower() == b"application/json":
            try:
                body_in = model.model_validate(json.loads(body))
            # JSONDecodeError is a ValueError; JSON nested deeper than the interpreter's
            # recursion limit is a RecursionError, which the FastAPI route answers with 400.
            except (ValueError, ValidationError, RecursionError):
                body_in = None
        if body_in is None:
            return await self.app(scope, _replaying(body, receive), send)
        try:
            status, payload, headers = created, await handler(scope["app"].state.veche, body_in), []
        except errors.ApiError as exc:
            status, payload = exc.status, errors.error_body(exc.code, exc.message)
            headers = [(b"retry-after", b"60")] if exc.status == 429 else []
        data = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-length", str(len(data)).encode()),
                    (b"content-type", b"application/json"),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})

"""The app factory. `veche-api run` (server.py) serves it; it reads Settings from the
environment; tests pass their own Settings.

Start-up: open the database (create tables), load the keystores, bind the deployment's
contracts, check the node's chain id, then start the relay worker, whose first pass is the
crash recovery (it reconciles every transaction the previous process left unfinished).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from pydantic import ValidationError
from pydantic.json_schema import models_json_schema

from veche_core.deployment import Deployment
from veche_core.typed_data import DigestSigner

from . import errors, tally
from .chain import AdminSender, Chain
from .core.config import Settings
from .core.db import Database
from .core.logs import configure_logging, publish_addresses
from .core.security import Keys
from .deps import AppState
from .metrics import Metrics
from .ratelimit import RateLimiter
from .relay import Relay
from .routes import admin, ballots, ceremony, health, points, polls, relays, residents, results, tokens, web
from .schemas import DISTRICT_MARK, BallotIn, IssuanceRequestIn, schema_models
from .writer import GroupWriter

log = logging.getLogger("veche_api")

LARGE_BODY_PATHS = {"/admin/residents/import": 5_000_000}


class BodyLimit:
    """Refuse bodies over the limit with 413, and bodies not complete `timeout` seconds after
    they began with 408, before the app sees them (pure ASGI)."""

    def __init__(self, app, limit: int, timeout: float = 30.0) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        limit = LARGE_BODY_PATHS.get(scope["path"], self.limit)
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

    ROUTES = {
        "/ballots": (BallotIn, ballots.accept_ballot, 202),
        "/tokens": (IssuanceRequestIn, tokens.issue_token, 201),
    }

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        route = self.ROUTES.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
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


class VecheApp(FastAPI):
    """FastAPI, with its OpenAPI schema (`openapi`) made exact in two ways:
    - the deployment's districts are the enum of every district field: a district outside
      Settings.districts is refused (422), so the schema says which are valid;
    - integer bounds are the models' own: FastAPI's OpenAPI model types minimum and maximum as
      floats, so 2**63 - 1 came out as 9.223372036854776e18, which is 2**63 (and a generator
      trusting it sent 2**62 + 95 as a valid stock)."""

    def __init__(self, *, districts: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.districts = districts

    def openapi(self) -> dict[str, Any]:
        document = self.openapi_schema
        if document is None:
            document = super().openapi()  # generates and caches self.openapi_schema
            exact = models_json_schema(
                [(model, "validation") for model in schema_models()], ref_template="#/components/schemas/{model}"
            )[1]["$defs"]
            for name, component in document.get("components", {}).get("schemas", {}).items():
                if name in exact:
                    _exact_bounds(component, exact[name])
            stack: list[Any] = [document]
            while stack:
                node = stack.pop()
                if isinstance(node, dict):
                    if node.pop(DISTRICT_MARK, False):
                        node["enum"] = list(self.districts)
                    stack.extend(node.values())
                elif isinstance(node, list):
                    stack.extend(node)
        return document


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _exact_bounds(node, exact) -> None:
    """Walk FastAPI's rendering of a schema beside pydantic's own and take pydantic's integers."""
    if isinstance(node, dict) and isinstance(exact, dict):
        for key, value in node.items():
            if key in _BOUNDS and isinstance(exact.get(key), int) and value == float(exact[key]):
                node[key] = exact[key]
            else:
                _exact_bounds(value, exact.get(key))
    elif isinstance(node, list) and isinstance(exact, list) and len(node) == len(exact):
        for item, exact_item in zip(node, exact):
            _exact_bounds(item, exact_item)


def build_state(settings: Settings) -> AppState:
    db = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    db.create_all()
    keys = Keys.load(settings)
    deployment = Deployment.load(settings.deployment_file)
    publish_addresses(
        *(k.address for k in (keys.relayer, keys.issuer, keys.admin, keys.points_admin)),
        deployment.poll_book,
        deployment.city_points,
    )
    chain = Chain(settings.rpc_url, deployment, time_ttl=settings.chain_time_ttl)
    if not chain.check():
        log.warning(
            "the chain node at %s does not answer: starting anyway (GET /health reports it)", chain.rpc().shown_url
        )
    metrics = Metrics()
    admin = AdminSender(chain, keys.admin)
    return AppState(
        settings=settings,
        db=db,
        chain=chain,
        keys=keys,
        metrics=metrics,
        admin=admin,
        points_admin=AdminSender(chain, keys.points_admin) if keys.points_admin is not keys.admin else admin,
        issuance_limit=RateLimiter("issuance", settings.issuance_rate_per_minute),
        ballot_limit=RateLimiter("ballot", settings.ballot_rate_per_minute),
        writer=GroupWriter(db),
        receipt_signer=DigestSigner(keys.relayer.key),
        relayer_address=keys.relayer.address,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Synchronous routes run in AnyIO's thread pool (40 threads by default). Their work is
        # CPU under the GIL (a blind signature is ~1 ms), so 40 threads only add switching:
        # measured, the token route used ~2x its CPU with 40 threads.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.sync_threads
        state = build_state(settings)
        app.state.veche = state
        tally.start_count_workers(settings)
        if settings.relay_enabled:
            state.relay = Relay(settings, state.db, state.chain.deployment, state.keys, state.metrics)
            state.relay.start()
        # The start-up heap (web3, pydantic, the contracts' ABIs) lives as long as the process:
        # frozen out of the cyclic collector, a full collection no longer scans it. Measured
        # during a bulk import under load, each full collection paused the process ~0.4 s
        # before, ~0.07 s after.
        gc.collect()
        gc.freeze()
        log.info("veche API ready: chain %d, relayer %s", state.chain.chain_id, state.keys.relayer.address)
        try:
            yield
        finally:
            if state.relay is not None:
                state.relay.stop()
            state.writer.stop()
            state.db.dispose()

    app = VecheApp(
        districts=settings.districts,
        title="Veche city API",
        version="1.0.0",
        description="Enrolment, blind token issuance, a durable ballot relay, points and results.",
        lifespan=lifespan,
        # Prometheus /metrics is the API's telemetry; FastAPI's built-in OpenTelemetry check
        # read the environment on every request (~3% of the CPU of a ballot).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    errors.install(app)
    for module in (health, relays, residents, polls, ceremony, tokens, ballots, points, results, admin, web):
        app.include_router(module.router)
    app.add_middleware(FastPost)
    app.add_middleware(EndConnection)
    app.add_middleware(
        BodyLimit, limit=settings.max_body_bytes, timeout=settings.body_timeout
    )  # outermost: bounds the body first
    return app

"""The app factory. `veche-api run` (server.py) serves it; it reads Settings from the
environment; tests pass their own Settings.

Start-up: open the database (create tables), load the keystores, bind the deployment's
contracts, check the node's chain id, then start the relay worker, whose first pass is the
crash recovery (it reconciles every transaction the previous process left unfinished).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
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
from .middleware import BodyLimit, EndConnection, FastPost, FastRoute
from .ratelimit import RateLimiter
from .relay_app import serving
from .routes import admin, ballots, ceremony, health, points, polls, relays, residents, results, tokens, web
from .schemas import DISTRICT_MARK, BallotIn, IssuanceRequestIn, schema_models
from .writer import GroupWriter

log = logging.getLogger("veche_api")

LARGE_BODY_PATHS = {"/admin/residents/import": 5_000_000}


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
        state = build_state(settings)
        app.state.veche = state
        tally.start_count_workers(settings)
        async with serving(state, settings, state.keys):
            log.info("veche API ready: chain %d, relayer %s", state.chain.chain_id, state.keys.relayer.address)
            yield

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
    fast: dict[str, FastRoute] = {
        "/ballots": (BallotIn, ballots.accept_ballot, 202),
        "/tokens": (IssuanceRequestIn, tokens.issue_token, 201),
    }
    app.add_middleware(FastPost, routes=fast)
    app.add_middleware(EndConnection)
    app.add_middleware(
        BodyLimit, limit=settings.max_body_bytes, timeout=settings.body_timeout, large=LARGE_BODY_PATHS
    )  # outermost: bounds the body first
    return app

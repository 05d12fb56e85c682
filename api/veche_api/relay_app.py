"""`veche-relay`'s app: a relay the city does not run (docs/operations.md, "Running a relay").

The same code as the city's embedded relay — the ballot route (routes/ballots.py), the durable
write-ahead relay (relay/), health and metrics — with its own database (SQLite or PostgreSQL),
its own relayer key (core.security.RelayKeys) and its own rate limits, and nothing else: no
enrolment register, no issuer keys, no admin key. It knows the polls from the chain alone
(chain_polls.py). Its key must hold PollBook's RELAYER_ROLE (`veche-node relay add`).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from veche_core.deployment import Deployment
from veche_core.typed_data import DigestSigner

from . import errors
from .chain import Chain
from .core.config import Settings
from .core.db import Database
from .core.logs import configure_logging, publish_addresses
from .core.security import Keys, RelayKeys
from .deps import RelayState
from .metrics import Metrics
from .middleware import BodyLimit, EndConnection, FastPost
from .ratelimit import RateLimiter
from .relay import Relay
from .routes import ballots, health
from .schemas import BallotIn
from .writer import GroupWriter

log = logging.getLogger("veche_api")


def build_relay_state(settings: Settings, keys: RelayKeys) -> RelayState:
    db = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    db.create_all()
    deployment = Deployment.load(settings.deployment_file)
    publish_addresses(keys.relayer.address, deployment.poll_book, deployment.city_points)
    chain = Chain(settings.rpc_url, deployment, time_ttl=settings.chain_time_ttl)
    if not chain.check():
        log.warning(
            "the chain node at %s does not answer: starting anyway (GET /health reports it)", chain.rpc().shown_url
        )
    return RelayState(
        settings=settings,
        db=db,
        chain=chain,
        metrics=Metrics(),
        ballot_limit=RateLimiter("ballot", settings.ballot_rate_per_minute),
        writer=GroupWriter(db),
        receipt_signer=DigestSigner(keys.relayer.key),
        relayer_address=keys.relayer.address,
    )


@asynccontextmanager
async def serving(state: RelayState, settings: Settings, keys: Keys | RelayKeys) -> AsyncIterator[None]:
    """Around serving, in both apps: the thread pool's size, the relay's worker (it runs in the
    one process that holds the relay lock), the heap frozen; on the way out the worker, the
    writer and the database stopped."""
    # Synchronous routes run in AnyIO's thread pool (40 threads by default). Their work is
    # CPU under the GIL (a blind signature is ~1 ms), so 40 threads only add switching:
    # measured, the token route used ~2x its CPU with 40 threads.
    anyio.to_thread.current_default_thread_limiter().total_tokens = settings.sync_threads
    if settings.relay_enabled:
        state.relay = Relay(settings, state.db, state.chain.deployment, keys, state.metrics)
        state.relay.start()
    # The start-up heap (web3, pydantic, the contracts' ABIs) lives as long as the process:
    # frozen out of the cyclic collector, a full collection no longer scans it. Measured
    # during a bulk import under load, each full collection paused the process ~0.4 s
    # before, ~0.07 s after.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        if state.relay is not None:
            state.relay.stop()
        state.writer.stop()
        state.db.dispose()


def create_relay_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        keys = RelayKeys.load(settings)
        state = build_relay_state(settings, keys)
        app.state.veche = state
        async with serving(state, settings, keys):
            log.info("veche relay ready: chain %d, relayer %s", state.chain.chain_id, keys.relayer.address)
            yield

    app = FastAPI(
        title="Veche relay",
        version="1.0.0",
        description="Takes residents' signed ballots, acknowledges each with a signed receipt and posts them to "
        "PollBook, durably. Holds no key of the city's.",
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    errors.install(app)
    for module in (health, ballots):
        app.include_router(module.router)
    app.add_middleware(FastPost, routes={"/ballots": (BallotIn, ballots.accept_ballot, 202)})
    app.add_middleware(EndConnection)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, timeout=settings.body_timeout)  # outermost
    return app

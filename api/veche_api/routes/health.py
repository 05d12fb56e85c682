"""Operations: health and Prometheus metrics."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from ..deps import RelayStateDep
from ..metrics import queue_state
from ..relay.health import RelayState, relay_health
from ..schemas import DeploymentOut, HealthOut

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "Degraded: this process has no database or no chain node."}},
)
def read_health(state: RelayStateDep) -> JSONResponse:
    """`ok`, or `degraded` with the reasons in `problems`. HTTP 503 when this process cannot
    serve (its database or its node does not answer), so that a load balancer sends requests to
    another; a relay problem is the same for every process sharing the database, so it is
    reported with 200. The relay fields are those the process running the relay wrote to the
    database, whichever process answers. Nothing here names a URL or a credential."""
    problems: list[str] = []
    body: dict[str, Any] = {"status": "ok", "problems": problems}  # HealthOut, built as it is sent
    relay: RelayState | None = None
    try:
        with state.db.session() as session:
            session.execute(text("SELECT 1"))
        body["database"] = {"ok": True}
        queue, lag = queue_state(state.db)
        relay = relay_health(state.db)
    except Exception:
        body["database"] = {"ok": False}
        queue, lag = {}, None
        problems.append("the database does not answer")
    try:
        rpc = state.chain.rpc()
        number = rpc.block_number()
        stamp = rpc.block_timestamp(number)
        body["chain"] = {
            "ok": True,
            "chainId": state.chain.chain_id,
            "blockNumber": number,
            "lastBlockAge": max(0, int(time.time()) - stamp),
        }
    except Exception:
        body["chain"] = {"ok": False, "chainId": state.chain.chain_id}
        problems.append("the chain node does not answer")
    body["relay"] = {"lagSeconds": lag, "queue": queue, **(relay or {})}
    if relay:
        if not relay["running"]:
            problems.append("no process runs the relay (its heartbeat is missing or stale)")
        elif relay["lastError"]:
            problems.append("the relay's last pass failed")
        if relay["quarantined"]:
            problems.append(f"{relay['quarantined']} relay work item(s) quarantined")
    if problems:
        body["status"] = "degraded"
    down = not (body["database"]["ok"] and body["chain"]["ok"])
    return JSONResponse(body, status_code=503 if down else 200)


@router.get("/metrics", response_class=Response)
def read_metrics(state: RelayStateDep) -> Response:
    return Response(state.metrics.render(state.db), media_type="text/plain; version=0.0.4")


@router.get("/deployment", response_model=DeploymentOut)
def read_deployment(state: RelayStateDep) -> JSONResponse:
    """The deployment file (chain id, contract addresses, start block): what clients sign for and
    what an observer gives `veche-verify --deployment`."""
    return JSONResponse(json.loads(state.chain.deployment.to_json()))

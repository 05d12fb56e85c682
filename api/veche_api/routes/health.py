"""Operations: health and Prometheus metrics."""

from __future__ import annotations

import json
import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from ..deps import StateDep
from ..metrics import queue_state

router = APIRouter(tags=["health"])


@router.get("/health")
def read_health(state: StateDep) -> JSONResponse:
    body: dict = {"status": "ok"}
    try:
        with state.db.session() as session:
            session.exec(text("SELECT 1"))
        body["database"] = {"ok": True}
        queue, lag = queue_state(state.db)
    except Exception:
        body["database"] = {"ok": False}
        queue, lag = {}, None
    try:
        rpc = state.chain.rpc()
        number = rpc.block_number()
        stamp = rpc.block_timestamp(number)
        body["chain"] = {"ok": True, "chainId": state.chain.chain_id, "blockNumber": number,
                         "lastBlockAge": max(0, int(time.time()) - stamp)}
    except Exception:
        body["chain"] = {"ok": False, "chainId": state.chain.chain_id}
    relay = state.relay
    body["relay"] = {
        "running": bool(relay and relay._thread and relay._thread.is_alive()),
        "lagSeconds": lag,
        "queue": queue,
        "lastError": getattr(relay, "last_error", None),
    }
    if not (body["database"]["ok"] and body["chain"]["ok"]):
        body["status"] = "degraded"
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)


@router.get("/metrics", response_class=Response)
def read_metrics(state: StateDep) -> Response:
    return Response(state.metrics.render(state.db), media_type="text/plain; version=0.0.4")


@router.get("/deployment")
def read_deployment(state: StateDep) -> JSONResponse:
    """The deployment file (chain id, contract addresses, start block): what clients sign for and
    what an observer gives `veche-verify --deployment`."""
    return JSONResponse(json.loads(state.chain.deployment.to_json()))

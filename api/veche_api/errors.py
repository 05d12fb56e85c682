"""One error type for every rejection, and the handlers that render it.

Every rejection is `{"error": {"code": "<area>.<problem>", "message": "..."}}` with a stable
code (clients branch on the code, never on the message) and an HTTP status that fits it.
Unexpected exceptions become `internal` (500) without any detail in the answer.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from .schemas import ErrorOut

log = logging.getLogger("veche_api")


class ApiError(Exception):
    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


# What each error status means here, for the OpenAPI schema. Every error answer is an ErrorOut.
ERROR_STATUSES = {
    400: "The body could not be parsed (not UTF-8, or JSON nested too deep): `request.bad`.",
    401: "The admin key (X-Admin-Key) is missing or wrong: `auth.admin_required`.",
    403: "The resident is not in the poll's audience: `resident.ineligible`.",
    404: "Nothing here by that id or address, or the contract refused the read.",
    409: "The request conflicts with the state of the poll, the resident, a nonce or the contract.",
    413: "The body is larger than the limit: `request.too_large`.",
    422: "The request is invalid: `request.invalid` (schema), or a rule of the route.",
    429: "Too many requests: `rate_limited`; retry after the seconds of Retry-After.",
    503: "The chain node is not reachable (`chain.unavailable`), or the work is not finished yet.",
}


def error_responses(*statuses: int) -> dict:
    """`responses=` for a route: each status with its meaning and the ErrorOut body."""
    out = {}
    for status in statuses:
        out[status] = {"model": ErrorOut, "description": ERROR_STATUSES[status]}
        if status == 429:
            out[status]["headers"] = {
                "Retry-After": {"description": "seconds to wait", "required": True, "schema": {"type": "integer"}}
            }
    return out


def _response(code: str, status: int, message: str, headers=None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


_HTTP_CODES = {
    400: "request.bad",
    401: "auth.required",
    403: "auth.forbidden",
    404: "http.not_found",
    405: "http.method_not_allowed",
    406: "http.not_acceptable",
    413: "request.too_large",
    415: "request.unsupported_media_type",
    429: "rate_limited",
}


def _allowed(request: Request) -> set[str]:
    """Every method some route takes at this path: Starlette's 405 names only the first route's
    (a path with a GET route and a POST route, `/polls/{id}/ceremony`, answered `Allow: GET`)."""
    methods: set[str] = set()
    routes = list(request.app.router.routes)
    while routes:
        route = routes.pop()
        included = getattr(route, "original_router", None)  # FastAPI >= 0.165 wraps included routers
        if included is not None:
            routes.extend(included.routes)
            continue
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return methods


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": "60"} if exc.status == 429 else None
        return _response(exc.code, exc.status, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return _response("request.invalid", 422, "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http.{exc.status_code}")
        detail = exc.detail if isinstance(exc.detail, str) else "error"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            given = {m.strip() for m in (headers or {}).get("Allow", "").split(",") if m.strip()}
            headers = {**(headers or {}), "Allow": ", ".join(sorted(given | _allowed(request)))}
        return _response(code, exc.status_code, detail, headers)

    @app.exception_handler(Exception)
    async def _internal(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", type(exc).__name__)
        return _response("internal", 500, "internal error")

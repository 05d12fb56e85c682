"""The web pages, built from web/ by `make web` (node web/build.mjs → web/dist/): the resident's
page at /, the public results page at /results, their assets under /assets/. The pages run the
whole client side of the protocol in the browser and talk to this same API.

Also the receipt-code lookup the pages use: a receipt's short code is the first 12 hex digits of
its ballot hash; /receipt-codes/{code} answers the full hash(es) it names, for GET /ballots/{hash}.

When the pages are not built, they answer 503 with a sentence saying how to build them.
VECHE_WEB_DIST names another build directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, PlainTextResponse, Response
from sqlmodel import select

from ..deps import SessionDep
from ..errors import ApiError, error_responses
from ..models import Ballot as BallotRow
from ..schemas import ReceiptCodeOut

router = APIRouter(tags=["web"])

# api/veche_api/routes/web.py → the repository root (the package is installed editable).
DEFAULT_DIST = Path(__file__).resolve().parents[3] / "web" / "dist"
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

# The pages load only their own scripts and styles and talk only to this origin. libsodium
# compiles its WebAssembly module at start-up ('wasm-unsafe-eval' allows that and nothing else).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

NOT_BUILT = "The web pages are not built: run `make web` (node web/build.mjs), then reload.\n"


def dist_dir() -> Path:
    return Path(os.environ.get("VECHE_WEB_DIST") or DEFAULT_DIST)


def _page(name: str) -> Response:
    path = dist_dir() / name
    if not path.is_file():
        return PlainTextResponse(NOT_BUILT, status_code=503)
    return FileResponse(path, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


@router.get("/", response_class=Response, include_in_schema=False)
def resident_page() -> Response:
    return _page("index.html")


@router.get("/results", response_class=Response, include_in_schema=False)
def results_page() -> Response:
    return _page("results.html")


@router.get("/assets/{name}", response_class=Response, include_in_schema=False)
def asset(name: str) -> Response:
    if not ASSET_NAME.match(name) or ".." in name:
        raise ApiError("http.not_found", 404, "no such asset")
    assets = dist_dir() / "assets"
    if not assets.is_dir():
        return PlainTextResponse(NOT_BUILT, status_code=503)
    path = assets / name
    if not path.is_file():
        raise ApiError("http.not_found", 404, "no such asset")
    media_type = MEDIA_TYPES.get(path.suffix, "application/octet-stream")
    return FileResponse(
        path, media_type=media_type, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    )


@router.get("/favicon.ico", response_class=Response, include_in_schema=False)
def favicon() -> Response:
    return asset("favicon.svg")


@router.get("/receipt-codes/{code}", response_model=ReceiptCodeOut, responses=error_responses(404, 422))
def receipt_code(session: SessionDep, code: str = PathParam(pattern=r"^[0-9a-fA-F]{12}$")) -> ReceiptCodeOut:
    """The ballot hashes that start with a receipt's short code (usually exactly one)."""
    prefix = "0x" + code.lower()
    # A range on the unique ballot_hash index: every hash starting with prefix (hashes are lower-case hex).
    rows = session.exec(
        select(BallotRow.ballot_hash)
        .where(BallotRow.ballot_hash >= prefix, BallotRow.ballot_hash < prefix + "g")
        .limit(10)
    ).all()
    if not rows:
        raise ApiError("receipt_code.unknown", 404, "no ballot with this receipt code was accepted here")
    return ReceiptCodeOut(code="-".join(code.lower()[i : i + 4] for i in range(0, 12, 4)), ballot_hashes=list(rows))

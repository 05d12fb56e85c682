"""The API's logging, configured here and only here: what is logged, where, and what never is.

`configure_logging(settings)` runs in `veche-api run` (before uvicorn starts: the supervisor's
lines too) and in `create_app` (so `uvicorn --factory veche_api.main:create_app` gets the same,
replacing uvicorn's own handlers and formats). One handler on the root logger, to stderr:
- `veche_api.*` and `uvicorn.*` at `VECHE_LOG_LEVEL` (default INFO: the relay's `repriced` and
  `quarantined` lines are meant for operators); every other library from WARNING only, whatever
  the level (and whatever level it sets itself): their DEBUG and INFO lines quote RPC answers and
  SQL, chain data that names residents' addresses.
- uvicorn's access log off unless `VECHE_ACCESS_LOG=true`; then each line is
  `"POST /ballots HTTP/1.1" 202` and no more: no client address or port (a port joins the
  requests of one connection: a token request to the ballot that follows), no query string,
  and every long run of hex in the path (an identity address in `/points/0x…`, a ballot hash)
  becomes `{hex}`.

Messages quote URLs, exceptions and tracebacks, and those can carry the node's credentials
(`http://user:key@host/`), by accident a configured secret, or a resident's address (a
database error quotes the row it refused). A filter on the handler rewrites each record before
it is formatted: the user-info of every URL becomes `***@`, the configured secrets (keystore
password, master key, admin API key) become `***`, and every 20-byte address but the
operator's own (its keys and contracts: `publish_addresses`) becomes `0x{address}`. The
traceback is formatted and scrubbed here too (handlers reuse `record.exc_text`). The lines are
also written not to need it: no log call in the API or its relay names a resident.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Settings

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
OURS = ("veche_api", "uvicorn", "uvicorn.error", "uvicorn.asgi")
ACCESS = "uvicorn.access"
HANDLER_NAME = "veche"

_USERINFO = re.compile(r"(?<=://)[^/\s@'\"]+@")
_LONG_HEX = re.compile(r"(?:0[xX])?[0-9a-fA-F]{32,}")
_ADDRESS = re.compile(r"(?<![0-9a-zA-Z])(?:0[xX])?([0-9a-fA-F]{40})(?![0-9a-zA-Z])")
_PUBLIC: set[str] = set()  # lower-case hex of the operator's own addresses
_FORMATTER = logging.Formatter()


class SecretFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.secrets: tuple[str, ...] = ()

    def add(self, secrets: tuple[str, ...]) -> None:
        # Longest first, so that a secret containing another is replaced whole; short values
        # (a test database's password) would scrub ordinary words.
        found = {s for s in (*self.secrets, *secrets) if len(s) >= 8}
        self.secrets = tuple(sorted(found, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave the record to the handler's own error path
            return True
        record.msg, record.args = scrub(message, self.secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, self.secrets)
        return True


class AccessFilter(logging.Filter):
    """uvicorn's access record (client address, method, path with query, HTTP version, status)
    rewritten to method, path without query and with long hex runs replaced, version, status."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            _client, method, path, version, status = args
            record.msg, record.args = '"%s %s HTTP/%s" %s', (method, access_path(str(path)), version, status)
        else:  # not the record uvicorn makes: keep nothing that could be an address or a port
            record.msg, record.args = "access record of an unknown shape", None
        return True


def ours_or_warning(record: logging.LogRecord) -> bool:
    """The handler's gate: our loggers at their level, any other (a library that sets its own
    level, as web3's providers do) only from WARNING."""
    return record.levelno >= logging.WARNING or record.name.partition(".")[0] in ("veche_api", "uvicorn")


_FILTER = SecretFilter()
_ACCESS_FILTER = AccessFilter()


def scrub(text: str, secrets: tuple[str, ...] | None = None) -> str:
    """`text` without URL user-info or any of `secrets` (by default, those the process's filter
    has learnt: see `configure_logging`)."""
    text = _USERINFO.sub("***@", text)
    for secret in _FILTER.secrets if secrets is None else secrets:
        if secret:
            text = text.replace(secret, "***")
    return _ADDRESS.sub(_address_or_mark, text)


def _address_or_mark(match: re.Match[str]) -> str:
    return match.group(0) if match.group(1).lower() in _PUBLIC else "0x{address}"


def publish_addresses(*addresses: str) -> None:
    """Addresses that log lines may show: the operator's keys and contracts, public by role."""
    _PUBLIC.update(a.lower().removeprefix("0x") for a in addresses)


def access_path(path_with_query: str) -> str:
    """What the access log keeps of a request target: the path, its long hex runs as `{hex}`."""
    path = path_with_query.split("?", 1)[0]
    return _LONG_HEX.sub("{hex}", path)


def configure_logging(settings: Settings) -> None:
    """Set up the process's logging for the API (see the module's docstring). Idempotent: a
    second call (create_app after `veche-api run`, a test's second app) replaces the first."""
    level = settings.log_level.upper()
    _FILTER.add(settings.secrets())
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(ours_or_warning)
    handler.addFilter(_FILTER)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in OURS:
        logger = logging.getLogger(name)
        logger.handlers.clear()  # uvicorn's own (its formats would print what ours leave out)
        logger.propagate = True
        logger.setLevel(level)
    access = logging.getLogger(ACCESS)
    access.handlers.clear()
    access.setLevel(level)
    if _ACCESS_FILTER not in access.filters:
        access.addFilter(_ACCESS_FILTER)
    # uvicorn logs requests only when this logger has a handler, through propagation or its own.
    access.propagate = settings.access_log
    for other in root.handlers:  # an embedding program's handlers (a test's capture) scrub too
        if _FILTER not in other.filters:
            other.addFilter(_FILTER)

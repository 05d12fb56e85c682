"""Logging that never carries a secret.

Messages quote URLs, exceptions and tracebacks, and those can carry the node's credentials
(`http://user:key@host/`) or, by accident, a configured secret. A filter on every handler
rewrites each record before any handler formats it: the user-info of every URL becomes `***@`,
and the configured secrets (keystore password, master key, admin API key) become `***`.
The traceback is formatted and scrubbed here too (handlers reuse `record.exc_text`).
"""

from __future__ import annotations

import logging
import re

_USERINFO = re.compile(r"(?<=://)[^/\s@'\"]+@")
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


_FILTER = SecretFilter()


def scrub(text: str, secrets: tuple[str, ...] | None = None) -> str:
    """`text` without URL user-info or any of `secrets` (by default, those the process's filter
    has learnt: see `install_secret_filter`)."""
    text = _USERINFO.sub("***@", text)
    for secret in _FILTER.secrets if secrets is None else secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def install_secret_filter(secrets: tuple[str, ...] = ()) -> SecretFilter:
    """Put the process's SecretFilter (which learns `secrets`) on every handler there is now:
    the root's, uvicorn's, and the `veche_api` logger's own, which it gets here when no handler
    would show its lines (the relay's warnings, `repriced` and `quarantined`, are meant for
    operators)."""
    _FILTER.add(secrets)
    loggers = [
        logging.getLogger(),
        *(logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)),
    ]
    ours = logging.getLogger("veche_api")
    if not ours.handlers and not logging.getLogger().handlers:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        ours.addHandler(stream)
        if ours.level == logging.NOTSET:
            ours.setLevel(logging.INFO)
    for logger in loggers:
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
    return _FILTER

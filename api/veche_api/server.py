"""Serving the API to the public: uvicorn with the limits a server on the internet needs.

uvicorn closes a keep-alive connection that stays idle (`idle_timeout`), but a connection that
sends its request head slowly, a byte at a time, is held for ever: an outside tester held
2,000 such connections for 40 s and none was closed, and with the default 1,024 open files
legitimate requests then failed. Here:
- `GuardedHttpTools` closes a connection whose request head is not complete `header_timeout`
  seconds after it was opened, or after the request's first byte on a kept-alive connection;
- `main.BodyLimit` answers 408 when a body is not complete `body_timeout` seconds after it began;
- the process's open-file limit is raised to its hard limit, and beyond `max_connections`
  uvicorn answers 503 at once instead of running out of files.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .core.config import Settings
from .core.logs import configure_logging

DEFAULT_HEADER_TIMEOUT = 10.0


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request head. The deadline comes
    from the uvicorn Config (`config.header_timeout`, set by `uvicorn_config`)."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._header_timeout = float(getattr(config, "header_timeout", DEFAULT_HEADER_TIMEOUT))
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self._header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def raise_open_file_limit() -> int:
    """Raise the soft limit on open files to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def uvicorn_config(settings: Settings, app: Any = "veche_api.main:create_app", **overrides: Any) -> uvicorn.Config:
    """The uvicorn Config of a Veche API: `app` is the factory's import path (what several
    workers need), or an app object (one process, e.g. a test's server thread)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": GuardedHttpTools,
        "timeout_keep_alive": settings.idle_timeout,
        "limit_concurrency": settings.max_connections,
        "lifespan": "on",
        "proxy_headers": False,
        "server_header": False,
        # The project's logging (core/logs.py), not uvicorn's formats: they print the client's
        # address and port and the query string.
        "log_config": None,
        "log_level": settings.log_level.lower(),
        "access_log": settings.access_log,
    }
    if isinstance(app, str):
        options.update(factory=True, workers=settings.workers if settings.workers > 1 else None)
    options.update(overrides)
    config = uvicorn.Config(app, **options)
    config.header_timeout = settings.header_timeout  # type: ignore[attr-defined]  # read by GuardedHttpTools
    return config


def serve(settings: Settings, **overrides: Any) -> None:
    """Run the API until it is stopped (SIGTERM or SIGINT: a graceful shutdown)."""
    raise_open_file_limit()
    configure_logging(settings)  # the supervisor's own lines too; each app configures it again
    config = uvicorn_config(settings, **overrides)
    if config.workers > 1:  # as uvicorn.run does it
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()

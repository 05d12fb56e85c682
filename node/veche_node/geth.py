"""Where the go-ethereum binary of the validator network comes from.

Veche's validator network runs go-ethereum v1.13.15, the last release that can seal Clique
(proof-of-authority) blocks. `make geth` builds it once from the Go module proxy and caches it
outside the clone; `VECHE_GETH` points at another build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .errors import VecheNodeError

GETH_VERSION = "v1.13.15"
GETH_CACHE = Path.home() / ".cache" / "veche" / f"geth-{GETH_VERSION}" / "geth"


class GethNotFoundError(VecheNodeError, FileNotFoundError):
    """No geth binary: run `make geth` (it needs Go)."""


def geth_binary() -> str:
    """The geth to run: `$VECHE_GETH`, else the `make geth` cache, else `geth` on PATH."""
    configured = os.environ.get("VECHE_GETH")
    if configured:
        if not (Path(configured).is_file() and os.access(configured, os.X_OK)):
            raise GethNotFoundError(f"VECHE_GETH={configured} is not an executable file")
        return configured
    if GETH_CACHE.is_file() and os.access(GETH_CACHE, os.X_OK):
        return str(GETH_CACHE)
    found = shutil.which("geth")
    if found:
        return found
    raise GethNotFoundError(
        f"geth {GETH_VERSION} not found: run `make geth` to build it into {GETH_CACHE} "
        "(it needs Go >= 1.22 on PATH), or set VECHE_GETH to a geth binary"
    )


def geth_available() -> bool:
    try:
        geth_binary()
    except GethNotFoundError:
        return False
    return True


def geth_version(binary: str | None = None) -> str:
    """The `Version:` line of `geth version`, e.g. `1.13.15-stable`."""
    out = subprocess.run(
        [binary or geth_binary(), "version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    for line in out.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return out.strip()

"""Helpers to read tests/vectors (imported by name: tests/ is not a package)."""

from __future__ import annotations

import json
from pathlib import Path

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def load_vectors(name: str):
    return json.loads((VECTORS / name).read_text())


def unhex(value: str) -> bytes:
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)

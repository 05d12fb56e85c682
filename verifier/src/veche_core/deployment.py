"""The deployment file the city publishes: which chain, which contracts, from which block.

The API, the node tooling and the verifier all read this one format (JSON, versioned), so an
observer can point the verifier at the city's file and their own node.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ._encoding import is_address, to_checksum_address
from .errors import EncodingError

DEPLOYMENT_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    poll_book: str
    city_points: str
    start_block: int  # the block of the first deployment transaction: logs are read from here

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": DEPLOYMENT_FORMAT_VERSION,
                "chainId": self.chain_id,
                "pollBook": self.poll_book,
                "cityPoints": self.city_points,
                "startBlock": self.start_block,
            },
            indent=2,
        )

    def save(self, path: Path | str) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EncodingError(f"deployment file is not JSON: {exc}") from exc
        if not isinstance(raw, dict) or raw.get("version") != DEPLOYMENT_FORMAT_VERSION:
            raise EncodingError(f"deployment file version must be {DEPLOYMENT_FORMAT_VERSION}")
        for field in ("pollBook", "cityPoints"):
            if not isinstance(raw.get(field), str) or not is_address(raw[field]):
                raise EncodingError(f"deployment file: {field} is not an address")
        for field in ("chainId", "startBlock"):
            if not isinstance(raw.get(field), int) or raw[field] < 0:
                raise EncodingError(f"deployment file: {field} is not a non-negative integer")
        return cls(
            chain_id=raw["chainId"],
            poll_book=to_checksum_address(raw["pollBook"]),
            city_points=to_checksum_address(raw["cityPoints"]),
            start_block=raw["startBlock"],
        )

    @classmethod
    def load(cls, path: Path | str) -> Deployment:
        return cls.from_json(Path(path).read_text())

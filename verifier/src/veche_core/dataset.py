"""The anonymised dataset of a poll: one row per counted ballot, and the hash put on chain.

Canonical form (what `datasetHash` commits to): UTF-8 CSV, LF line ends, the header
`token,stratum,choice,block`, then one row per counted ballot sorted by token address;
`token` is the lower-case 0x-hex address, `stratum` and `block` decimal, `choice` the 0-based
option indices in ascending order joined by `;`. datasetHash = keccak256(those bytes).
The JSON form served by the API carries the same rows; both parse to the same rows here.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any, NamedTuple

from ._keccak import keccak
from .errors import EncodingError

HEADER = ("token", "stratum", "choice", "block")
DATASET_FORMAT_VERSION = 1


class DatasetRow(NamedTuple):
    """One row. (A named tuple: the verifier builds one per counted ballot, and tuples sort in
    the canonical order, field by field, without a Python call per comparison.) Rows read from
    a published dataset are validated by `checked_row`; rows the verifier builds from decoded
    chain data are well formed by construction."""

    token: str  # lower-case 0x-hex
    stratum: int
    choice: tuple[int, ...]
    block: int


def checked_row(token: Any, stratum: Any, choice: Any, block: Any) -> DatasetRow:
    """A row from outside (a published dataset): EncodingError unless it is well formed."""
    if not isinstance(token, str) or not _ADDRESS.fullmatch(token):
        raise EncodingError(f"dataset row: {token!r} is not an address")
    choice = tuple(choice)
    for value in (stratum, block, *choice):
        if type(value) is not int or value < 0:
            raise EncodingError("dataset row: numbers must be non-negative integers")
    if not choice or (len(choice) > 1 and any(a >= b for a, b in zip(choice, choice[1:]))):
        raise EncodingError("dataset row: choice must be distinct ascending option indices")
    return DatasetRow(token.lower(), stratum, choice, block)


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def canonical_csv(rows: list[DatasetRow]) -> bytes:
    lines = [",".join(HEADER)]
    lines += [
        f"{token},{stratum},{';'.join(map(str, choice))},{block}" for token, stratum, choice, block in sorted(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def dataset_hash(rows: list[DatasetRow]) -> bytes:
    return keccak(canonical_csv(rows))


def to_json(poll_id: int, rows: list[DatasetRow]) -> str:
    return json.dumps(
        {
            "version": DATASET_FORMAT_VERSION,
            "pollId": poll_id,
            "datasetHash": "0x" + dataset_hash(rows).hex(),
            "rows": [
                {"token": r.token, "stratum": r.stratum, "choice": list(r.choice), "block": r.block}
                for r in sorted(rows)
            ],
        }
    )


def parse(text: str) -> list[DatasetRow]:
    """Rows from either published form (JSON object, or CSV with the header); strict."""
    stripped = text.lstrip()
    try:
        if stripped.startswith("{"):
            return _parse_json(json.loads(stripped))
        return _parse_csv(text)
    except (ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, EncodingError):
            raise
        raise EncodingError(f"dataset does not parse: {exc}") from None


def _parse_json(raw: Any) -> list[DatasetRow]:
    if raw.get("version") != DATASET_FORMAT_VERSION:
        raise EncodingError(f"dataset version must be {DATASET_FORMAT_VERSION}")
    return [checked_row(r["token"], r["stratum"], r["choice"], r["block"]) for r in raw["rows"]]


def _parse_csv(text: str) -> list[DatasetRow]:
    reader = csv.reader(io.StringIO(text))
    if tuple(next(reader, ())) != HEADER:
        raise EncodingError(f"dataset CSV must start with the header {','.join(HEADER)}")
    rows = []
    for number, fields in enumerate(reader, start=2):
        if len(fields) != len(HEADER):
            raise EncodingError(f"dataset CSV line {number}: expected {len(HEADER)} fields")
        token, stratum, choice, block = fields
        rows.append(checked_row(token, int(stratum), [int(c) for c in choice.split(";")], int(block)))
    return rows

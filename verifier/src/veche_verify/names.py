"""What the options and strata are called: the city's texts, checked against the chain.

The chain commits a poll's texts only as `metadataHash` (veche_core.metadata); the city serves
them (`GET /polls/{id}`), or an observer keeps them in a file. The report names options and
strata only with texts that hash to the poll's metadataHash; texts that do not are a finding of
their own (the verdict is FAIL: the city shows residents a question other than the one it
committed), and without texts the report numbers options and strata and says names were not
checked. Texts for another deployment or another poll are a setup mistake: not checked, never a
mismatch.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from veche_core.deployment import Deployment
from veche_core.errors import EncodingError, VecheError
from veche_core.metadata import PollTexts

from .records import PollParameters

CITY_TIMEOUT = 15.0  # seconds for the city's answer


class NamesStatus(StrEnum):
    CHECKED = "checked"  # the texts hash to metadataHash: the report names by them
    MISMATCH = "mismatch"  # they do not: a finding, and the verdict is FAIL
    NOT_CHECKED = "not_checked"  # no texts, or texts of another poll: numbers only


@dataclass(frozen=True)
class Names:
    status: NamesStatus
    detail: str
    question: str | None = None
    options: tuple[str, ...] | None = None  # only when checked
    strata: tuple[str, ...] | None = None  # as the city names them, when checked and one per stratum
    strata_committed: bool = False  # whether metadataHash binds the strata names too

    def option(self, index: int) -> str:
        """Option `index` (0-based, as on chain) as the city's page and the CLI show it: from 1."""
        return f"{index + 1}. {self.options[index]}" if self.options else f"option {index + 1}"

    def stratum(self, index: int) -> str:
        if self.strata is None or index >= len(self.strata):
            return f"stratum {index + 1}"
        return self.strata[index] + ("" if self.strata_committed else "*")

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "detail": self.detail,
            "question": self.question,
            "options": None
            if self.options is None
            else [{"number": i + 1, "index": i, "text": t} for i, t in enumerate(self.options)],
            "strata": None
            if self.strata is None
            else [{"number": i + 1, "index": i, "name": n} for i, n in enumerate(self.strata)],
            "strataCommitted": self.strata_committed,
        }


NOT_GIVEN = Names(
    NamesStatus.NOT_CHECKED, "no --city or --metadata given: options and strata are numbered, names were not checked"
)


def check_names(poll_id: int, created: PollParameters | None, texts: PollTexts | None, deployment: Deployment) -> Names:
    """The finding for one poll's texts (None: none were given)."""
    if texts is None:
        return NOT_GIVEN
    if texts.poll_id != poll_id:
        return _not_checked(f"the texts given are of poll {texts.poll_id}, not poll {poll_id}")
    if (texts.chain_id is not None and texts.chain_id != deployment.chain_id) or (
        texts.poll_book is not None and texts.poll_book.lower() != deployment.poll_book.lower()
    ):
        return _not_checked(
            f"the texts given are for PollBook {texts.poll_book} of chain {texts.chain_id}, not this deployment's"
        )
    if created is None:
        return _not_checked("the poll has no parameters on chain to check them against")
    committed = texts.strata_committed_by(created.metadata_hash)
    if committed is None:
        return Names(
            NamesStatus.MISMATCH,
            f"the texts given hash to 0x{texts.hash.hex()}, not to the poll's metadataHash "
            f"0x{created.metadata_hash.hex()}: they are not the texts the city committed",
        )
    if len(texts.options) != created.option_count:
        return Names(
            NamesStatus.MISMATCH,
            f"the committed texts name {len(texts.options)} options; the poll has {created.option_count}",
        )
    one_each = len(texts.strata) == len(created.issuer_keys)
    committed = one_each and committed
    note = (
        "stratum names are committed too (each stratum's districts)"
        if committed
        else "stratum names (marked *) are as the city names them: this poll's metadata (v1) does not commit them"
        if one_each
        else "strata are numbered: the city does not name one per stratum"
    )
    return Names(
        NamesStatus.CHECKED,
        f"question and options hash to the poll's metadataHash; {note}",
        texts.question,
        texts.options,
        texts.strata if one_each else None,
        committed,
    )


def _not_checked(why: str) -> Names:
    return Names(NamesStatus.NOT_CHECKED, f"names not checked: {why}")


def from_city(url: str, poll_id: int) -> PollTexts | Names:
    """The poll's texts as the city's API serves them, or why they could not be had (a finding
    that says names were not checked: an unreachable city is not a broken rule)."""
    address = f"{url.rstrip('/')}/polls/{poll_id}"
    try:
        with urllib.request.urlopen(address, timeout=CITY_TIMEOUT) as reply:  # noqa: S310 - the user's URL
            return PollTexts.from_json(json.loads(reply.read()))
    except urllib.error.HTTPError as exc:
        return _not_checked(f"{address} answered HTTP {exc.code}")
    except (OSError, ValueError, VecheError) as exc:
        return _not_checked(f"{address}: {exc}")


def from_file(path: str) -> dict[int, PollTexts]:
    """Texts kept in a file: one poll object as `GET /polls/{id}` serves it, or a list of them."""
    try:
        raw = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise EncodingError(f"metadata file {path} is not JSON: {exc}") from None
    polls = [PollTexts.from_json(item) for item in (raw if isinstance(raw, list) else [raw])]
    return {texts.poll_id: texts for texts in polls}

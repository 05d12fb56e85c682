"""A poll's metadata: the texts whose keccak256 is `metadataHash` (docs/protocol.md §3.10).

The chain keeps only the hash (PollCreated.metadataHash); the city serves the texts (`GET
/polls/{id}`). One definition, used by the API when it creates a poll and by the verifier when
it names options and strata in a report:

    v1: metadataHash = keccak256(canonical_json({"question", "options", "audience"}))
    v2: metadataHash = keccak256(canonical_json({"version": 2, "question", "options", "audience",
                                                 "strata": [[districts of stratum 0], ...]}))

canonical JSON: keys sorted, no whitespace (separators "," and ":"), non-ASCII characters as
themselves (not \\u escapes), encoded UTF-8; `audience` is `{"districts": [..] | null, "minAge":
n | null, "maxAge": n | null}`. The texts are hashed as given: the API stores them in Unicode NFC
before it hashes them. v2 also commits which districts form each stratum (small districts are
merged at creation), so every stratum's name — its districts joined by " + " — is the city's
commitment, not its word; v1 commits the strata only of a poll whose audience lists districts
(one stratum each, in that order). The API writes v2; a verifier reads both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._keccak import keccak
from .errors import EncodingError


def canonical_json(value: Any) -> bytes:
    """The canonical JSON bytes of a value (also hashed for rewards and charities)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


STRATUM_NAME_SEPARATOR = " + "  # a stratum's name: its districts, in order, joined by this


def poll_metadata(
    question: str, options: list[str], audience: dict[str, Any], strata: Sequence[Sequence[str]] | None = None
) -> dict[str, Any]:
    """The metadata object: v2 with `strata` (each stratum's districts, in stratum order), else v1."""
    value: dict[str, Any] = {"question": question, "options": list(options), "audience": audience}
    if strata is not None:
        value.update(version=2, strata=[list(districts) for districts in strata])
    return value


def metadata_hash(
    question: str, options: list[str], audience: dict[str, Any], strata: Sequence[Sequence[str]] | None = None
) -> bytes:
    return keccak(canonical_json(poll_metadata(question, options, audience, strata)))


def stratum_name(districts: Sequence[str]) -> str:
    return STRATUM_NAME_SEPARATOR.join(districts)


@dataclass(frozen=True)
class PollTexts:
    """What the city serves about a poll, as far as the report names things by it."""

    poll_id: int
    question: str
    options: tuple[str, ...]
    audience: dict[str, Any]
    strata: tuple[str, ...]  # names, in stratum order, as the city serves them
    chain_id: int | None  # the deployment the city says the poll belongs to, when it says
    poll_book: str | None
    strata_districts: tuple[tuple[str, ...], ...] | None = None  # each stratum's districts, when served

    @property
    def hash(self) -> bytes:
        """The v1 hash of these texts (question, options, audience)."""
        return metadata_hash(self.question, list(self.options), self.audience)

    def strata_committed_by(self, on_chain: bytes) -> bool | None:
        """None unless these are the texts `on_chain` (a poll's metadataHash) commits; else whether
        it commits the strata's names too: always for v2 (each stratum's districts), for v1 only
        when the audience lists the districts and the strata are those, in that order."""
        if self.strata_districts is not None:
            if metadata_hash(self.question, list(self.options), self.audience, self.strata_districts) == on_chain:
                return True
        if self.hash == on_chain:
            return self.audience.get("districts") is not None and list(self.strata) == self.audience["districts"]
        return None

    @classmethod
    def from_json(cls, raw: Any) -> PollTexts:
        """From the API's poll object (`GET /polls/{id}`); EncodingError unless well formed."""
        try:
            question, options, audience = raw["question"], raw["options"], raw["audience"]
            poll_id, strata = raw["id"], raw.get("strata") or []
            chain_id, poll_book = raw.get("chainId"), raw.get("pollBook")
        except (TypeError, KeyError) as exc:
            raise EncodingError(f"poll metadata: missing field {exc}") from None
        districts = None
        if isinstance(strata, list) and strata and all(isinstance(s, dict) for s in strata):
            # Since v2, each stratum is served with its districts (merged small districts), and
            # its name is theirs joined: the served name is not what is committed.
            districts = [s.get("districts") for s in strata]
            if not all(isinstance(d, list) and d and all(isinstance(n, str) for n in d) for d in districts):
                raise EncodingError("poll metadata: each stratum's districts must be a non-empty list of text")
            strata = [stratum_name(d) for d in districts]
        texts = [question, *options, *strata]
        if not isinstance(options, list) or not isinstance(strata, list) or not all(isinstance(t, str) for t in texts):
            raise EncodingError("poll metadata: question, options and strata must be text")
        if type(poll_id) is not int or not isinstance(audience, dict):
            raise EncodingError("poll metadata: id must be an integer and audience an object")
        if chain_id is not None and type(chain_id) is not int:
            raise EncodingError("poll metadata: chainId must be an integer")
        if poll_book is not None and not isinstance(poll_book, str):
            raise EncodingError("poll metadata: pollBook must be an address")
        committed = None if districts is None else tuple(tuple(d) for d in districts)
        return cls(poll_id, question, tuple(options), audience, tuple(strata), chain_id, poll_book, committed)

"""A poll's metadata: the question, option and audience texts whose keccak256 is `metadataHash`.

The chain keeps only the hash (PollCreated.metadataHash); the city serves the texts (`GET
/polls/{id}`). One definition, used by the API when it creates a poll and by the verifier when
it names options in a report (docs/protocol.md §3.10):

    metadataHash = keccak256(canonical_json({"question", "options", "audience"}))

canonical JSON: keys sorted, no whitespace (separators "," and ":"), non-ASCII characters as
themselves (not \\u escapes), encoded UTF-8; `audience` is `{"districts": [..] | null, "minAge":
n | null, "maxAge": n | null}`. The texts are hashed as given: the API stores them in Unicode NFC
before it hashes them. The strata of a poll whose audience lists districts are those districts,
in that order, so their names are committed; a citywide poll's strata (the city's districts) are
not part of the metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ._keccak import keccak
from .errors import EncodingError


def canonical_json(value: Any) -> bytes:
    """The canonical JSON bytes of a value (also hashed for rewards and charities)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def poll_metadata(question: str, options: list[str], audience: dict[str, Any]) -> dict[str, Any]:
    return {"question": question, "options": list(options), "audience": audience}


def metadata_hash(question: str, options: list[str], audience: dict[str, Any]) -> bytes:
    return keccak(canonical_json(poll_metadata(question, options, audience)))


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

    @property
    def hash(self) -> bytes:
        return metadata_hash(self.question, list(self.options), self.audience)

    @property
    def strata_committed(self) -> bool:
        """Whether the strata names are bound by the hash: only when the audience lists them."""
        return self.audience.get("districts") is not None and list(self.strata) == self.audience["districts"]

    @classmethod
    def from_json(cls, raw: Any) -> PollTexts:
        """From the API's poll object (`GET /polls/{id}`); EncodingError unless well formed."""
        try:
            question, options, audience = raw["question"], raw["options"], raw["audience"]
            poll_id, strata = raw["id"], raw.get("strata") or []
            chain_id, poll_book = raw.get("chainId"), raw.get("pollBook")
        except (TypeError, KeyError) as exc:
            raise EncodingError(f"poll metadata: missing field {exc}") from None
        if isinstance(strata, list):  # names, or (since strata are merged) objects with a name
            strata = [s.get("name") if isinstance(s, dict) else s for s in strata]
        texts = [question, *options, *strata]
        if not isinstance(options, list) or not isinstance(strata, list) or not all(isinstance(t, str) for t in texts):
            raise EncodingError("poll metadata: question, options and strata must be text")
        if type(poll_id) is not int or not isinstance(audience, dict):
            raise EncodingError("poll metadata: id must be an integer and audience an object")
        if chain_id is not None and type(chain_id) is not int:
            raise EncodingError("poll metadata: chainId must be an integer")
        if poll_book is not None and not isinstance(poll_book, str):
            raise EncodingError("poll metadata: pollBook must be an address")
        return cls(poll_id, question, tuple(options), audience, tuple(strata), chain_id, poll_book)

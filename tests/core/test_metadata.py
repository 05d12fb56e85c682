"""Poll metadata (docs/protocol.md §3.10): the bytes hashed, v1 and v2, and what the texts served
by a city commit."""

from __future__ import annotations

import pytest

from veche_core._keccak import keccak
from veche_core.errors import EncodingError
from veche_core.metadata import PollTexts, metadata_hash

AUDIENCE = {"districts": None, "minAge": 18, "maxAge": None}


def test_v1_and_v2_bytes_are_the_canonical_json_written_in_the_protocol():
    v1 = '{"audience":{"districts":null,"maxAge":null,"minAge":18},"options":["Да","Нет"],"question":"Парк?"}'
    assert metadata_hash("Парк?", ["Да", "Нет"], AUDIENCE) == keccak(v1.encode())
    v2 = (
        '{"audience":{"districts":null,"maxAge":null,"minAge":18},"options":["Да","Нет"],"question":"Парк?",'
        '"strata":[["Arbat","Basmanny"],["Tverskoy"]],"version":2}'
    )
    assert metadata_hash("Парк?", ["Да", "Нет"], AUDIENCE, [["Arbat", "Basmanny"], ["Tverskoy"]]) == keccak(v2.encode())


def served(strata) -> dict:
    return {"id": 7, "question": "Парк?", "options": ["Да", "Нет"], "audience": AUDIENCE, "strata": strata}


def test_served_strata_are_committed_by_v2_and_named_by_their_districts():
    groups = [["Arbat", "Basmanny"], ["Tverskoy"]]
    on_chain = metadata_hash("Парк?", ["Да", "Нет"], AUDIENCE, groups)
    texts = PollTexts.from_json(served([{"name": "anything", "districts": g} for g in groups]))
    assert texts.strata == ("Arbat + Basmanny", "Tverskoy")  # the committed districts, not the served name
    assert texts.strata_committed_by(on_chain) is True
    regrouped = PollTexts.from_json(served([{"districts": ["Arbat"]}, {"districts": ["Basmanny", "Tverskoy"]}]))
    assert regrouped.strata_committed_by(on_chain) is None  # not the committed texts
    # A v1 poll: the texts are committed, its citywide strata are not.
    v1 = metadata_hash("Парк?", ["Да", "Нет"], AUDIENCE)
    assert texts.strata_committed_by(v1) is False
    assert PollTexts.from_json(served(["Arbat", "Tverskoy"])).strata_committed_by(v1) is False


@pytest.mark.parametrize(
    "strata", [[{"districts": []}], [{"districts": "Arbat"}], [{"districts": [1]}], [{"name": "A"}]]
)
def test_malformed_strata_are_refused(strata):
    with pytest.raises(EncodingError):
        PollTexts.from_json(served(strata))

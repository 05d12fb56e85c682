"""Small strata are merged when a poll is made, not hidden after it is counted.

The grouping rule alone (strata.group_strata), then an API with a threshold of 10 on real anvil:
districts of 1, 3, 30 and 12 eligible residents become two strata of at least 10; residents of
a merged district get tokens for the merged stratum and vote; the published result and the
verifier's own dataset hold no stratum below the threshold. The register is counted by the
rule issuance applies (the audience's age at the poll's opening), and an audience smaller than
one stratum is refused before anything is made.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from veche_api.strata import PollStrata, Stratum, group_strata, stratum_of
from veche_client.sdk import ApiError, ResidentClient
from veche_core import dataset

from .conftest import DATABASES, assert_error, make_api
from .test_flow import release_shares

VERIFY = Path(sys.executable).with_name("veche-verify")
DISTRICTS = ["Arbat", "Basmanny", "Khamovniki", "Tverskoy", "Zelenogradsky"]
THRESHOLD = 10


def names(strata: list[Stratum]) -> list[tuple[str, int | None]]:
    return [(s.name, s.register_size) for s in strata]


def test_small_districts_merge_with_the_smaller_neighbour():
    sizes = [("A", 1), ("B", 3), ("C", 30), ("D", 12)]
    assert names(group_strata(sizes, 10)) == [("A + B + C", 34), ("D", 12)]
    # The smallest first, with its smaller neighbour (C, not A), again until none is below.
    assert names(group_strata([("A", 20), ("B", 2), ("C", 5), ("D", 40)], 10)) == [("A + B + C", 27), ("D", 40)]
    # A tie between neighbours goes to the preceding one (B joins A; joining C would end in one).
    assert names(group_strata([("A", 5), ("B", 1), ("C", 5), ("D", 5)], 6)) == [("A + B", 6), ("C + D", 10)]
    # Nothing to merge, or nothing left to merge with.
    assert names(group_strata(sizes, 0)) == names(group_strata(sizes, 1)) == [(d, n) for d, n in sizes]
    assert names(group_strata([("A", 3), ("B", 4)], 100)) == [("A + B", 7)]
    assert group_strata([], 10) == []


def test_every_stratum_meets_the_threshold_and_keeps_its_districts_in_order():
    rng = random.Random(16)
    for _ in range(300):
        sizes = [(f"d{i}", rng.choice([0, 1, 2, 5, 9, 10, 11, 40])) for i in range(rng.randint(1, 12))]
        threshold = rng.randint(0, 60)
        strata = group_strata(sizes, threshold)
        assert [d for s in strata for d in s.districts] == [d for d, _ in sizes]
        assert sum(s.register_size or 0 for s in strata) == sum(n for _, n in sizes)
        assert len(strata) == 1 or all((s.register_size or 0) >= threshold for s in strata)
        for index, stratum in enumerate(strata):
            assert all(stratum_of(strata, d) == index for d in stratum.districts)
    assert stratum_of(group_strata([("A", 1)], 1), "B") is None


def test_stored_strata_round_trip_and_the_first_format_still_reads():
    made = PollStrata(10, tuple(group_strata([("A", 1), ("B", 30)], 10)))
    assert PollStrata.loads(made.dumps()) == made
    assert PollStrata.loads('["Central", "Northern"]') == PollStrata(
        0, (Stratum(("Central",), None), Stratum(("Northern",), None))
    )


@pytest.fixture(scope="module", params=DATABASES)
def api(request, tmp_path_factory):
    env = make_api(tmp_path_factory, request.param, districts=DISTRICTS, min_stratum=THRESHOLD)
    try:
        yield env
    finally:
        env.http.close()
        env.server.stop()
        env.chain.anvil.stop()


def enrol(api, rows: list[tuple[str, int]]) -> list[ResidentClient]:
    """Residents of (district, birth year), enrolled with one CSV import."""
    residents = [ResidentClient(api.http) for _ in rows]
    text = "address,district,birth_year\n" + "".join(
        f"{r.address},{d},{y}\n" for r, (d, y) in zip(residents, rows, strict=True)
    )
    reply = api.http.post(
        "/admin/residents/import", content=text.encode(), headers={**api.admin, "content-type": "text/csv"}
    )
    assert reply.json()["imported"] == len(rows), reply.text
    return residents


def veche_verify(api, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    deployment = tmp_path / "deployment.json"
    api.chain.deployment.save(deployment)
    return subprocess.run(
        [str(VERIFY), "--rpc", api.chain.anvil.url, "--deployment", str(deployment), "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_merged_strata_issue_vote_and_publish_none_below_the_threshold(api, tmp_path):
    sizes = {"Arbat": 1, "Basmanny": 3, "Khamovniki": 30, "Tverskoy": 12}
    residents = {d: enrol(api, [(d, 1980)] * n) for d, n in sizes.items()}
    poll = api.create_poll(audience={"districts": list(sizes)}, options=("Yes", "No"))
    assert [(s["name"], s["districts"], s["registerSize"]) for s in poll["strata"]] == [
        ("Arbat + Basmanny + Khamovniki", ["Arbat", "Basmanny", "Khamovniki"], 34),
        ("Tverskoy", ["Tverskoy"], 12),
    ]
    assert poll["minStratum"] == THRESHOLD and len(poll["issuerKeys"]) == 2
    assert api.http.get(f"/polls/{poll['id']}").json()["strata"] == poll["strata"]
    api.advance(31)

    # The lone resident of Arbat, and others, get tokens for their merged stratum; the district's
    # own index (0 is also the merged stratum's; Tverskoy's 3 is no stratum) is not what counts.
    voters = {"Arbat": 1, "Basmanny": 2, "Khamovniki": 3, "Tverskoy": 2}
    choices: Counter[int] = Counter()
    hashes = []
    for district, count in voters.items():
        for number, resident in enumerate(residents[district][:count]):
            listed = api.poll_for(poll["id"], resident)
            assert listed["residentStratum"] == (1 if district == "Tverskoy" else 0)
            if number == 0:
                wrong = 1 - listed["residentStratum"]
                body, _, _ = resident.token_request(listed, wrong)
                assert_error(api.http.post("/tokens", json=body), 422, "issuance.wrong_stratum")
            token = resident.get_token(listed)
            assert token.stratum == listed["residentStratum"]
            choice = number % 2
            reply = resident.cast(token, [choice])
            assert reply.status_code == 202, reply.text
            hashes.append(reply.json()["ballotHash"])
            choices[choice] += 1
    for ballot_hash in hashes:
        api.wait_ballot(ballot_hash)

    api.advance(3700)
    release_shares(api, poll, [0, 1])
    published = api.http.post(f"/admin/polls/{poll['id']}/publish", headers=api.admin)
    assert published.status_code == 200, published.text
    tally = published.json()
    assert [(s["name"], s["registerSize"], s["ballots"]) for s in tally["perStratum"]] == [
        ("Arbat + Basmanny + Khamovniki", 34, 6),
        ("Tverskoy", 12, 2),
    ]
    assert tally["counts"] == [choices[0], choices[1]]

    # The observer's dataset: every row's stratum is one of the poll's, each of >= 10 residents.
    written = tmp_path / "dataset.csv"
    verified = veche_verify(
        api, tmp_path, "poll", str(poll["id"]), "--write-dataset", str(written), "--city", api.server.url
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    # The grouping is the city's commitment, not its word: metadata v2 hashes each stratum's districts.
    assert report["names"]["status"] == "checked" and report["names"]["strataCommitted"] is True
    assert [s["name"] for s in report["names"]["strata"]] == ["Arbat + Basmanny + Khamovniki", "Tverskoy"]
    rows = dataset.parse(written.read_text())
    assert written.read_bytes() == api.http.get(f"/polls/{poll['id']}/dataset.csv").content
    assert Counter(r.stratum for r in rows) == {0: 6, 1: 2}
    sizes_by_stratum = {s["stratum"]: s["registerSize"] for s in tally["perStratum"]}
    assert all(sizes_by_stratum[r.stratum] >= THRESHOLD for r in rows)
    assert {int(k) for k in report["tally"]["byStratum"]} == {0, 1}


def test_the_register_counts_the_age_rule_at_opening_as_issuance_applies_it(api):
    """Ages are whole years reached in the opening's calendar year (UTC): born in year Y - 18 is
    18 for a poll opening in Y, whatever the day. The count at creation and the tokens agree."""
    now = api.chain_now()
    year = datetime.fromtimestamp(now + 30, UTC).year
    ages = [18] * 5 + [30] * 5 + [17] * 3 + [31] * 3
    residents = enrol(api, [("Zelenogradsky", year - age) for age in ages])
    before = api.http.get("/polls").json()

    # 5 residents of 18-25: fewer than one stratum needs. Refused, nothing made.
    too_small = {"districts": ["Zelenogradsky"], "minAge": 18, "maxAge": 25}
    body = {
        "question": "A new skate park?",
        "options": ["Yes", "No"],
        "audience": too_small,
        "opensAt": now + 30,
        "closesAt": now + 3600,
        "trustees": [{"address": a.address, "publicKey": "0x" + p.public_key.hex()} for a, p in api.trustees],
        "threshold": 2,
        "keyCeremony": False,  # protocol v1: the API deals the key
    }
    assert_error(api.http.post("/admin/polls", headers=api.admin, json=body), 409, "poll.audience_too_small")
    assert api.http.get("/polls").json() == before

    poll = api.create_poll(audience={"districts": ["Zelenogradsky"], "minAge": 18, "maxAge": 30})
    assert [(s["name"], s["registerSize"]) for s in poll["strata"]] == [("Zelenogradsky", 10)]
    issued = 0
    for resident, age in zip(residents, ages, strict=True):
        try:
            resident.get_token({**poll, "residentStratum": 0})
            issued += 1
            assert 18 <= age <= 30
        except ApiError as refused:
            assert (refused.status, refused.code) == (403, "resident.ineligible")
            assert age in (17, 31)
    assert issued == poll["strata"][0]["registerSize"] == 10

"""Property: no value in any field of any request stops the relay (issue 14's first finding:
one NUL in a poll question, accepted up to the chain and then unstorable in PostgreSQL, stopped
every relay pass).

Hypothesis takes a valid request of each kind an admin or a resident sends and puts an
arbitrary value in one of its fields: strings with NUL, control characters, lone surrogates,
combining and bidirectional marks, very long ones; integers far outside every range, floats,
booleans, null, lists, objects. Every answer must be a 2xx or a 4xx with the error body, never a
5xx. Then, on the same API and database, residents still list their polls, get tokens and vote,
every ballot is confirmed, and /health is `ok`: nothing was quarantined and the relay's last
pass succeeded. Both databases; bounded (a fixed number of examples, no deadline per example,
every wait with its own).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from veche_client.sdk import ResidentClient, ballot_body
from veche_testkit.waiting import eventually

from .conftest import TEST_DISTRICTS

NASTY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "Park?\x00",
        "\x00" * 3,
        "\ud800",
        "a\udfffb",
        "\x1b[31m",
        "line\nbreak",
        "tab\tbed",
        "e\u0301",
        "\u202eevil",
        "\ufeff",
        "\u200b",
        "Центральный",
        "Central\x00",
        "Central ",
        "c" * 600,
        "x" * 3000,
        "0x" + "0" * 40,
        "0x" + "f" * 130,
        "0x",
        "0xZZ",
        "null",
        "[]",
        "{}",
        "1e309",
        "-1",
        "Robert'); DROP TABLE poll;--",
        "%s%n%x",
        "\\u0000",
    ]
)
VALUES = st.one_of(
    NASTY_TEXT,
    st.text(max_size=40),
    st.text(st.characters(exclude_categories=()), max_size=20),  # surrogates and controls too
    st.integers(min_value=-(2**70), max_value=2**300),
    st.sampled_from(
        [
            0,
            -1,
            1,
            2**31 - 1,
            2**31,
            2**32,
            2**40,
            2**53 + 1,
            2**63 - 1,
            2**63,
            2**64,
            2**256,
            253_402_300_799,
            253_402_300_800,
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(min_value=-3, max_value=3), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@pytest.fixture(scope="module")
def city(api):
    """A poll open for voting, an enrolled resident with a token, and valid requests of every kind."""
    poll = api.create_poll(opens_in=5, lasts=100_000)
    api.advance(6)
    resident = api.resident("Central")
    listed = api.poll_for(poll["id"], resident)
    token = resident.get_token(listed)
    fresh = api.resident("Northern")
    token_body, _, _ = fresh.token_request(api.poll_for(poll["id"], fresh), 1)
    ballot = ballot_body(ResidentClient.make_ballot(token, [0], sequence=10**6))
    chain_id, points = poll["chainId"], api.http.get("/deployment").json()["cityPoints"]
    now = api.chain_now()
    requests = {
        "/admin/polls": {
            "question": "Where should the new library be?",
            "options": ["North", "South"],
            "maxChoices": 1,
            "audience": {"districts": ["Central"], "minAge": 18, "maxAge": 99},
            "opensAt": now + 100_000,
            "closesAt": now + 200_000,
            "points": 10,
            "threshold": 1,
            "keyCeremony": False,  # protocol v1: the API deals the key
            "trustees": [
                {"address": api.trustees[0][0].address, "publicKey": "0x" + api.trustees[0][1].public_key.hex()}
            ],
        },
        "/admin/residents": {"address": ResidentClient(api.http).address, "district": "Eastern", "birthYear": 1970},
        "/admin/rewards": {"name": "Metro ride", "description": "One ride", "price": 5, "stock": 10},
        "/admin/charities": {"name": "Shelter", "description": "Dogs", "account": ResidentClient(api.http).address},
        "/tokens": token_body,
        "/ballots": ballot,
        "/points/redemptions": resident.redemption(chain_id, points, 1, 0),
        "/points/donations": resident.donation(chain_id, points, 1, 5, 0),
        "key-shares": {"index": 0, "share": "0x" + "11" * 40, "signature": "0x" + "22" * 65},
    }
    requests["key-shares-path"] = f"/polls/{poll['id']}/key-shares"
    for kind, fields in SHAPES.items():  # every field of every request is drawn, and no other
        assert set(requests[kind]) == {f if isinstance(f, str) else f[0] for f in fields}, kind
    return api, poll, resident, token, requests


def _send(api, path: str, body) -> None:
    # Encoded here: json.dumps escapes lone surrogates (httpx's encoder cannot) and writes NaN.
    payload = json.dumps(body, ensure_ascii=True).encode()
    headers = {**api.admin, "content-type": "application/json"}
    reply = api.http.post(path, content=payload, headers=headers, timeout=120)
    assert reply.status_code < 500, f"{path} {body!r}: {reply.status_code} {reply.text[:300]}"
    if reply.status_code >= 400:
        error = reply.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str), reply.text


def _replace(body: dict, path: tuple, value):
    """A copy of `body` with the field at `path` (keys and list indices) set to `value`."""
    copy = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


# The field paths of every request, read from the shape of the valid requests (`city`), which
# each kind keeps whatever the values: listed here so that hypothesis can draw them, and so that
# the tester's own examples can be named.
SHAPES = {
    "/admin/polls": [
        "question",
        "options",
        ("options", 0),
        "maxChoices",
        "audience",
        ("audience", "districts"),
        ("audience", "districts", 0),
        ("audience", "minAge"),
        ("audience", "maxAge"),
        "opensAt",
        "closesAt",
        "points",
        "threshold",
        "keyCeremony",
        "trustees",
        ("trustees", 0, "address"),
        ("trustees", 0, "publicKey"),
    ],
    "/admin/residents": ["address", "district", "birthYear"],
    "/admin/rewards": ["name", "description", "price", "stock"],
    "/admin/charities": ["name", "description", "account"],
    "/tokens": ["resident", "pollId", "stratum", "blindedMessage", "deadline", "signature"],
    "/ballots": ["pollId", "token", "sequence", "stratum", "ciphertext", "tokenSignature", "signature"],
    "/points/redemptions": ["resident", "rewardId", "nonce", "deadline", "signature"],
    "/points/donations": ["resident", "charityId", "amount", "nonce", "deadline", "signature"],
    "key-shares": ["index", "share", "signature"],
}
FIELDS = [
    (path, field if isinstance(field, tuple) else (field,)) for path, fields in SHAPES.items() for field in fields
]


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
@given(where=st.sampled_from(FIELDS), value=VALUES)
@example(where=("/admin/polls", ("question",)), value="Park?\x00")  # the tester's
@example(where=("/admin/polls", ("options", 0)), value="\ud800")
@example(where=("/admin/polls", ("opensAt",)), value=2**40)  # finding 6
@example(where=("/admin/residents", ("district",)), value="Central\x00")
@example(where=("/admin/rewards", ("name",)), value="\x00")
@example(where=("/ballots", ("sequence",)), value=True)
def test_no_value_in_any_field_breaks_a_request(city, where, value):
    api, _, _, _, requests = city
    path, field = where
    url = requests["key-shares-path"] if path == "key-shares" else path
    _send(api, url, _replace(requests[path], field, value))


@settings(max_examples=20, deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(cells=st.lists(st.tuples(VALUES, VALUES, VALUES), min_size=1, max_size=3))
def test_no_value_in_a_csv_breaks_the_import(city, cells):
    api = city[0]
    text = "address,district,birth_year\n" + "".join(
        ",".join(json.dumps(c, ensure_ascii=False) if not isinstance(c, str) else c for c in row) + "\n"
        for row in cells
    )
    try:
        content = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate cannot be sent as UTF-8 at all: send its bytes raw
        content = text.encode("utf-8", "surrogatepass")
    reply = api.http.post(
        "/admin/residents/import", content=content, headers={**api.admin, "content-type": "text/csv"}, timeout=60
    )
    assert reply.status_code < 500, f"{cells!r}: {reply.status_code} {reply.text[:300]}"


def test_the_relay_keeps_relaying_afterwards(city):
    """After everything above: listing, issuance and votes work, and the relay is healthy."""
    api, poll, resident, token, _ = city
    listed = api.http.post("/polls/eligible", json={"resident": resident.address})
    assert listed.status_code == 200, listed.text
    voter = api.resident(TEST_DISTRICTS[2])
    listed_for = api.poll_for(poll["id"], voter)
    assert api.http.post("/polls/eligible", json={"resident": voter.address}).status_code == 200
    hashes = [
        voter.submit(ResidentClient.make_ballot(voter.get_token(listed_for), [1]))["ballotHash"],
        resident.submit(ResidentClient.make_ballot(token, [2], sequence=10**6 + 1))["ballotHash"],
    ]
    for ballot_hash in hashes:
        assert api.wait_ballot(ballot_hash, timeout=60)["status"] == "confirmed"
    health = eventually(
        lambda: api.http.get("/health").json(), timeout=30, until=lambda b: b["relay"]["lastError"] is None
    )
    assert health["status"] == "ok", health
    assert health["relay"]["quarantined"] == 0

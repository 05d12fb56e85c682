"""Every kind of bad input is refused with its stable error code, and changes nothing."""

from __future__ import annotations

import os
import time

import pytest
from sqlmodel import func, select

from veche_api import models
from veche_api.core.db import Database
from veche_client.sdk import ResidentClient, ballot_body, hexs
from veche_core.typed_data import poll_book_domain
from veche_testkit.servers import wait_relay_drained
from veche_testkit.waiting import eventually

from .conftest import assert_error


@pytest.fixture(scope="module")
def world(api):
    """Polls: `open_poll` (citywide), `other` (citywide), `central` (Central only),
    `elders` (age ≥ 60), `short` (closes soon), `later` (opens in a day)."""
    polls = {
        "open_poll": api.create_poll(opens_in=10, lasts=100_000),
        "other": api.create_poll(opens_in=10, lasts=100_000),
        "central": api.create_poll(opens_in=10, lasts=100_000, audience={"districts": ["Central"]}),
        "elders": api.create_poll(opens_in=10, lasts=100_000, audience={"minAge": 60}),
        "short": api.create_poll(opens_in=10, lasts=60),
        "later": api.create_poll(opens_in=86_400, lasts=3600),
    }
    api.advance(11)
    alice = api.resident("Central", 1990)
    bob = api.resident("Northern", 1950)
    return api, polls, alice, bob


class Snapshot:
    """Row counts of every table, read from the API's own database."""

    def __init__(self, api) -> None:
        self.db = Database(api.chain.env["VECHE_DATABASE_URL"])

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the relay has nothing in flight (its own work is not the request's)."""

        def busy() -> int:
            with self.db.session() as session:
                return (
                    session.exec(
                        select(func.count())
                        .select_from(models.Ballot)
                        .where(models.Ballot.status.in_(("accepted", "sent")))
                    ).one()
                    + session.exec(
                        select(func.count())
                        .select_from(models.Issuance)
                        .where(models.Issuance.status.in_(("pending", "sent")))
                    ).one()
                    + session.exec(
                        select(func.count())
                        .select_from(models.ChainTx)
                        .where(models.ChainTx.status.in_(("signed", "sent")))
                    ).one()
                )

        eventually(busy, timeout, until=lambda count: count == 0, interval=0.05, what="the relay to settle")

    def take(self) -> dict[str, int]:
        with self.db.session() as session:
            return {
                table.__name__: session.exec(select(func.count()).select_from(table)).one()
                for table in (
                    models.Resident,
                    models.Poll,
                    models.Issuance,
                    models.TokenState,
                    models.Ballot,
                    models.PointsRequest,
                    models.ChainTx,
                    models.IssuerKey,
                )
            }


@pytest.fixture
def unchanged(world):
    api = world[0]
    snapshot = Snapshot(api)

    class Check:
        def __call__(self, reply, status, code):
            snapshot.settle()
            before = snapshot.take()
            assert_error(reply() if callable(reply) else reply, status, code)
            time.sleep(0.05)
            snapshot.settle()
            assert snapshot.take() == before, "a rejected request changed the database"

        def answered(self, reply, status):
            """A request answered again from what is stored (a retry): it changes nothing."""
            snapshot.settle()
            before = snapshot.take()
            answer = reply()
            assert answer.status_code == status, answer.text
            time.sleep(0.05)
            snapshot.settle()
            assert snapshot.take() == before, "a retried request changed the database"
            return answer

    yield Check()
    snapshot.db.dispose()


def poll_as(api, poll, resident):
    return api.poll_for(poll["id"], resident)


def test_ballot_rejections(world, unchanged):
    api, polls, alice, bob = world
    http = api.http
    poll = poll_as(api, polls["open_poll"], alice)
    token = alice.get_token(poll)
    other_token = alice.get_token(poll_as(api, polls["other"], alice))
    good = alice.make_ballot(token, [0])

    # Forged token signature (right length, random bytes).
    forged = alice.make_ballot(token, [0], sequence=1, credential=bytes([1]) + os.urandom(len(token.credential) - 1))
    unchanged(lambda: http.post("/ballots", json=ballot_body(forged)), 422, "ballot.bad_token_signature")
    # Wrong stratum: a Central token claiming the Northern stratum.
    wrong_stratum = alice.make_ballot(token, [0], sequence=1, stratum=1)
    unchanged(lambda: http.post("/ballots", json=ballot_body(wrong_stratum)), 422, "ballot.bad_token_signature")
    # A token of another poll.
    foreign = alice.make_ballot(other_token, [0], sequence=1, poll_id=poll["id"])
    unchanged(lambda: http.post("/ballots", json=ballot_body(foreign)), 422, "ballot.bad_token_signature")
    # Signed for another chain: the signature does not recover the token here.
    other_chain = alice.make_ballot(token, [0], sequence=1, domain=poll_book_domain(1, poll["pollBook"]))
    unchanged(lambda: http.post("/ballots", json=ballot_body(other_chain)), 422, "ballot.bad_signature")
    unchanged(lambda: http.post("/ballots", json=ballot_body(good, chainId=1)), 422, "ballot.wrong_chain_id")
    # Signature by another key.
    tampered = ballot_body(good)
    tampered["signature"] = hexs(alice.make_ballot(other_token, [0], sequence=1).signature)
    unchanged(lambda: http.post("/ballots", json=tampered), 422, "ballot.bad_signature")
    # Ciphertext of the wrong length (a plaintext for more options).
    long_ct = alice.make_ballot(token, [0], sequence=1, ciphertext=os.urandom(len(good.ciphertext) + 1))
    unchanged(lambda: http.post("/ballots", json=ballot_body(long_ct)), 422, "ballot.bad_ciphertext")
    unknown_stratum = alice.make_ballot(token, [0], sequence=1, stratum=7)
    unchanged(lambda: http.post("/ballots", json=ballot_body(unknown_stratum)), 422, "ballot.unknown_stratum")
    unknown_poll = ballot_body(good)
    unknown_poll["pollId"] = 999
    unchanged(lambda: http.post("/ballots", json=unknown_poll), 404, "poll.unknown")

    # The good ballot, then its replay (its receipt again) and a different ballot with the same sequence.
    accepted = http.post("/ballots", json=ballot_body(good))
    assert accepted.status_code == 202, accepted.text
    replayed = unchanged.answered(lambda: http.post("/ballots", json=ballot_body(good)), 202)
    assert replayed.json()["receipt"]["signature"] == accepted.json()["receipt"]["signature"]
    same_sequence = alice.make_ballot(token, [1], sequence=1)
    unchanged(lambda: http.post("/ballots", json=ballot_body(same_sequence)), 409, "ballot.stale_sequence")
    assert alice.cast(token, [2], sequence=5).status_code == 202  # sequences may skip
    lower = alice.make_ballot(token, [1], sequence=3)
    unchanged(lambda: http.post("/ballots", json=ballot_body(lower)), 409, "ballot.stale_sequence")

    # Before opening: a token can be had early, a ballot not.
    later_token = alice.get_token(poll_as(api, polls["later"], alice))
    early = alice.make_ballot(later_token, [0])
    unchanged(lambda: http.post("/ballots", json=ballot_body(early)), 409, "ballot.poll_not_open")
    # After close.
    short_token = bob.get_token(poll_as(api, polls["short"], bob))
    assert bob.cast(short_token, [0]).status_code == 202
    wait_relay_drained(http, timeout=30)
    api.advance(70)
    late = bob.make_ballot(short_token, [1])
    unchanged(lambda: http.post("/ballots", json=ballot_body(late)), 409, "ballot.poll_closed")


def test_issuance_rejections(world, unchanged):
    api, polls, alice, bob = world
    http = api.http
    poll = poll_as(api, polls["other"], bob)  # bob has no token for "other" yet
    # Unknown resident (never enrolled), even with a valid signature.
    stranger = ResidentClient(http)
    body, _, _ = stranger.token_request(poll, 0)
    unchanged(lambda: http.post("/tokens", json=body), 404, "resident.unknown")
    # Ineligible: Northern resident, Central-only poll; and under the age limit.
    central = api.http.get(f"/polls/{polls['central']['id']}").json()
    body, _, _ = bob.token_request(central, 0)
    unchanged(lambda: http.post("/tokens", json=body), 403, "resident.ineligible")
    elders = api.http.get(f"/polls/{polls['elders']['id']}").json()
    body, _, _ = alice.token_request(elders, 0)
    unchanged(lambda: http.post("/tokens", json=body), 403, "resident.ineligible")
    # Wrong stratum for the resident.
    body, _, _ = bob.token_request(poll, 0)
    unchanged(lambda: http.post("/tokens", json=body), 422, "issuance.wrong_stratum")
    # Expired request.
    body, _, _ = bob.token_request(poll, 1, deadline=int(time.time()) - 1)
    unchanged(lambda: http.post("/tokens", json=body), 422, "issuance.expired")
    # Signed by someone else (the resident field names bob).
    body, _, _ = alice.token_request(poll, 1)
    body["resident"] = bob.address
    unchanged(lambda: http.post("/tokens", json=body), 422, "issuance.bad_signature")
    # Blinded message of the wrong length (properly signed by bob).
    from veche_core.typed_data import issuance_request_digest, sign_digest

    deadline = int(time.time()) + 600
    short_msg = b"\x01" * 10
    digest = issuance_request_digest(
        poll_book_domain(poll["chainId"], poll["pollBook"]), poll["id"], 1, short_msg, deadline
    )
    body = {
        "resident": bob.address,
        "pollId": poll["id"],
        "stratum": 1,
        "blindedMessage": hexs(short_msg),
        "deadline": deadline,
        "signature": hexs(sign_digest(bob.identity.key, digest)),
    }
    unchanged(lambda: http.post("/tokens", json=body), 422, "issuance.bad_blinded_message")
    good, _, _ = bob.token_request(poll, 1)

    # First token: fine. The same signed request again: the same answer (a lost 201 can be
    # recovered). A second token: refused.
    issued = http.post("/tokens", json=good)
    assert issued.status_code == 201, issued.text
    assert unchanged.answered(lambda: http.post("/tokens", json=good), 201).json() == issued.json()
    body, _, _ = bob.token_request(poll, 1)
    unchanged(lambda: http.post("/tokens", json=body), 409, "issuance.already_issued")
    # Closed poll.
    short = http.get(f"/polls/{polls['short']['id']}").json()
    body, _, _ = alice.token_request(short, 0)
    unchanged(lambda: http.post("/tokens", json=body), 409, "poll.closed")


def test_malformed_and_oversized(world, unchanged):
    api, polls, alice, _ = world
    http = api.http
    unchanged(
        lambda: http.post("/ballots", content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "request.invalid",
    )
    unchanged(lambda: http.post("/ballots", json={"pollId": 1}), 422, "request.invalid")
    unchanged(
        lambda: http.post(
            "/ballots",
            json={
                "pollId": 1,
                "token": "0x12",
                "sequence": 1,
                "stratum": 0,
                "ciphertext": "0xzz",
                "tokenSignature": "0x",
                "signature": "0x",
            },
        ),
        422,
        "request.invalid",
    )
    unchanged(
        lambda: http.post(
            "/ballots",
            json={
                "pollId": 2**70,
                "token": "0x" + "11" * 20,
                "sequence": 2**64,
                "stratum": -1,
                "ciphertext": "0x00",
                "tokenSignature": "0x00",
                "signature": "0x" + "00" * 65,
            },
        ),
        422,
        "request.invalid",
    )
    unchanged(lambda: http.post("/ballots", json={"pollId": 1, "extra": "x" * 20_000}), 413, "request.too_large")
    unchanged(lambda: http.post("/tokens", json=[1, 2, 3]), 422, "request.invalid")
    unchanged(lambda: http.get("/ballots/0x1234"), 422, "request.invalid")
    unchanged(lambda: http.get("/ballots/0x" + "ab" * 32), 404, "ballot.unknown")
    unchanged(lambda: http.get("/polls/12345"), 404, "poll.unknown")
    unchanged(lambda: http.get("/nowhere"), 404, "http.not_found")


def test_admin_needs_key(world, unchanged):
    api, polls, alice, _ = world
    http = api.http
    body = {"address": "0x" + "22" * 20, "district": "Central", "birthYear": 1980}
    unchanged(lambda: http.post("/admin/residents", json=body), 401, "auth.admin_required")
    unchanged(
        lambda: http.post("/admin/residents", json=body, headers={"X-Admin-Key": "wrong"}), 401, "auth.admin_required"
    )
    unchanged(
        lambda: http.post("/admin/residents", json={**body, "district": "Atlantis"}, headers=api.admin),
        422,
        "resident.unknown_district",
    )
    unchanged(
        lambda: http.post(
            "/admin/residents",
            json={"address": alice.address, "district": "Central", "birthYear": 1990},
            headers=api.admin,
        ),
        409,
        "resident.duplicate",
    )
    unchanged(
        lambda: http.post(f"/admin/polls/{polls['open_poll']['id']}/publish", headers=api.admin), 409, "poll.not_closed"
    )


def test_csv_import_all_or_nothing(world, unchanged):
    api, _, alice, _ = world
    http = api.http
    good = [ResidentClient(http).address for _ in range(3)]
    bad_csv = (
        "address,district,birth_year\n"
        f"{good[0]},Central,1980\n"
        f"{good[1]},Atlantis,1980\n"
        "0x123,Central,1980\n"
        f"{good[0]},Central,1981\n"
        f"{alice.address},Central,1991\n"
    )  # enrolled otherwise (born 1990)
    snapshot = Snapshot(api)
    before = snapshot.take()
    reply = http.post("/admin/residents/import", content=bad_csv, headers={**api.admin, "content-type": "text/csv"})
    assert reply.status_code == 200, reply.text
    report = reply.json()
    assert report["imported"] == 0
    assert sorted(e["line"] for e in report["errors"]) == [3, 4, 5, 6]
    assert snapshot.take() == before
    ok_csv = "address,district,birth_year\n" + "".join(f"{a},Eastern,1970\n" for a in good)
    reply = http.post("/admin/residents/import", content=ok_csv, headers={**api.admin, "content-type": "text/csv"})
    assert reply.json() == {"imported": 3, "unchanged": 0, "errors": []}
    # The same file again (its answer was lost, or the import was cut short): nothing changes.
    before = snapshot.take()
    reply = http.post("/admin/residents/import", content=ok_csv, headers={**api.admin, "content-type": "text/csv"})
    assert reply.json() == {"imported": 0, "unchanged": 3, "errors": []}
    assert snapshot.take() == before
    unchanged(
        lambda: http.post(
            "/admin/residents/import", content="name\nx\n", headers={**api.admin, "content-type": "text/csv"}
        ),
        422,
        "import.bad_header",
    )
    snapshot.db.dispose()

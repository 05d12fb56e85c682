"""Every resident request is safe to retry, on real anvil over real HTTP.

The same signed issuance request gets the same 201 (the same blind signature), even after its
deadline and when two copies race; a different blinded message for a resident who holds a token
stays 409. The same ballot gets its stored receipt and current status (202), before and after it
is on chain and after the poll closes; a different ballot with a stale sequence stays 409.
Nothing is stored or put on chain twice. Then the SDK: a proxy between it and the API lets the
request through and drops the answer (RST), holds it past the client's timeout, or answers 503,
and the SDK recovers by resending the same bytes within its deadline.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from veche_api import models
from veche_api.core.db import Database
from veche_client.sdk import ApiError, ResidentClient, RetryPolicy, ballot_body
from veche_core import events
from veche_core.rpc import RpcClient
from veche_testkit.servers import LossyProxy
from veche_testkit.waiting import eventually

from .conftest import assert_error


@pytest.fixture(scope="module")
def world(api):
    """A citywide poll, open for an hour, and the API's database to count rows in."""
    poll = api.create_poll(opens_in=5, lasts=3600)
    api.advance(6)
    db = Database(api.chain.env["VECHE_DATABASE_URL"])
    yield api, poll, db
    db.dispose()


@pytest.fixture
def lossy(api):
    proxy = LossyProxy(api.url)
    yield proxy
    proxy.close()


def count(db: Database, column, value) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).where(column == value)).scalar_one()


def chain_logs(api, topic: str) -> list[dict]:
    with RpcClient(api.chain.anvil.url) as rpc:
        return list(rpc.iter_logs(api.chain.deployment.poll_book, [topic], 0, rpc.block_number()))


def issued_on_chain(api, poll_id: int) -> Counter:
    """Resident (lower-case hex) → how many IssuancesRecorded items name it, for the poll."""
    seen: Counter = Counter()
    for log in chain_logs(api, events.ISSUANCES_RECORDED_TOPIC):
        found, items = events.issuances_recorded(log)
        if found == poll_id:
            seen.update("0x" + item.resident.hex() for item in items)
    return seen


def wait_recorded(api, db: Database, residents: list[str]) -> list[str]:
    """These residents (lower-case hex), once the relay has recorded all their issuances."""
    table = models.Issuance.__table__

    def recorded():
        with db.engine.connect() as conn:
            rows = conn.execute(select(table.c.status, table.c.resident).where(table.c.resident.in_(residents))).all()
        done = len(rows) == len(residents) and all(s == "recorded" for s, _ in rows)
        return [r.lower() for _, r in rows] if done else None

    return eventually(recorded, timeout=60)


def signed(receipt: dict) -> dict:
    """A receipt without the fields filled in once on chain (they are not signed)."""
    return {k: v for k, v in receipt.items() if k not in ("transactionHash", "blockNumber")}


# --- token issuance --------------------------------------------------------------------------------


def test_the_same_issuance_request_gets_the_same_blind_signature(world):
    api, poll, db = world
    alice = api.resident("Central")
    listed = api.poll_for(poll["id"], alice)
    deadline = int(time.time()) + 2
    body, pending, account = alice.token_request(listed, 0, deadline=deadline)
    first = api.http.post("/tokens", json=body)
    assert first.status_code == 201, first.text
    again = api.http.post("/tokens", json=body)
    assert again.status_code == 201, again.text
    assert again.json() == first.json()

    # After its deadline the same request still gets its answer (a replayer learns nothing:
    # only the resident holds the blinding inverse); a new request that late is refused.
    while time.time() <= deadline + 1:
        time.sleep(0.1)
    late = api.http.post("/tokens", json=body)
    assert late.status_code == 201, late.text
    assert late.json() == first.json()
    expired, _, _ = alice.token_request(listed, 0, deadline=deadline)
    assert_error(api.http.post("/tokens", json=expired), 422, "issuance.expired")

    # A different blinded message for the resident's poll is a second token: refused.
    other, _, _ = alice.token_request(listed, 0)
    assert_error(api.http.post("/tokens", json=other), 409, "issuance.already_issued")
    assert count(db, models.Issuance.resident, alice.address) == 1

    # The answer unblinds into a working credential.
    token = alice.finish_token(listed, 0, pending, account, first.json())
    assert alice.cast(token, [0]).status_code == 202
    [resident] = wait_recorded(api, db, [alice.address])
    assert issued_on_chain(api, poll["id"])[resident] == 1


def test_identical_issuance_requests_racing_get_one_token_and_one_answer(world):
    """Both copies of each request are sent at once (separate connections): both get the 201
    and the same blind signature; one issuance is stored and recorded on chain."""
    api, poll, db = world
    residents = [api.resident("Central") for _ in range(6)]
    bodies = [r.token_request(api.poll_for(poll["id"], r), 0)[0] for r in residents]
    start = threading.Barrier(2 * len(bodies))

    def post(body: dict) -> httpx.Response:
        with httpx.Client(base_url=api.url, timeout=30) as http:
            start.wait(10)
            return http.post("/tokens", json=body)

    with ThreadPoolExecutor(2 * len(bodies)) as pool:
        replies = list(pool.map(post, bodies + bodies))
    assert [r.status_code for r in replies] == [201] * len(replies), [r.text for r in replies if r.status_code != 201]
    for index in range(len(bodies)):
        assert replies[index].json() == replies[index + len(bodies)].json()
    addresses = [r.address for r in residents]
    for address in addresses:
        assert count(db, models.Issuance.resident, address) == 1
    recorded = wait_recorded(api, db, addresses)
    on_chain = issued_on_chain(api, poll["id"])
    assert [on_chain[r] for r in recorded] == [1] * len(residents)


# --- ballots ---------------------------------------------------------------------------------------


def test_the_same_ballot_gets_its_receipt_and_status_again(world):
    api, poll, db = world
    carol = api.resident("Northern")
    token = carol.get_token(api.poll_for(poll["id"], carol))
    ballot = carol.make_ballot(token, [1])
    first = api.http.post("/ballots", json=ballot_body(ballot))
    assert first.status_code == 202, first.text
    time.sleep(1.1)  # a receipt signed now would carry another acceptedAt
    again = api.http.post("/ballots", json=ballot_body(ballot))
    assert again.status_code == 202, again.text
    assert again.json()["ballotHash"] == first.json()["ballotHash"]
    assert again.json()["status"] in ("accepted", "sent", "confirmed")  # the relay may have sent it meanwhile
    assert signed(again.json()["receipt"]) == signed(first.json()["receipt"])

    confirmed = api.wait_ballot(first.json()["ballotHash"])
    replayed = api.http.post("/ballots", json=ballot_body(ballot))
    assert replayed.status_code == 202, replayed.text
    assert replayed.json() == confirmed  # its current status, and the receipt with its block
    assert replayed.json()["receipt"]["blockNumber"] is not None
    assert signed(replayed.json()["receipt"]) == signed(first.json()["receipt"])

    # A different ballot with the same sequence is still stale.
    same_sequence = carol.make_ballot(token, [2], sequence=ballot.sequence)
    assert_error(api.http.post("/ballots", json=ballot_body(same_sequence)), 409, "ballot.stale_sequence")
    # Past the token's rate limit (30 a minute) the same ballot is still answered; others are not.
    for _ in range(35):
        assert api.http.post("/ballots", json=ballot_body(ballot)).json() == confirmed
    assert_error(api.http.post("/ballots", json=ballot_body(same_sequence)), 429, "rate_limited")
    assert count(db, models.Ballot.token, token.account.address) == 1
    casts = [
        log
        for log in chain_logs(api, events.BALLOT_CAST_TOPIC)
        if events.ballot_cast(log).token == bytes.fromhex(token.account.address[2:])
    ]
    assert len(casts) == 1


def test_a_ballot_acknowledged_before_close_gets_its_receipt_after_close(world):
    """Runs last in the module: it moves the chain past this poll's close."""
    api, _, db = world
    short = api.create_poll(opens_in=5, lasts=60)
    api.advance(6)
    dave = api.resident("Eastern")
    token = dave.get_token(api.poll_for(short["id"], dave))
    ballot = dave.make_ballot(token, [0])
    first = api.http.post("/ballots", json=ballot_body(ballot))
    assert first.status_code == 202, first.text
    api.wait_ballot(first.json()["ballotHash"])
    api.advance(61)
    again = api.http.post("/ballots", json=ballot_body(ballot))
    assert again.status_code == 202, again.text
    assert again.json()["receipt"]["signature"] == first.json()["receipt"]["signature"]
    assert again.json()["status"] == "confirmed"
    assert_error(api.http.post("/ballots", json=ballot_body(dave.make_ballot(token, [1]))), 409, "ballot.poll_closed")
    assert count(db, models.Ballot.token, token.account.address) == 1


# --- the SDK over a lossy network ------------------------------------------------------------------


def through(api, proxy: LossyProxy, timeout: float = 10, **policy) -> ResidentClient:
    """An enrolled resident whose SDK talks to the API through the proxy."""
    enrolled = api.resident("Central")
    return ResidentClient(
        httpx.Client(base_url=proxy.url, timeout=timeout), enrolled.identity, retry=RetryPolicy(**policy)
    )


def test_the_sdk_recovers_a_lost_201(world, lossy):
    api, poll, db = world
    resident = through(api, lossy)
    lossy.lose("POST", "/tokens")
    token = resident.get_token(api.poll_for(poll["id"], resident))
    lost, recovered = lossy.seen("POST", "/tokens")
    assert (lost.fate, lost.status, recovered.fate) == ("reset", 201, "answered")
    assert recovered.body == lost.body and recovered.answer == lost.answer
    assert count(db, models.Issuance.resident, resident.address) == 1
    assert resident.submit(resident.make_ballot(token, [2]))["status"] == "accepted"


def test_the_sdk_recovers_a_lost_202(world, lossy):
    api, poll, db = world
    resident = through(api, lossy)
    token = resident.get_token(api.poll_for(poll["id"], resident))
    lossy.lose("POST", "/ballots")
    answer = resident.submit(resident.make_ballot(token, [0]))
    lost, recovered = lossy.seen("POST", "/ballots")
    assert (lost.fate, lost.status, recovered.fate) == ("reset", 202, "answered")
    assert recovered.body == lost.body
    assert signed(answer["receipt"]) == signed(json.loads(lost.answer)["receipt"])  # the receipt it never got
    assert count(db, models.Ballot.token, token.account.address) == 1
    api.wait_ballot(answer["ballotHash"])


def test_the_sdk_resends_after_5xx_and_timeouts(world, lossy):
    api, poll, db = world
    resident = through(api, lossy, timeout=1, first_delay=0.05)
    token = resident.get_token(api.poll_for(poll["id"], resident))
    lossy.fail("POST", "/ballots", times=2)
    lossy.lose("POST", "/ballots", how="hold")  # handled by the API, answered never: a timeout
    answer = resident.submit(resident.make_ballot(token, [1]))
    sent = lossy.seen("POST", "/ballots")
    assert [e.fate for e in sent] == ["failed", "failed", "held", "answered"]
    assert len({e.body for e in sent}) == 1
    assert signed(answer["receipt"]) == signed(json.loads(sent[2].answer)["receipt"])
    assert count(db, models.Ballot.token, token.account.address) == 1


def test_the_sdk_gives_up_at_its_deadline(world, lossy):
    api, poll, _ = world
    resident = through(api, lossy, deadline=1.5, first_delay=0.05, max_delay=0.2)
    token = resident.get_token(api.poll_for(poll["id"], resident))
    lossy.fail("POST", "/ballots", times=1000)
    started = time.monotonic()
    with pytest.raises(ApiError) as refused:
        resident.submit(resident.make_ballot(token, [0]))
    assert refused.value.status == 503 and time.monotonic() - started < 2.0
    assert len(lossy.seen("POST", "/ballots")) > 2
    lossy.close()  # nothing answers now: connection errors until the deadline
    started = time.monotonic()
    with pytest.raises(httpx.TransportError):
        resident.submit(resident.make_ballot(token, [0]))
    assert time.monotonic() - started < 2.0

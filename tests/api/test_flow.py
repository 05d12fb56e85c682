"""The whole flow over HTTP against real anvil and contracts: enrol, create polls, issue
tokens, cast and revote, relay, release key shares, publish, read results and datasets, and
spend points."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

from eth_hash.auto import keccak

from veche_core import dataset, events, key_shares
from veche_core.receipt import Receipt
from veche_core.rpc import RpcClient
from veche_core.typed_data import key_share_digest, poll_book_domain, sign_digest
from veche_testkit.waiting import eventually

from .conftest import assert_error


def release_shares(api, poll, indices):
    domain = poll_book_domain(poll["chainId"], poll["pollBook"])
    for index in indices:
        account, pair = api.trustees[index]
        share = key_shares.open_trustee_share(pair.secret_key, bytes.fromhex(poll["sealedShares"][index][2:]))
        signature = sign_digest(account.key, key_share_digest(domain, poll["id"], index, share))
        reply = api.http.post(
            f"/polls/{poll['id']}/key-shares",
            json={"index": index, "share": "0x" + share.hex(), "signature": "0x" + signature.hex()},
        )
        assert reply.status_code == 201, reply.text


def test_whole_flow(api):
    districts = ["Central"] * 5 + ["Northern"] * 4 + ["Eastern"] * 3
    residents = [api.resident(d) for d in districts]
    citywide = api.create_poll(points=20)
    local = api.create_poll(
        options=("Trees", "Benches", "Lights", "Paths"),
        max_choices=2,
        audience={"districts": ["Central", "Northern"]},
        points=10,
    )
    assert [s["districts"] for s in citywide["strata"]] == [["Central"], ["Northern"], ["Eastern"]]
    # VECHE_MIN_STRATUM=0: never merged. The registers hold these residents and the test pool's.
    assert [s["districts"] for s in local["strata"]] == [["Central"], ["Northern"]]
    assert all(s["registerSize"] >= n for s, n in zip(local["strata"], [5, 4], strict=True))
    meta = {
        "version": 2,  # the metadata commits each stratum's districts too
        "question": citywide["question"],
        "options": citywide["options"],
        "audience": citywide["audience"],
        "strata": [s["districts"] for s in citywide["strata"]],
    }
    assert (
        citywide["metadataHash"]
        == "0x" + keccak(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()).hex()
    )

    # Eastern residents do not see the district poll.
    eastern = residents[-1]
    assert [p["id"] for p in eastern.polls()] == [citywide["id"]]

    api.advance(31)
    expected_city: Counter = Counter()
    expected_local: Counter = Counter()
    hashes = []
    for number, resident in enumerate(residents):
        poll = api.poll_for(citywide["id"], resident)
        token = resident.get_token(poll)
        first = number % 3
        reply = resident.cast(token, [first])
        assert reply.status_code == 202, reply.text
        hashes.append(reply.json()["ballotHash"])
        final = first
        if number % 4 == 0:  # revote: the last ballot counts
            final = (first + 1) % 3
            reply = resident.cast(token, [final])
            assert reply.status_code == 202, reply.text
            hashes.append(reply.json()["ballotHash"])
        expected_city[final] += 1
        if resident.address != eastern.address and districts[number] != "Eastern":
            local_poll = api.poll_for(local["id"], resident)
            local_token = resident.get_token(local_poll)
            choice = sorted({number % 4, (number + 1) % 4})
            assert resident.cast(local_token, choice).status_code == 202
            for option in choice:
                expected_local[option] += 1

    # Receipts: signed by the relayer, then carry the transaction and block.
    for ballot_hash in hashes:
        status = api.wait_ballot(ballot_hash)
        receipt = Receipt.from_dict(status["receipt"])
        receipt.verify_signature()
        assert receipt.transaction_hash and receipt.block_number
    with RpcClient(api.chain.anvil.url) as rpc_client:
        casts = [
            events.decode_log(log)
            for log in rpc_client.iter_logs(
                api.chain.deployment.poll_book, ["0x" + events.BALLOT_CAST.topic0.hex()], 0, rpc_client.block_number()
            )
        ]
    city_casts = [c for c in casts if c.args["pollId"] == citywide["id"]]
    assert len(city_casts) == len(hashes)  # every accepted ballot exactly once (revotes included)

    # Close, release 2 of 3 shares (through the API and straight to the contract), publish.
    assert_error(api.http.post(f"/admin/polls/{citywide['id']}/publish", headers=api.admin), 409, "poll.not_closed")
    api.advance(3700)
    release_shares(api, citywide, [0, 2])
    release_shares(api, local, [1, 2])
    tally = api.http.post(f"/admin/polls/{citywide['id']}/publish", headers=api.admin)
    assert tally.status_code == 200, tally.text
    assert tally.json()["counts"] == [expected_city[i] for i in range(3)]
    assert [s["name"] for s in tally.json()["perStratum"]] == ["Central", "Northern", "Eastern"]
    local_tally = api.http.post(f"/admin/polls/{local['id']}/publish", headers=api.admin).json()
    assert local_tally["counts"] == [expected_local[i] for i in range(4)]
    assert_error(
        api.http.post(f"/admin/polls/{citywide['id']}/publish", headers=api.admin), 409, "result.already_published"
    )

    results = api.http.get(f"/polls/{citywide['id']}/results").json()
    csv_text = api.http.get(f"/polls/{citywide['id']}/dataset.csv").text
    rows = dataset.parse(csv_text)
    assert len(rows) == len(residents)
    assert "0x" + dataset.dataset_hash(rows).hex() == results["datasetHash"]
    json_rows = dataset.parse(api.http.get(f"/polls/{citywide['id']}/dataset.json").text)
    assert json_rows == rows
    assert Counter(r.choice[0] for r in rows) == expected_city
    assert list(csv.reader(io.StringIO(csv_text)))[0] == ["token", "stratum", "choice", "block"]
    from veche_node.contracts import bind
    from veche_node.rpc import make_web3

    poll_book, city_points = bind(make_web3(api.chain.anvil.url), api.chain.deployment)
    published, counts, data_hash = poll_book.functions.result(citywide["id"]).call()
    assert published and list(counts) == results["counts"] and "0x" + data_hash.hex() == results["datasetHash"]

    # Points: 20 for the citywide poll, +10 for the district poll.
    eventually(lambda: city_points.functions.balanceOf(residents[0].address).call() == 30, timeout=30)
    points = api.http.get(f"/points/{residents[0].address}").json()
    assert points["balance"] == 30
    assert sorted(e["amount"] for e in points["history"]) == [10, 20]
    assert api.http.get(f"/points/{eastern.address}").json()["balance"] == 20


def test_points_redeem_and_donate(api):
    resident = api.resident("Eastern")
    poll = api.create_poll(points=25, opens_in=5)
    token = resident.get_token(api.poll_for(poll["id"], resident))
    assert token.credential
    from veche_node.contracts import bind
    from veche_node.rpc import make_web3

    _, city_points = bind(make_web3(api.chain.anvil.url), api.chain.deployment)
    eventually(lambda: city_points.functions.balanceOf(resident.address).call() == 25, timeout=30)

    reward = api.http.post(
        "/admin/rewards",
        headers=api.admin,
        json={"name": "Metro ride", "description": "one ride", "price": 10, "stock": 5},
    )
    assert reward.status_code == 201, reward.text
    charity = api.http.post(
        "/admin/charities", headers=api.admin, json={"name": "Shelter", "account": api.trustees[0][0].address}
    )
    assert charity.status_code == 201, charity.text
    rewards = api.http.get("/points/rewards").json()
    assert rewards[-1]["name"] == "Metro ride" and rewards[-1]["stock"] == 5
    chain_id, address = api.chain.deployment.chain_id, api.chain.deployment.city_points

    deadline = api.chain_now() + 600  # the chain is ahead of the wall clock after time travel
    body = resident.redemption(chain_id, address, reward.json()["id"], nonce=0, deadline=deadline)
    reply = api.http.post("/points/redemptions", json=body)
    assert reply.status_code == 202, reply.text
    request_id = reply.json()["id"]
    eventually(lambda: api.http.get(f"/points/requests/{request_id}").json()["status"] == "confirmed", timeout=30)
    # replaying the same signed request: its nonce is used
    assert_error(api.http.post("/points/redemptions", json=body), 409, "points.bad_nonce")
    # too expensive: 15 left, donating 20
    too_much = resident.donation(chain_id, address, charity.json()["id"], 20, nonce=1, deadline=deadline)
    assert_error(api.http.post("/points/donations", json=too_much), 409, "points.insufficient_balance")
    donation = resident.donation(chain_id, address, charity.json()["id"], 15, nonce=1, deadline=deadline)
    reply = api.http.post("/points/donations", json=donation)
    assert reply.status_code == 202, reply.text
    eventually(
        lambda: api.http.get(f"/points/requests/{reply.json()['id']}").json()["status"] == "confirmed", timeout=30
    )
    points = api.http.get(f"/points/{resident.address}").json()
    assert points["balance"] == 0 and points["nonce"] == 2
    assert [e["event"] for e in points["history"]] == ["PointsCredited", "RewardRedeemed", "PointsDonated"]
    assert api.http.get("/points/charities").json()[-1]["balance"] == 15
    expired = resident.redemption(chain_id, address, reward.json()["id"], nonce=2, deadline=1)
    assert_error(api.http.post("/points/redemptions", json=expired), 422, "points.expired")


def test_health_and_metrics(api):
    health = api.http.get("/health")
    assert health.status_code == 200, health.text
    body = health.json()
    assert body["status"] == "ok" and body["chain"]["ok"] and body["database"]["ok"] and body["relay"]["running"]
    assert body["relay"]["lagSeconds"] == 0
    text = api.http.get("/metrics").text
    for name in (
        "veche_ballots_accepted_total",
        "veche_ballots_confirmed_total",
        "veche_batch_size_bucket",
        "veche_relay_lag_seconds",
        'veche_ballots{status="confirmed"}',
    ):
        assert name in text, name

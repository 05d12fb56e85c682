"""Protocol v2 through the city's HTTP API, on real anvil (each database): trustees register their
static keys, a v2 poll is created by addresses, its ceremony runs message by message through
`POST /polls/{id}/ceremony` while `GET /polls/{id}/ceremony` shows each member's next step, a
bad share is complained about and the administrator restarts without its sender, and the
released shares are checked against the ceremony's verification shares. Every refusal is made
off chain, with nothing sent: the test counts the PollBook's ceremony events."""

from __future__ import annotations

import os

import pytest
from eth_account import Account

from veche_client.sdk import ApiError
from veche_core import dkg, events, hpke, p256, plaintext, sealing
from veche_core.ceremony import ComplaintReason, MessageKind
from veche_core.errors import SealingError
from veche_core.rpc import RpcClient
from veche_core.typed_data import (
    ceremony_message_digest,
    key_share_digest,
    poll_book_domain,
    sign_digest,
    trustee_key_digest,
)

from .conftest import assert_error

THRESHOLD = 2
WAIT, ROUND1, CERTIFY, DONE = "wait", "round1", "certify", "done"
FROZEN = "frozen: the administrator must restart"


class Trustee:
    """A trustee's two keys: its Ethereum account (signs) and its P-256 static key."""

    def __init__(self) -> None:
        self.account = Account.create()
        self.static = dkg.StaticKey.generate()

    @property
    def address(self) -> str:
        return self.account.address

    def sign(self, digest: bytes) -> str:
        return "0x" + sign_digest(bytes(self.account.key), digest).hex()


class Ceremony:
    """The trustees of one poll and what they need to post through the API."""

    def __init__(self, api, poll: dict, trustees: list[Trustee]) -> None:
        self.api, self.poll, self.trustees = api, poll, trustees
        self.domain = poll_book_domain(poll["chainId"], poll["pollBook"])

    def state(self) -> dict:
        reply = self.api.http.get(f"/polls/{self.poll['id']}/ceremony")
        assert reply.status_code == 200, reply.text
        return reply.json()

    def next_steps(self) -> dict[int, str]:
        return {m["index"]: m["next"] for m in self.state()["members"]}

    def context(self, state: dict) -> tuple[bytes, list[bytes]]:
        keys = [bytes.fromhex(m["key"][2:]) for m in state["members"]]
        book = bytes.fromhex(self.poll["pollBook"][2:])
        return dkg.ceremony_context(self.poll["chainId"], book, self.poll["id"], state["attempt"], keys), keys

    def body(self, index: int, kind: int, payload: bytes, *, attempt: int | None = None, signer=None) -> dict:
        attempt = attempt or self.state()["attempt"]
        digest = ceremony_message_digest(self.domain, self.poll["id"], attempt, index, kind, payload)
        return {
            "attempt": attempt,
            "index": index,
            "kind": kind,
            "payload": "0x" + payload.hex(),
            "signature": (signer or self.trustees[index]).sign(digest),
        }

    def post(self, index: int, kind: int, payload: bytes, **kw):
        return self.api.http.post(f"/polls/{self.poll['id']}/ceremony", json=self.body(index, kind, payload, **kw))

    def round1(self, index: int) -> bytes:
        state = self.state()
        context, keys = self.context(state)
        member = [m["index"] for m in state["members"]].index(index) + 1
        return dkg.round1(context, THRESHOLD, keys, member, self.trustees[index].static).encode()

    def round2(self, index: int) -> dkg.KeyShare:
        state = self.state()
        context, keys = self.context(state)
        member = [m["index"] for m in state["members"]].index(index) + 1
        return dkg.round2(context, THRESHOLD, keys, member, self.trustees[index].static, self.payloads(state))

    @staticmethod
    def payloads(state: dict) -> list[bytes]:
        found = {m["index"]: bytes.fromhex(m["payload"][2:]) for m in state["messages"] if m["kind"] == 1}
        return [found[m["index"]] for m in state["members"]]

    def certification(self, index: int) -> bytes:
        state = self.state()
        context, keys = self.context(state)
        share = self.round2(index)
        return dkg.certification_payload(
            context, THRESHOLD, keys, self.trustees[index].static, share, self.payloads(state)
        )


def register(api, trustee: Trustee, serial: int = 1, *, signer: Trustee | None = None, key: bytes | None = None):
    deployment = api.http.get("/deployment").json()
    domain = poll_book_domain(deployment["chainId"], deployment["pollBook"])
    key = key if key is not None else trustee.static.public_key
    digest = trustee_key_digest(domain, trustee.address, key, serial)
    body = {
        "trustee": trustee.address,
        "key": "0x" + key.hex(),
        "serial": serial,
        "signature": (signer or trustee).sign(digest),
    }
    return api.http.post("/trustees/keys", json=body)


def ceremony_events(api) -> int:
    with RpcClient(api.chain.anvil.url) as rpc:
        topics = [[events.CEREMONY_MESSAGE_POSTED.topic, events.CEREMONY_STARTED.topic]]
        return len(list(rpc.iter_logs(api.chain.deployment.poll_book, topics, 0, rpc.block_number())))


def not_a_point() -> bytes:
    """02 ‖ x for an x that is no P-256 point's."""
    while True:
        candidate = b"\x02" + os.urandom(32)
        try:
            p256.decode_point(candidate)
        except Exception:
            return candidate


@pytest.fixture(scope="module")
def trustees(api) -> list[Trustee]:
    found = [Trustee() for _ in range(3)]
    for trustee in found:
        reply = register(api, trustee)
        assert reply.status_code == 201, reply.text
        assert reply.json()["serial"] == 1 and reply.json()["transactionHash"]
    return found


def test_trustee_key_registration(api, trustees):
    first = trustees[0]
    shown = api.http.get(f"/trustees/{first.address}/key").json()
    assert shown == {
        "trustee": first.address,
        "key": "0x" + first.static.public_key.hex(),
        "serial": 1,
        "transactionHash": None,
    }
    again = register(api, first)  # a retry of the registration answers as the first
    assert again.status_code == 201 and again.json()["serial"] == 1 and again.json().get("transactionHash") is None
    before = api.http.get(f"/trustees/{first.address}/key").json()
    newcomer = Trustee()
    assert_error(register(api, newcomer, signer=first), 422, "trustee_key.bad_signature")
    assert_error(register(api, newcomer, serial=2), 409, "trustee_key.wrong_serial")
    assert_error(
        register(api, first, serial=1, key=dkg.StaticKey.generate().public_key), 409, "trustee_key.wrong_serial"
    )
    assert_error(register(api, newcomer, key=not_a_point()), 422, "trustee_key.invalid")
    assert api.http.get(f"/trustees/{newcomer.address}/key").json() == {
        "trustee": newcomer.address,
        "key": None,
        "serial": 0,
        "transactionHash": None,
    }
    assert api.http.get(f"/trustees/{first.address}/key").json() == before


def test_v2_poll_creation_refusals(api, trustees):
    addresses = [t.address for t in trustees]
    stranger = Account.create().address
    for trustee_list, opens_in, status, code, text in (
        ([*addresses[:2], stranger], 700, 422, "poll.missing_trustee_key", stranger),
        (addresses, 30, 422, "poll.invalid_window", "key ceremony"),
    ):
        now = api.chain_now()
        body = {
            "question": "?",
            "options": ["a", "b"],
            "opensAt": now + opens_in,
            "closesAt": now + opens_in + 3600,
            "trustees": [{"address": a} for a in trustee_list],
            "threshold": THRESHOLD,
            "keyCeremony": True,
        }
        reply = api.http.post("/admin/polls", headers=api.admin, json=body)
        assert_error(reply, status, code)
        assert text in reply.json()["error"]["message"]
    now = api.chain_now()
    body = {
        "question": "?",
        "options": ["a", "b"],
        "opensAt": now + 700,
        "closesAt": now + 4000,
        "trustees": [{"address": a, "publicKey": "0x" + "11" * 32} for a in addresses],
        "threshold": THRESHOLD,
        "keyCeremony": True,
    }
    assert_error(api.http.post("/admin/polls", headers=api.admin, json=body), 422, "poll.invalid_trustee_key")
    # v2 is the default: X25519 keys without `"keyCeremony": false` are refused, and the answer says how.
    del body["keyCeremony"]
    reply = api.http.post("/admin/polls", headers=api.admin, json=body)
    assert_error(reply, 422, "poll.invalid_trustee_key")
    assert '"keyCeremony": false' in reply.json()["error"]["message"]
    v1 = {**body, "keyCeremony": False, "trustees": [{"address": a} for a in addresses]}
    assert_error(api.http.post("/admin/polls", headers=api.admin, json=v1), 422, "poll.invalid_trustee_key")


def test_v2_polls_take_the_ceremonys_bounds_and_v1_polls_slip39s(api, trustees):
    """v2 (COCKTAIL): any 1 ≤ t ≤ n ≤ 255, so a threshold of 1 among several trustees is allowed;
    v1 (SLIP-39) refuses it, and more than 16 trustees."""
    addresses = [t.address for t in trustees]
    poll = api.create_poll(opens_in=1000, lasts=3600, ceremony=addresses, threshold=1)
    assert poll["version"] == 2 and poll["threshold"] == 1
    now = api.chain_now()
    v1 = {
        "question": "?",
        "options": ["a", "b"],
        "opensAt": now + 700,
        "closesAt": now + 4000,
        "threshold": 1,
        "keyCeremony": False,
        "trustees": [
            {"address": account.address, "publicKey": "0x" + pair.public_key.hex()} for account, pair in api.trustees
        ],
    }
    reply = api.http.post("/admin/polls", headers=api.admin, json=v1)
    assert_error(reply, 422, "poll.invalid_threshold")
    assert "SLIP-39" in reply.json()["error"]["message"]
    many = [{"address": Account.create().address, "publicKey": "0x" + "22" * 32} for _ in range(17)]
    reply = api.http.post("/admin/polls", headers=api.admin, json={**v1, "threshold": 2, "trustees": many})
    assert_error(reply, 422, "poll.invalid_threshold")


def test_a_whole_ceremony_through_the_api(api, trustees):
    addresses = [t.address for t in trustees]
    poll = api.create_poll(opens_in=1000, lasts=3600, ceremony=addresses, threshold=THRESHOLD)  # no keyCeremony
    assert poll["version"] == 2 and poll["electionKey"] is None and poll["sealedShares"] == []
    v1 = api.create_poll(opens_in=1000, lasts=3600)
    run = Ceremony(api, poll, trustees)
    state = run.state()
    assert state["attempt"] == 1 and state["threshold"] == THRESHOLD and not state["certified"]
    assert [(m["index"], m["member"], m["address"]) for m in state["members"]] == [
        (i, i + 1, a) for i, a in enumerate(addresses)
    ]
    assert [m["key"] for m in state["members"]] == ["0x" + t.static.public_key.hex() for t in trustees]
    assert run.next_steps() == {0: ROUND1, 1: ROUND1, 2: ROUND1}

    payload = run.round1(0)
    sent = ceremony_events(api)
    # Refused off chain, nothing sent:
    assert_error(run.post(0, MessageKind.Round1, payload, attempt=2), 409, "ceremony.wrong_attempt")
    assert_error(run.post(0, MessageKind.Round1, payload, signer=trustees[1]), 422, "ceremony.bad_signature")
    assert_error(run.post(0, MessageKind.Round1, payload[:-1]), 422, "ceremony.bad_payload")
    assert_error(run.post(0, 4, payload), 422, "ceremony.bad_payload")
    broken = bytearray(payload)
    broken[THRESHOLD * 33 + 40] ^= 1  # inside the proof of possession
    assert_error(run.post(0, MessageKind.Round1, bytes(broken)), 422, "ceremony.bad_round1")
    assert_error(run.post(0, MessageKind.Certify, bytes(98)), 422, "ceremony.bad_payload")
    unknown = run.body(0, MessageKind.Round1, payload)
    unknown["index"] = 7
    assert_error(api.http.post(f"/polls/{poll['id']}/ceremony", json=unknown), 422, "ceremony.unknown_trustee")
    assert_error(api.http.post(f"/polls/{v1['id']}/ceremony", json=unknown), 409, "ceremony.none")
    assert_error(api.http.get(f"/polls/{v1['id']}/ceremony"), 409, "ceremony.none")
    assert ceremony_events(api) == sent

    posted = run.post(0, MessageKind.Round1, payload)
    assert posted.status_code == 201, posted.text
    replay = run.post(0, MessageKind.Round1, payload)  # a retry: the same answer, nothing sent
    assert replay.status_code == 200 and replay.json()["replay"]
    assert replay.json()["transactionHash"] == posted.json()["transactionHash"]
    assert_error(run.post(0, MessageKind.Round1, run.round1(0)), 409, "ceremony.already_posted")
    assert run.next_steps() == {0: WAIT, 1: ROUND1, 2: ROUND1}

    assert run.post(1, MessageKind.Round1, run.round1(1)).status_code == 201
    assert_error(run.post(0, MessageKind.Certify, bytes([2]) + bytes(97)), 409, "ceremony.round1_incomplete")
    assert run.post(2, MessageKind.Round1, run.round1(2)).status_code == 201
    assert run.next_steps() == {0: CERTIFY, 1: CERTIFY, 2: CERTIFY}

    good = run.certification(0)
    other_key = p256.mul_base(5).encode() + good[33:]
    assert_error(run.post(0, MessageKind.Certify, other_key), 422, "ceremony.key_mismatch")
    assert_error(
        run.post(0, MessageKind.Certify, good[:33] + run.certification(1)[33:]), 422, "ceremony.bad_certification"
    )
    # A complaint about a sound share is refuted by its own evidence: refused.
    state = run.state()
    context, keys = run.context(state)
    evidence = dkg.make_complaint(
        context, THRESHOLD, keys, trustees[0].static, dkg.Fault(2, ComplaintReason(2)), run.payloads(state)[1]
    )
    refuted = run.post(0, MessageKind.Complaint, dkg.Complaint(1, 2, evidence).encode())
    assert_error(refuted, 422, "ceremony.refuted_complaint")
    assert_error(run.post(0, MessageKind.Complaint, bytes([1, 1])), 422, "ceremony.refuted_complaint")
    assert_error(run.post(0, MessageKind.Complaint, bytes([0, 1])), 422, "ceremony.invalid_accused")

    assert run.post(0, MessageKind.Certify, good).status_code == 201
    assert run.next_steps() == {0: WAIT, 1: CERTIFY, 2: CERTIFY}
    assert run.post(1, MessageKind.Certify, run.certification(1)).status_code == 201
    last = run.post(2, MessageKind.Certify, run.certification(2))
    assert last.status_code == 201 and last.json()["certified"]
    joint = last.json()["electionKey"]
    assert joint == "0x" + good[:33].hex() and len(bytes.fromhex(joint[2:])) == 33
    state = run.state()
    assert state["certified"] and state["electionKey"] == joint and run.next_steps() == {0: DONE, 1: DONE, 2: DONE}
    assert_error(run.post(1, MessageKind.Certify, run.certification(1)), 409, "ceremony.certified")
    listed = {p["id"]: p for p in api.http.get("/polls").json()}
    assert (listed[poll["id"]]["version"], listed[poll["id"]]["electionKey"]) == (2, joint)
    assert (listed[v1["id"]]["version"], len(listed[v1["id"]]["electionKey"])) == (1, 66)
    assert api.http.get(f"/polls/{poll['id']}").json()["electionKey"] == joint

    # After close: each released share is checked against the trustee's verification share.
    shares = {i: run.round2(i).release_payload() for i in range(3)}

    def release(index: int, share: bytes):
        digest = key_share_digest(run.domain, poll["id"], index, share)
        body = {"index": index, "share": "0x" + share.hex(), "signature": trustees[index].sign(digest)}
        return api.http.post(f"/polls/{poll['id']}/key-shares", json=body)

    assert_error(release(0, shares[0]), 409, "poll.not_closed")
    # A resident votes: the SDK seals with HPKE to the joint key; a v1-sized ciphertext is refused.
    resident = api.resident()
    api.advance(1000)
    listed = api.poll_for(poll["id"], resident)
    token = resident.get_token(listed)
    wrong = resident.make_ballot(token, [0], ciphertext=bytes(sealing.sealed_length(plaintext.plaintext_length(3))))
    assert_error(resident.cast(token, [0], ciphertext=wrong.ciphertext), 422, "ballot.bad_ciphertext")
    ballot = resident.make_ballot(token, [1])
    assert ballot.ciphertext[0] == 2 and len(ballot.ciphertext) == hpke.sealed_length(plaintext.plaintext_length(3))
    api.wait_ballot(resident.submit(ballot)["ballotHash"])
    api.advance(3600 + 1)
    assert_error(release(0, shares[1]), 422, "key_share.mismatch")
    assert_error(release(0, b"\x01" + shares[0][1:]), 422, "key_share.invalid")
    for index in (0, 2):
        reply = release(index, shares[index])
        assert reply.status_code == 201, reply.text
    released = {member: dkg.decode_release_share(shares[member - 1]) for member in (1, 3)}
    secret = dkg.combine_shares(released, THRESHOLD, bytes.fromhex(joint[2:]))
    assert p256.mul_base(secret).encode().hex() == joint[2:]


def test_a_bad_share_a_complaint_and_a_restart(api, trustees):
    addresses = [t.address for t in trustees]
    poll = api.create_poll(opens_in=1000, lasts=3600, ceremony=addresses, threshold=THRESHOLD)
    run = Ceremony(api, poll, trustees)
    for index in (0, 1):
        assert run.post(index, MessageKind.Round1, run.round1(index)).status_code == 201
    # Trustee 2 sends trustee 0 a share that does not decrypt (the proof of possession still holds:
    # nothing off chain can tell).
    cheat = bytearray(run.round1(2))
    share_to_0 = THRESHOLD * 33 + 98 + 8
    cheat[share_to_0 : share_to_0 + 48] = os.urandom(48)
    assert run.post(2, MessageKind.Round1, bytes(cheat)).status_code == 201
    assert run.next_steps() == {0: CERTIFY, 1: CERTIFY, 2: CERTIFY}

    with pytest.raises(dkg.CeremonyFaultError) as found:
        run.round2(0)
    [fault] = found.value.faults
    assert (fault.member, int(fault.reason)) == (3, 2)
    state = run.state()
    context, keys = run.context(state)
    evidence = dkg.make_complaint(context, THRESHOLD, keys, trustees[0].static, fault, run.payloads(state)[2])
    complaint = dkg.Complaint(2, int(fault.reason), evidence).encode()
    assert run.post(0, MessageKind.Complaint, complaint).status_code == 201
    state = run.state()
    assert state["frozen"] and {m["index"]: m["next"] for m in state["members"]} == {0: FROZEN, 1: FROZEN, 2: FROZEN}
    assert state["members"][0]["complainedAbout"] == [2]
    assert [(f["index"], f["cause"]) for f in state["atFault"]] == [(2, "was shown at fault by trustee 0's complaint")]
    assert_error(run.post(1, MessageKind.Certify, run.certification(1)), 409, "ceremony.frozen")
    again = run.post(0, MessageKind.Complaint, complaint)
    assert again.status_code == 200 and again.json()["replay"]
    evidence = dkg.make_complaint(context, THRESHOLD, keys, trustees[0].static, fault, run.payloads(state)[2])
    other = dkg.Complaint(2, int(fault.reason), evidence).encode()  # (a fresh DLEQ nonce)
    assert_error(run.post(0, MessageKind.Complaint, other), 409, "ceremony.already_posted")

    restart = f"/admin/polls/{poll['id']}/ceremony/restart"
    sent = ceremony_events(api)
    assert_error(api.http.post(restart, json={"excluded": [2]}), 401, "auth.admin_required")
    assert_error(
        api.http.post(restart, headers=api.admin, json={"excluded": [1]}), 409, "ceremony.unjustified_exclusion"
    )
    assert_error(api.http.post(restart, headers=api.admin, json={"excluded": [5]}), 422, "ceremony.invalid_exclusion")
    assert_error(
        api.http.post(restart, headers=api.admin, json={"excluded": [2, 2]}), 422, "ceremony.invalid_exclusion"
    )
    assert_error(
        api.http.post(restart, headers=api.admin, json={"excluded": [0, 1, 2]}), 409, "ceremony.too_few_members"
    )
    assert ceremony_events(api) == sent
    restarted = api.http.post(restart, headers=api.admin, json={"excluded": [2]})
    assert restarted.status_code == 200, restarted.text
    state = restarted.json()
    assert (state["attempt"], [m["index"] for m in state["members"]], state["excluded"]) == (2, [0, 1], [2])
    assert run.next_steps() == {0: ROUND1, 1: ROUND1}

    assert_error(run.post(2, MessageKind.Round1, bytes(cheat)), 422, "ceremony.not_member")
    assert_error(run.post(0, MessageKind.Round1, run.round1(0), attempt=1), 409, "ceremony.wrong_attempt")
    for index in (0, 1):
        assert run.post(index, MessageKind.Round1, run.round1(index)).status_code == 201
    assert run.next_steps() == {0: CERTIFY, 1: CERTIFY}
    for index in (0, 1):
        assert run.post(index, MessageKind.Certify, run.certification(index)).status_code == 201
    state = run.state()
    assert state["certified"] and run.next_steps() == {0: DONE, 1: DONE}


def test_a_silent_trustee_may_be_excluded_only_from_the_round_1_deadline(api, trustees):
    """Halfway from the attempt's start to the opening (`round1Deadline`): before it a trustee
    that has posted nothing is not at fault, and the restart that would drop it is refused (check
    14 would fail); from it, it is at fault and the restart goes through."""
    addresses = [t.address for t in trustees]
    poll = api.create_poll(opens_in=1000, lasts=3600, ceremony=addresses, threshold=THRESHOLD)
    run = Ceremony(api, poll, trustees)
    for index in (0, 1):
        assert run.post(index, MessageKind.Round1, run.round1(index)).status_code == 201
    state = run.state()
    deadline = state["round1Deadline"]
    assert api.chain_now() < deadline < poll["opensAt"] and state["atFault"] == []
    restart = f"/admin/polls/{poll['id']}/ceremony/restart"
    refused = api.http.post(restart, headers=api.admin, json={"excluded": [2]})
    assert_error(refused, 409, "ceremony.unjustified_exclusion")
    assert f"round-1 deadline, {deadline}" in refused.json()["error"]["message"]

    api.advance(deadline - api.chain_now())
    state = run.state()
    assert [(f["index"], f["cause"]) for f in state["atFault"]] == [
        (2, "posted no round-1 message by the round-1 deadline")
    ]
    restarted = api.http.post(restart, headers=api.admin, json={"excluded": [2]})
    assert restarted.status_code == 200, restarted.text
    assert restarted.json()["attempt"] == 2 and restarted.json()["excluded"] == [2]


def test_after_opening_the_ceremony_is_closed(api, trustees):
    addresses = [t.address for t in trustees]
    poll = api.create_poll(opens_in=700, lasts=3600, ceremony=addresses, threshold=THRESHOLD)
    run = Ceremony(api, poll, trustees)
    payload = run.round1(0)
    resident, late = api.resident(), api.resident()
    token = resident.get_token(api.poll_for(poll["id"], resident))  # before the opening: the ceremony may yet certify
    api.advance(701)
    assert_error(run.post(0, MessageKind.Round1, payload), 409, "ceremony.closed")
    # After it, without a key: no token, and so no points, for a poll that can take no ballot.
    with pytest.raises(ApiError) as refused:
        late.get_token(api.poll_for(poll["id"], late))
    assert (refused.value.status, refused.value.code) == (409, "poll.never_opened")
    with pytest.raises(SealingError):
        resident.make_ballot(token, [0])
    ciphertext = bytes(hpke.sealed_length(plaintext.plaintext_length(3)))
    assert_error(resident.cast(token, [0], ciphertext=ciphertext), 409, "ballot.key_not_certified")
    closed = "closed: the poll opened without a certified key"
    assert run.next_steps() == {0: closed, 1: closed, 2: closed}
    restart = f"/admin/polls/{poll['id']}/ceremony/restart"
    assert_error(api.http.post(restart, headers=api.admin, json={"excluded": []}), 409, "ceremony.closed")
    assert api.http.get(f"/polls/{poll['id']}").json()["electionKey"] is None

"""veche_core.ceremony: the key ceremony's payload lengths and framing (the lengths PollBook
checks are tested against the contract in tests/contracts/test_key_ceremony.py), and the typed
event decoders."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veche_core import ceremony, events
from veche_core.ceremony import (
    Certification,
    Complaint,
    ComplaintReason,
    Evidence,
    MessageKind,
    Round1,
)
from veche_core.errors import EncodingError

POLL_BOOK = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def _point(prefix: int = 2) -> bytes:
    return bytes([prefix]) + os.urandom(32)


def _round1(t: int, n: int) -> Round1:
    return Round1(tuple(_point() for _ in range(t)), os.urandom(65), _point(3), tuple(os.urandom(48) for _ in range(n)))


def test_the_lengths():
    assert ceremony.round1_length(1, 1) == 33 + 98 + 56 == 187
    assert ceremony.round1_length(2, 3) == 66 + 98 + 168 == 332
    assert ceremony.round1_length(4, 7) == 132 + 98 + 392 == 622
    assert ceremony.round1_length(255, 255) == 22_793
    for t, n in ((0, 3), (4, 3), (1, 256), (-1, 2)):
        with pytest.raises(EncodingError):
            ceremony.round1_length(t, n)
    assert ceremony.complaint_length(ComplaintReason.MalformedRound1) == 2
    for reason in (2, 3, 4):
        assert ceremony.complaint_length(reason) == 2 + 33 + 33 + 32 + 32 == 132
    for reason in (0, 5, 255):
        with pytest.raises(EncodingError):
            ceremony.complaint_length(reason)
    assert ceremony.CERTIFY_LENGTH == 98


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_round1_round_trips_at_its_length(tn):
    t, n = tn
    message = _round1(t, n)
    payload = message.encode()
    assert len(payload) == ceremony.round1_length(t, n)
    assert ceremony.decode_round1(payload, t, n) == message
    # the layout: C (33t) ‖ PoP (65) ‖ E (33) ‖ (uint64_be(48) ‖ c) per member
    at = 33 * t + 65 + 33
    assert payload[: 33 * t] == b"".join(message.commitments)
    assert payload[at : at + 8] == (48).to_bytes(8, "big")
    assert payload[at + 8 : at + 56] == message.share_ciphertexts[0]


def test_round1_framing_is_checked():
    payload = bytearray(_round1(2, 3).encode())
    with pytest.raises(EncodingError):
        ceremony.decode_round1(bytes(payload[:-1]), 2, 3)
    with pytest.raises(EncodingError):
        ceremony.decode_round1(bytes(payload), 2, 4)
    at = 33 * 2 + 98 + 56  # the second member's length prefix
    payload[at + 7] = 47
    with pytest.raises(EncodingError, match="member 2"):
        ceremony.decode_round1(bytes(payload), 2, 3)
    # (the contract accepts that payload: only its length is the contract's)
    assert ceremony.payload_length_error(MessageKind.Round1, bytes(payload), 2, 3) is None
    for bad in (
        Round1((), os.urandom(65), _point(), (os.urandom(48),)),  # t = 0
        Round1((_point(), _point()), os.urandom(65), _point(), (os.urandom(48),)),  # t > n
        Round1((_point(),), os.urandom(64), _point(), (os.urandom(48),)),
        Round1((_point(),), os.urandom(65), _point()[:32], (os.urandom(48),)),
        Round1((_point(),), os.urandom(65), _point(), (os.urandom(49),)),
    ):
        with pytest.raises(EncodingError):
            bad.encode()


def test_complaints_round_trip():
    public = Complaint(7, ComplaintReason.MalformedRound1)
    assert public.encode() == bytes([7, 1])
    assert ceremony.decode_complaint(bytes([7, 1])) == public
    evidence = Evidence(_point(), _point(3), os.urandom(32), os.urandom(32))
    for reason in sorted(set(ComplaintReason) - ceremony.PUBLIC_REASONS - {ComplaintReason.Reserved}):
        complaint = Complaint(254, reason, evidence)
        payload = complaint.encode()
        assert payload == bytes([254, reason]) + evidence.shared_ephemeral + evidence.shared_static + (
            evidence.challenge + evidence.response
        )
        assert len(payload) == 132
        assert ceremony.decode_complaint(payload) == complaint


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x01", b"\x01\x00", b"\x01\x05", b"\x01\x01\x00", b"\x01\x02" + bytes(129), b"\x01\x04" + bytes(131)],
)
def test_complaints_the_contract_refuses_do_not_decode(payload):
    with pytest.raises(EncodingError):
        ceremony.decode_complaint(payload)
    assert ceremony.payload_length_error(MessageKind.Complaint, payload, 2, 3) is not None


def test_a_complaint_has_evidence_exactly_when_its_reason_needs_it():
    evidence = Evidence(_point(), _point(), os.urandom(32), os.urandom(32))
    with pytest.raises(EncodingError):
        Complaint(1, ComplaintReason.MalformedRound1, evidence).encode()
    with pytest.raises(EncodingError):
        Complaint(1, ComplaintReason.ShareVerification).encode()
    with pytest.raises(EncodingError):
        Complaint(1, ComplaintReason.Reserved).encode()
    with pytest.raises(EncodingError):
        Complaint(256, ComplaintReason.MalformedRound1).encode()
    with pytest.raises(EncodingError):
        Evidence(_point(), _point(), os.urandom(31), os.urandom(32)).encode()


def test_certifications():
    key, signature = _point(3), os.urandom(65)
    payload = Certification(key, signature).encode()
    assert payload == key + signature and len(payload) == 98
    assert ceremony.decode_certification(payload) == (key, signature)
    for bad in (payload[:-1], payload + b"\x00", b"\x04" + payload[1:], b"\x00" + payload[1:]):
        with pytest.raises(EncodingError):
            ceremony.decode_certification(bad)
        assert ceremony.payload_length_error(MessageKind.Certify, bad, 2, 3) is not None
    with pytest.raises(EncodingError):
        Certification(b"\x04" + key[1:], signature).encode()
    with pytest.raises(EncodingError):
        Certification(key, signature[:64]).encode()


def test_payload_length_error_has_one_rule_per_kind():
    assert ceremony.payload_length_error(MessageKind.Round1, bytes(332), 2, 3) is None
    assert ceremony.payload_length_error(MessageKind.Round1, bytes(331), 2, 3) == "round 1 is 332 bytes, not 331"
    assert ceremony.payload_length_error(MessageKind.Complaint, bytes([0, 1]), 2, 3) is None
    assert ceremony.payload_length_error(MessageKind.Certify, _point() + bytes(65), 2, 3) is None
    assert ceremony.payload_length_error(MessageKind.Reserved, b"", 2, 3) == "message kind 0 is reserved"
    assert ceremony.payload_length_error(4, b"", 2, 3) == "unknown message kind 4"


def test_compressed_point_shape():
    assert ceremony.is_compressed_point(_point(2)) and ceremony.is_compressed_point(_point(3))
    for bad in (b"", _point(4), _point(0), _point(2)[:32], _point(2) + b"\x00", b"\x04" + os.urandom(64)):
        assert not ceremony.is_compressed_point(bad)


def test_session_id():
    session = ceremony.session_id(31337, POLL_BOOK, 5, 2)
    assert session == (
        b"veche/ceremony/v2"
        + (31337).to_bytes(32, "big")
        + bytes.fromhex(POLL_BOOK[2:])
        + (5).to_bytes(32, "big")
        + b"\x02"
    )
    assert len(session) == 17 + 32 + 20 + 32 + 1 == 102
    assert ceremony.session_id(31337, bytes.fromhex(POLL_BOOK[2:]), 5, 2) == session
    for attempt in (0, 256):
        with pytest.raises(EncodingError):
            ceremony.session_id(31337, POLL_BOOK, 5, attempt)
    with pytest.raises(EncodingError):
        ceremony.session_id(31337, "0x1234", 5, 1)


# --- The typed decoders of the ceremony's events --------------------------------------------


def _event(name: str, **args) -> events.DecodedEvent:
    return events.DecodedEvent(name, args, 12, bytes(32), 3)


def test_typed_event_decoders():
    key = _point()
    trustee = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    assert events.trustee_key_registered(_event("TrusteeKeyRegistered", trustee=trustee, serial=2, key=key)) == (
        trustee,
        2,
        key,
        12,
        3,
    )
    started = _event("CeremonyStarted", pollId=4, attempt=1, members=(0, 2), keys=(key, key))
    assert events.ceremony_started(started) == (4, 1, (0, 2), (key, key), 12, 3)
    with pytest.raises(EncodingError, match="differ in length"):
        events.ceremony_started(_event("CeremonyStarted", pollId=4, attempt=1, members=(0, 2), keys=(key,)))
    posted = _event("CeremonyMessagePosted", pollId=4, attempt=1, index=2, kind=3, payload=b"xy")
    assert events.ceremony_message_posted(posted) == (4, 1, 2, 3, b"xy", 12, 3)
    certified = _event("ElectionKeyCertified", pollId=4, attempt=1, electionKey=key)
    assert events.election_key_certified(certified) == (4, 1, key, 12, 3)
    for decoder in (
        events.trustee_key_registered,
        events.ceremony_started,
        events.ceremony_message_posted,
        events.election_key_certified,
    ):
        with pytest.raises(EncodingError, match="where a"):
            decoder(_event("ResultPublished", pollId=4, counts=(), datasetHash=bytes(32)))


def test_the_ceremony_events_are_poll_book_events():
    assert set(events.CEREMONY_EVENTS) | {events.TRUSTEE_KEY_REGISTERED} <= set(events.POLL_BOOK_EVENTS)
    assert events.TRUSTEE_KEY_REGISTERED.indexed_fields == [("address", "trustee")]
    assert all(spec.indexed_fields == [("uint256", "pollId")] for spec in events.CEREMONY_EVENTS)

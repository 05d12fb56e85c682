"""veche_core.ceremony: the key ceremony's payload lengths, the shape rules PollBook applies and
the session id (the lengths PollBook checks are tested against the contract in
tests/contracts/test_key_ceremony.py; the payload structures, dkg's, in test_dkg.py), and the
typed event decoders."""

from __future__ import annotations

import os

import pytest

from veche_core import ceremony, events
from veche_core.ceremony import ComplaintReason, MessageKind
from veche_core.errors import EncodingError

POLL_BOOK = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def _point(prefix: int = 2) -> bytes:
    return bytes([prefix]) + os.urandom(32)


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


def test_payload_length_error_has_one_rule_per_kind():
    assert ceremony.payload_length_error(MessageKind.Round1, bytes(332), 2, 3) is None
    assert ceremony.payload_length_error(MessageKind.Round1, bytes(331), 2, 3) == "round 1 is 332 bytes, not 331"
    assert ceremony.payload_length_error(MessageKind.Complaint, bytes([0, 1]), 2, 3) is None
    assert ceremony.payload_length_error(MessageKind.Certify, _point() + bytes(65), 2, 3) is None
    assert (
        ceremony.payload_length_error(MessageKind.Round1, bytes(332), 2, 256)
        == "no ceremony has threshold 2 of 256 members"
    )
    assert ceremony.payload_length_error(MessageKind.Complaint, b"\x00", 2, 3) == "a complaint is at least 2 bytes"
    assert ceremony.payload_length_error(MessageKind.Complaint, b"\x00\x00", 2, 3) == "complaint reason 0 is reserved"
    assert ceremony.payload_length_error(MessageKind.Complaint, b"\x00\x05", 2, 3) == "unknown complaint reason 5"
    assert (
        ceremony.payload_length_error(MessageKind.Complaint, bytes([0, 2]) + bytes(129), 2, 3)
        == "a complaint with reason 2 is 132 bytes, not 131"
    )
    assert ceremony.payload_length_error(MessageKind.Complaint, b"\x00\x01\x00", 2, 3) == (
        "a complaint with reason 1 is 2 bytes, not 3"
    )
    assert ceremony.payload_length_error(MessageKind.Certify, _point() + bytes(64), 2, 3) == (
        "a certification is 98 bytes, not 97"
    )
    assert ceremony.payload_length_error(MessageKind.Certify, _point(4) + bytes(65), 2, 3) == (
        "the certified key is 33 bytes starting 0x02 or 0x03"
    )
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
    with pytest.raises(EncodingError):
        ceremony.session_id(31337, bytes.fromhex(POLL_BOOK[2:])[:19], 5, 1)
    for chain_id, poll_id in ((1 << 256, 5), (31337, -1)):
        with pytest.raises(EncodingError):
            ceremony.session_id(chain_id, POLL_BOOK, poll_id, 1)


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

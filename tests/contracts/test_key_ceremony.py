"""Protocol v2 in PollBook: the trustee key registry and the key ceremony (createPoll with a zero
election key, postCeremonyMessage, restartCeremony, certification, castBallots' new rule).

Payloads are random bytes of the lengths `veche_core.ceremony` gives: the contract checks
lengths, membership, signatures and the order of the rounds, never the cryptography."""

from __future__ import annotations

import os

import pytest
from contract_helpers import (
    CeremonyHandle,
    Key,
    PollHandle,
    args,
    call_reverts_with,
    certify_payload,
    complaint_payload,
    create_args,
    register_key,
    reverts_with,
    role,
    round1_payload,
    sign_ballot,
    static_key,
    trustee_key_signature,
)

from veche_core import calls, ceremony, dkg, events, p256, typed_data
from veche_core.ceremony import ComplaintReason, MessageKind
from veche_core.rpc import RpcClient

ROUND1, COMPLAINT, CERTIFY = MessageKind.Round1, MessageKind.Complaint, MessageKind.Certify
ROLE_POLL_ADMIN = role("POLL_ADMIN_ROLE")
ZERO = "0x" + "00" * 20


def _ceremony(poll_book, poll_id):
    attempt, members, certified, key = poll_book.ceremony(poll_id)
    return attempt, list(members), certified, bytes(key)


def _posted(poll_book, receipt):
    return [
        (log.pollId, log.attempt, log.index, log.kind, bytes(log.payload))
        for log in poll_book.CeremonyMessagePosted.from_receipt(receipt)
    ]


def _all_round1(poll_book, domain, relayer, c, members, *, attempt=1):
    """Every one of `members` (the whole attempt) posts its round 1."""
    for index in members:
        c.post(poll_book, domain, relayer, index, ROUND1, round1_payload(c.threshold, len(members)), attempt=attempt)


def _certify_all(poll_book, domain, relayer, c, members, key, *, attempt=1):
    receipt = None
    for index in members:
        receipt = c.post(poll_book, domain, relayer, index, CERTIFY, certify_payload(key), attempt=attempt)
    return receipt


# --- The trustee key registry ----------------------------------------------------------------


def test_a_registration_is_relayed_stored_and_emitted(poll_book, domain, outsider):
    trustee, key = Key.create(), static_key(3)
    assert poll_book.trusteeKey(trustee.address) == (b"", 0)
    receipt = register_key(poll_book, domain, trustee, key, 1, outsider)

    (log,) = poll_book.TrusteeKeyRegistered.from_receipt(receipt)
    assert (log.trustee, log.serial, bytes(log.key)) == (trustee.address, 1, key)
    stored_key, serial = poll_book.trusteeKey(trustee.address)
    assert (bytes(stored_key), serial) == (key, 1)


def test_a_rotation_bumps_the_serial_and_a_replay_is_refused(poll_book, domain, outsider):
    trustee, first, second = Key.create(), static_key(2), static_key(3)
    with reverts_with(poll_book.PollBookInvalidTrusteeKeySerial, trustee=trustee.address, serial=0, expected=1):
        register_key(poll_book, domain, trustee, first, 0, outsider)
    with reverts_with(poll_book.PollBookInvalidTrusteeKeySerial, trustee=trustee.address, serial=2, expected=1):
        register_key(poll_book, domain, trustee, first, 2, outsider)
    register_key(poll_book, domain, trustee, first, 1, outsider)

    # The very same signed registration again: a replay.
    replay = trustee_key_signature(domain, trustee, first, 1)
    with reverts_with(poll_book.PollBookInvalidTrusteeKeySerial, trustee=trustee.address, serial=1, expected=2):
        poll_book.registerTrusteeKey(trustee.address, first, 1, replay, sender=outsider)

    receipt = register_key(poll_book, domain, trustee, second, 2, outsider)
    (log,) = poll_book.TrusteeKeyRegistered.from_receipt(receipt)
    assert (log.serial, bytes(log.key)) == (2, second)
    stored_key, serial = poll_book.trusteeKey(trustee.address)
    assert (bytes(stored_key), serial) == (second, 2)
    with reverts_with(poll_book.PollBookInvalidTrusteeKeySerial, trustee=trustee.address, serial=4, expected=3):
        register_key(poll_book, domain, trustee, first, 4, outsider)
    # Re-registering the same key under the next serial is a rotation like any other.
    register_key(poll_book, domain, trustee, second, 3, outsider)
    assert poll_book.trusteeKey(trustee.address)[1] == 3


def test_a_registration_needs_the_trustees_signature_over_that_key_and_serial(poll_book, domain, outsider):
    trustee, other, key = Key.create(), Key.create(), static_key()
    forged = trustee_key_signature(domain, trustee, key, 1, signer=other)
    for signature in (
        forged,
        trustee_key_signature(domain, trustee, static_key(), 1),  # another key
        trustee_key_signature(domain, trustee, key, 2),  # another serial
        trustee_key_signature(domain, other, key, 1)[:64],  # malformed
        b"",
    ):
        with reverts_with(poll_book.PollBookInvalidTrusteeKeySignature, trustee=trustee.address):
            poll_book.registerTrusteeKey(trustee.address, key, 1, signature, sender=outsider)
    # another domain (another contract on the same chain) does not carry over
    other_domain = typed_data.poll_book_domain(domain.chain_id, "0x" + "11" * 20)
    signature = typed_data.sign_digest(
        trustee.private_key, typed_data.trustee_key_digest(other_domain, trustee.address, key, 1)
    )
    with reverts_with(poll_book.PollBookInvalidTrusteeKeySignature, trustee=trustee.address):
        poll_book.registerTrusteeKey(trustee.address, key, 1, signature, sender=outsider)
    # nobody registers for the zero address (no signature recovers it)
    with reverts_with(poll_book.PollBookInvalidTrusteeKeySignature, trustee=ZERO):
        poll_book.registerTrusteeKey(ZERO, key, 1, forged, sender=outsider)
    assert poll_book.trusteeKey(trustee.address)[1] == 0


@pytest.mark.parametrize(
    "key",
    [
        b"",
        os.urandom(32),
        b"\x02" + os.urandom(33),
        b"\x04" + os.urandom(64),
        b"\x04" + os.urandom(32),
        b"\x00" + os.urandom(32),
        b"\x01" + os.urandom(32),
    ],
    ids=["empty", "32", "34", "uncompressed", "prefix-04", "prefix-00", "prefix-01"],
)
def test_a_trustee_key_must_be_compressed_sec1(poll_book, domain, outsider, key):
    trustee = Key.create()
    with reverts_with(poll_book.PollBookInvalidTrusteeKey, trustee=trustee.address, length=len(key)):
        register_key(poll_book, domain, trustee, key, 1, outsider)


# --- createPoll of a v2 poll -----------------------------------------------------------------


def test_a_v2_poll_starts_attempt_1_with_every_trustee_and_their_keys(poll_book, create_v2_poll):
    c = create_v2_poll(n=4, t=3)
    (started,) = poll_book.CeremonyStarted.from_receipt(c.poll.receipt)
    assert (started.attempt, list(started.members), [bytes(k) for k in started.keys]) == (1, [0, 1, 2, 3], c.keys)
    assert bytes(poll_book.poll(c.id).electionKey) == bytes(32)
    assert _ceremony(poll_book, c.id) == (1, [0, 1, 2, 3], False, b"")


def test_create_poll_emits_ceremony_started_last(poll_book, poll_admin, poll_params, domain, outsider):
    trustees = [Key.create() for _ in range(3)]
    keys = [static_key() for _ in trustees]
    for trustee, key in zip(trustees, keys):
        register_key(poll_book, domain, trustee, key, 1, outsider)
    params = {**poll_params, "electionKey": bytes(32), "trustees": [t.address for t in trustees]}
    receipt = poll_book.createPoll(*create_args(params), sender=poll_admin)
    names = [log.event_name for log in receipt.events]
    assert names == ["PollCreated", "RegisterCommitted", "CeremonyStarted"]
    (log,) = poll_book.CeremonyStarted.from_receipt(receipt)
    assert (log.attempt, list(log.members), [bytes(k) for k in log.keys]) == (1, [0, 1, 2], keys)


def test_a_v1_poll_has_no_ceremony(poll_book, poll_admin, poll, relayer, domain):
    assert poll_book.CeremonyStarted.from_receipt(poll.receipt) == []
    assert _ceremony(poll_book, poll.id) == (0, [], False, b"")
    trustee = Key.create()
    payload = round1_payload(2, 3)
    signature = typed_data.sign_digest(
        trustee.private_key, typed_data.ceremony_message_digest(domain, poll.id, 1, 0, ROUND1, payload)
    )
    with reverts_with(poll_book.PollBookNoCeremony, pollId=poll.id):
        poll_book.postCeremonyMessage(poll.id, 1, 0, ROUND1, payload, signature, sender=relayer)
    with reverts_with(poll_book.PollBookNoCeremony, pollId=poll.id):
        poll_book.restartCeremony(poll.id, [], sender=poll_admin)


def test_ceremony_calls_on_an_unknown_poll(poll_book, poll_admin, relayer):
    missing = poll_book.pollCount() + 1
    with reverts_with(poll_book.PollBookUnknownPoll, pollId=missing):
        poll_book.postCeremonyMessage(missing, 1, 0, ROUND1, b"", b"", sender=relayer)
    with reverts_with(poll_book.PollBookUnknownPoll, pollId=missing):
        poll_book.restartCeremony(missing, [], sender=poll_admin)
    call_reverts_with(poll_book.ceremony, (missing,), poll_book.PollBookUnknownPoll, pollId=missing)


def test_a_v2_poll_needs_every_trustees_key(poll_book, poll_admin, poll_params, domain, outsider):
    trustees = [Key.create() for _ in range(3)]
    register_key(poll_book, domain, trustees[0], static_key(), 1, outsider)
    register_key(poll_book, domain, trustees[2], static_key(), 1, outsider)
    params = {**poll_params, "electionKey": bytes(32), "trustees": [t.address for t in trustees]}
    with reverts_with(poll_book.PollBookMissingTrusteeKey, index=1, trustee=trustees[1].address):
        poll_book.createPoll(*create_args(params), sender=poll_admin)


def test_a_v2_poll_refuses_two_trustees_with_one_key(poll_book, poll_admin, poll_params, domain, outsider):
    trustees = [Key.create() for _ in range(3)]
    shared = static_key(2)
    for trustee, key in zip(trustees, [shared, static_key(), shared]):
        register_key(poll_book, domain, trustee, key, 1, outsider)
    params = {**poll_params, "electionKey": bytes(32), "trustees": [t.address for t in trustees]}
    with reverts_with(poll_book.PollBookDuplicateTrusteeKey, index=2, other=0):
        poll_book.createPoll(*create_args(params), sender=poll_admin)
    # the same x with the other prefix is another point: accepted
    register_key(poll_book, domain, trustees[2], b"\x03" + shared[1:], 2, outsider)
    poll_book.createPoll(*create_args(params), sender=poll_admin)


def test_a_v2_poll_must_open_in_the_future(chain, poll_book, poll_admin, poll_params, domain, outsider):
    trustees = [Key.create() for _ in range(3)]
    for trustee in trustees:
        register_key(poll_book, domain, trustee, static_key(), 1, outsider)
    now = chain.pending_timestamp
    for opens_at in (now - 3600, now):
        params = {
            **poll_params,
            "electionKey": bytes(32),
            "trustees": [t.address for t in trustees],
            "opensAt": opens_at,
            "closesAt": now + 1000,
        }
        chain.pending_timestamp = now
        with reverts_with(poll_book.PollBookInvalidWindow, opensAt=opens_at, closesAt=now + 1000):
            poll_book.createPoll(*create_args(params), sender=poll_admin)


def test_a_rotation_reaches_later_attempts_only(poll_book, poll_admin, domain, outsider, create_v2_poll):
    c = create_v2_poll(n=3, t=2)
    rotated = static_key()
    register_key(poll_book, domain, c.trustees[1], rotated, 2, outsider)
    receipt = poll_book.restartCeremony(c.id, [], sender=poll_admin)
    (log,) = poll_book.CeremonyStarted.from_receipt(receipt)
    assert (log.attempt, list(log.members), [bytes(k) for k in log.keys]) == (
        2,
        [0, 1, 2],
        [c.keys[0], rotated, c.keys[2]],
    )


# --- Messages ------------------------------------------------------------------------------------


def test_round1_once_per_member_at_its_length(poll_book, domain, relayer, create_v2_poll):
    c = create_v2_poll(n=3, t=2)
    expected = 33 * 2 + 98 + 56 * 3
    assert ceremony.round1_length(2, 3) == expected
    for length in (0, expected - 1, expected + 1, expected + 56):
        with reverts_with(
            poll_book.PollBookInvalidPayloadLength, pollId=c.id, kind=ROUND1, length=length, expected=expected
        ):
            c.post(poll_book, domain, relayer, 1, ROUND1, os.urandom(length))

    payload = round1_payload(2, 3)
    receipt = c.post(poll_book, domain, relayer, 1, ROUND1, payload)
    assert _posted(poll_book, receipt) == [(c.id, 1, 1, ROUND1, payload)]
    with reverts_with(poll_book.PollBookMessageAlreadyPosted, pollId=c.id, attempt=1, index=1, kind=ROUND1):
        c.post(poll_book, domain, relayer, 1, ROUND1, round1_payload(2, 3))


def test_a_message_needs_its_members_signature_over_all_its_fields(poll_book, domain, relayer, create_v2_poll):
    c = create_v2_poll(n=3, t=2)
    payload = round1_payload(2, 3)
    bad = [
        typed_data.sign_digest(
            c.trustees[0].private_key, typed_data.ceremony_message_digest(domain, c.id, 1, 1, ROUND1, payload)
        ),  # another member's key
        typed_data.sign_digest(
            c.trustees[1].private_key,
            typed_data.ceremony_message_digest(domain, c.id, 1, 1, ROUND1, payload[:-1] + b"\x00"),
        ),  # another payload
        typed_data.sign_digest(
            c.trustees[1].private_key, typed_data.ceremony_message_digest(domain, c.id, 1, 1, COMPLAINT, payload)
        ),  # another kind
        typed_data.sign_digest(
            c.trustees[1].private_key, typed_data.ceremony_message_digest(domain, c.id, 2, 1, ROUND1, payload)
        ),  # another attempt
        typed_data.sign_digest(
            c.trustees[1].private_key, typed_data.ceremony_message_digest(domain, c.id, 1, 0, ROUND1, payload)
        ),  # another index
        typed_data.sign_digest(
            c.trustees[1].private_key, typed_data.ceremony_message_digest(domain, c.id + 1, 1, 1, ROUND1, payload)
        ),  # another poll
        b"\x00" * 65,
        b"",
    ]
    for signature in bad:
        with reverts_with(poll_book.PollBookInvalidCeremonySignature, pollId=c.id, attempt=1, index=1):
            poll_book.postCeremonyMessage(c.id, 1, 1, ROUND1, payload, signature, sender=relayer)
    # anyone relays a good one, the trustee itself included (it needs no account of its own)
    c.post(poll_book, domain, relayer, 1, ROUND1, payload)


def test_a_message_names_the_current_attempt_and_a_member(poll_book, domain, relayer, create_v2_poll):
    c = create_v2_poll(n=3, t=2)
    payload = round1_payload(2, 3)
    for attempt in (0, 2, 255):
        with reverts_with(poll_book.PollBookWrongAttempt, pollId=c.id, attempt=attempt, current=1):
            c.post(poll_book, domain, relayer, 0, ROUND1, payload, attempt=attempt)
    outsider_key = Key.create()
    for index in (3, 200, 255):
        with reverts_with(poll_book.PollBookNotCeremonyMember, pollId=c.id, attempt=1, index=index):
            c.post(poll_book, domain, relayer, index, ROUND1, payload, signer=outsider_key)


@pytest.mark.parametrize("kind", [0, 4, 255])
def test_an_unknown_kind_is_refused(poll_book, domain, relayer, create_v2_poll, kind):
    c = create_v2_poll(n=3, t=2)
    with reverts_with(poll_book.PollBookUnknownMessageKind, pollId=c.id, kind=kind):
        c.post(poll_book, domain, relayer, 0, kind, round1_payload(2, 3))


def test_complaint_rules(poll_book, domain, relayer, create_v2_poll):
    c = create_v2_poll(n=4, t=2)
    c.post(poll_book, domain, relayer, 0, ROUND1, round1_payload(2, 4))
    c.post(poll_book, domain, relayer, 1, ROUND1, round1_payload(2, 4))

    def refused(error, payload, by=2, **inputs):
        with reverts_with(error, pollId=c.id, **inputs):
            c.post(poll_book, domain, relayer, by, COMPLAINT, payload)

    for payload in (b"", b"\x00"):
        refused(poll_book.PollBookInvalidPayloadLength, payload, kind=COMPLAINT, length=len(payload), expected=2)
    for reason in (0, 5, 255):
        refused(poll_book.PollBookUnknownComplaintReason, bytes([0, reason]) + os.urandom(130), reason=reason)
    # a public complaint (malformed round 1) is 2 bytes; a share complaint carries 130 bytes of
    # evidence: S^e (33) ‖ S^d (33) ‖ c (32) ‖ z (32)
    public = ComplaintReason.MalformedRound1
    refused(
        poll_book.PollBookInvalidPayloadLength,
        bytes([0, public]) + os.urandom(130),
        kind=COMPLAINT,
        length=132,
        expected=2,
    )
    for reason in (2, 3, 4):
        for length in (2, 130, 131, 133):
            payload = bytes([0, reason]) + os.urandom(length - 2)
            refused(poll_book.PollBookInvalidPayloadLength, payload, kind=COMPLAINT, length=length, expected=132)
    # the accused: another member, one that posted round 1
    refused(poll_book.PollBookInvalidAccused, complaint_payload(2), attempt=1, accused=2)  # itself
    refused(poll_book.PollBookInvalidAccused, complaint_payload(3), attempt=1, accused=3)  # no round 1
    refused(poll_book.PollBookInvalidAccused, complaint_payload(4), attempt=1, accused=4)  # not a member
    refused(poll_book.PollBookInvalidAccused, complaint_payload(255, public), attempt=1, accused=255)

    payload = complaint_payload(0)
    receipt = c.post(poll_book, domain, relayer, 2, COMPLAINT, payload)
    assert _posted(poll_book, receipt) == [(c.id, 1, 2, COMPLAINT, payload)]
    refused(poll_book.PollBookDuplicateComplaint, complaint_payload(0, public), attempt=1, index=2, accused=0)
    # a member with no round 1 of its own may complain; about another accused, or by another complainer
    c.post(poll_book, domain, relayer, 2, COMPLAINT, complaint_payload(1, public))
    c.post(poll_book, domain, relayer, 3, COMPLAINT, complaint_payload(0, ComplaintReason.ShareDecryption))
    c.post(poll_book, domain, relayer, 1, COMPLAINT, complaint_payload(0, ComplaintReason.ShareNotCanonical))


def test_a_complaint_freezes_the_attempt(poll_book, domain, relayer, create_v2_poll):
    c = create_v2_poll(n=3, t=2)
    c.post(poll_book, domain, relayer, 0, ROUND1, round1_payload(2, 3))
    c.post(poll_book, domain, relayer, 1, COMPLAINT, complaint_payload(0))
    # round 1 and complaints still come in (evidence for the restart) ...
    c.post(poll_book, domain, relayer, 1, ROUND1, round1_payload(2, 3))
    c.post(poll_book, domain, relayer, 2, ROUND1, round1_payload(2, 3))
    c.post(poll_book, domain, relayer, 2, COMPLAINT, complaint_payload(1, ComplaintReason.MalformedRound1))
    # ... but nobody certifies
    key = static_key()
    with reverts_with(poll_book.PollBookCeremonyFrozen, pollId=c.id, attempt=1):
        c.post(poll_book, domain, relayer, 0, CERTIFY, certify_payload(key))
    assert _ceremony(poll_book, c.id) == (1, [0, 1, 2], False, b"")


def test_certification_rules(poll_book, domain, relayer, create_v2_poll):
    c = create_v2_poll(n=3, t=2)
    key = static_key(3)
    c.post(poll_book, domain, relayer, 0, ROUND1, round1_payload(2, 3))
    c.post(poll_book, domain, relayer, 1, ROUND1, round1_payload(2, 3))
    with reverts_with(poll_book.PollBookRound1Incomplete, pollId=c.id, attempt=1):
        c.post(poll_book, domain, relayer, 0, CERTIFY, certify_payload(key))
    c.post(poll_book, domain, relayer, 2, ROUND1, round1_payload(2, 3))

    for length in (0, 97, 99, 33):
        with reverts_with(
            poll_book.PollBookInvalidPayloadLength, pollId=c.id, kind=CERTIFY, length=length, expected=98
        ):
            c.post(poll_book, domain, relayer, 0, CERTIFY, os.urandom(length))
    for prefix in (0, 1, 4):
        with reverts_with(poll_book.PollBookInvalidElectionKey, pollId=c.id, attempt=1, index=0):
            c.post(poll_book, domain, relayer, 0, CERTIFY, certify_payload(bytes([prefix]) + key[1:]))

    receipt = c.post(poll_book, domain, relayer, 0, CERTIFY, certify_payload(key))
    assert poll_book.ElectionKeyCertified.from_receipt(receipt) == []
    with reverts_with(poll_book.PollBookMessageAlreadyPosted, pollId=c.id, attempt=1, index=0, kind=CERTIFY):
        c.post(poll_book, domain, relayer, 0, CERTIFY, certify_payload(key))
    for other in (static_key(3), b"\x02" + key[1:], key[:-1] + bytes([key[-1] ^ 1])):
        with reverts_with(poll_book.PollBookElectionKeyMismatch, pollId=c.id, attempt=1, index=1):
            c.post(poll_book, domain, relayer, 1, CERTIFY, certify_payload(other))
    c.post(poll_book, domain, relayer, 2, CERTIFY, certify_payload(key))
    assert _ceremony(poll_book, c.id) == (1, [0, 1, 2], False, b"")

    # a complaint after some certifications freezes the attempt too
    payload = certify_payload(key)
    receipt = c.post(poll_book, domain, relayer, 1, CERTIFY, payload)
    assert [log.event_name for log in receipt.events] == ["CeremonyMessagePosted", "ElectionKeyCertified"]
    assert _posted(poll_book, receipt) == [(c.id, 1, 1, CERTIFY, payload)]
    (log,) = poll_book.ElectionKeyCertified.from_receipt(receipt)
    assert (log.pollId, log.attempt, bytes(log.electionKey)) == (c.id, 1, key)
    assert _ceremony(poll_book, c.id) == (1, [0, 1, 2], True, key)


def test_a_complaint_after_some_certifications_stops_the_rest(poll_book, domain, relayer, create_v2_poll):
    c = create_v2_poll(n=3, t=2)
    _all_round1(poll_book, domain, relayer, c, [0, 1, 2])
    key = static_key()
    c.post(poll_book, domain, relayer, 0, CERTIFY, certify_payload(key))
    c.post(poll_book, domain, relayer, 2, COMPLAINT, complaint_payload(1))
    with reverts_with(poll_book.PollBookCeremonyFrozen, pollId=c.id, attempt=1):
        c.post(poll_book, domain, relayer, 1, CERTIFY, certify_payload(key))


def test_nothing_is_posted_once_certified(poll_book, poll_admin, domain, relayer, create_v2_poll):
    c = create_v2_poll(n=2, t=2)
    _all_round1(poll_book, domain, relayer, c, [0, 1])
    key = static_key()
    _certify_all(poll_book, domain, relayer, c, [0, 1], key)
    for kind, payload in (
        (ROUND1, round1_payload(2, 2)),
        (COMPLAINT, complaint_payload(1)),
        (CERTIFY, certify_payload(key)),
    ):
        with reverts_with(poll_book.PollBookKeyAlreadyCertified, pollId=c.id):
            c.post(poll_book, domain, relayer, 0, kind, payload)
    with reverts_with(poll_book.PollBookKeyAlreadyCertified, pollId=c.id):
        poll_book.restartCeremony(c.id, [], sender=poll_admin)


def test_the_ceremony_ends_when_the_poll_opens(chain, poll_book, poll_admin, domain, relayer, create_v2_poll):
    c = create_v2_poll(n=3, t=2)
    opens_at = c.poll.opens_at
    chain.pending_timestamp = opens_at - 1
    c.post(poll_book, domain, relayer, 0, ROUND1, round1_payload(2, 3))
    for when in (opens_at, opens_at + 5, c.poll.closes_at + 5):
        chain.pending_timestamp = when
        with reverts_with(poll_book.PollBookCeremonyClosed, pollId=c.id, opensAt=opens_at):
            c.post(poll_book, domain, relayer, 1, ROUND1, round1_payload(2, 3))
        chain.pending_timestamp = when
        with reverts_with(poll_book.PollBookCeremonyClosed, pollId=c.id, opensAt=opens_at):
            poll_book.restartCeremony(c.id, [2], sender=poll_admin)


# --- Ballots -------------------------------------------------------------------------------------


def test_ballots_need_the_certified_key(chain, poll_book, domain, relayer, create_v2_poll):
    uncertified, certified = create_v2_poll(n=3, t=2), create_v2_poll(n=3, t=2)
    _all_round1(poll_book, domain, relayer, certified, [0, 1, 2])
    _certify_all(poll_book, domain, relayer, certified, [0, 1, 2], static_key())
    # before the window both are refused as not open, as any poll
    for c in (uncertified, certified):
        ballot = sign_ballot(domain, c.id, Key.create(), 1)
        with reverts_with(poll_book.PollBookNotOpen, pollId=c.id, opensAt=c.poll.opens_at, closesAt=c.poll.closes_at):
            poll_book.castBallots(c.id, args([ballot]), sender=relayer)
    chain.pending_timestamp = max(uncertified.poll.opens_at, certified.poll.opens_at)
    chain.mine()
    with reverts_with(poll_book.PollBookKeyNotCertified, pollId=uncertified.id):
        poll_book.castBallots(
            uncertified.id, args([sign_ballot(domain, uncertified.id, Key.create(), 1)]), sender=relayer
        )
    receipt = poll_book.castBallots(
        certified.id, args([sign_ballot(domain, certified.id, Key.create(), 1)]), sender=relayer
    )
    assert len(poll_book.BallotCast.from_receipt(receipt)) == 1


def test_a_v2_trustee_releases_its_share_as_in_v1(chain, poll_book, domain, relayer, outsider, create_v2_poll):
    c = create_v2_poll(n=3, t=2)
    _all_round1(poll_book, domain, relayer, c, [0, 1, 2])
    _certify_all(poll_book, domain, relayer, c, [0, 1, 2], static_key())
    chain.pending_timestamp = c.poll.closes_at
    share = b"\x02" + os.urandom(32)
    digest = typed_data.key_share_digest(domain, c.id, 1, share)
    signature = typed_data.sign_digest(c.trustees[1].private_key, digest)
    receipt = poll_book.submitKeyShareFor(c.id, 1, share, signature, sender=outsider)
    (log,) = poll_book.KeyShareSubmitted.from_receipt(receipt)
    assert (log.index, log.trustee, bytes(log.share)) == (1, c.trustees[1].address, share)


def test_no_result_for_a_poll_that_never_had_a_key(chain, poll_book, poll_admin, domain, outsider, create_v2_poll):
    """Key shares are taken after close as in v1 (the contract does not look at them), but a v2
    poll whose key was never certified took no ballot: no result is published for it."""
    c = create_v2_poll(n=2, t=1)
    chain.pending_timestamp = c.poll.closes_at
    share = b"\x02" + os.urandom(32)
    signature = typed_data.sign_digest(c.trustees[0].private_key, typed_data.key_share_digest(domain, c.id, 0, share))
    poll_book.submitKeyShareFor(c.id, 0, share, signature, sender=outsider)
    with reverts_with(poll_book.PollBookKeyNotCertified, pollId=c.id):
        poll_book.publishResult(c.id, [0, 0, 0, 0], bytes(32), sender=poll_admin)


def test_a_certified_v2_poll_publishes_its_result(
    chain, poll_book, poll_admin, domain, relayer, outsider, create_v2_poll
):
    c = create_v2_poll(n=2, t=1)
    _all_round1(poll_book, domain, relayer, c, [0, 1])
    _certify_all(poll_book, domain, relayer, c, [0, 1], static_key())
    chain.pending_timestamp = c.poll.closes_at
    share = b"\x02" + os.urandom(32)
    signature = typed_data.sign_digest(c.trustees[1].private_key, typed_data.key_share_digest(domain, c.id, 1, share))
    poll_book.submitKeyShareFor(c.id, 1, share, signature, sender=outsider)
    receipt = poll_book.publishResult(c.id, [0, 0, 0, 0], bytes(32), sender=poll_admin)
    assert len(poll_book.ResultPublished.from_receipt(receipt)) == 1


# --- Restarts ------------------------------------------------------------------------------------


def test_restart_rules(poll_book, poll_admin, outsider, domain, relayer, create_v2_poll):
    c = create_v2_poll(n=4, t=2)
    with reverts_with(poll_book.AccessControlUnauthorizedAccount, account=outsider.address, neededRole=ROLE_POLL_ADMIN):
        poll_book.restartCeremony(c.id, [1], sender=outsider)
    for excluded, bad in (([4], 4), ([1, 1], 1), ([0, 255], 255)):
        with reverts_with(poll_book.PollBookNotCeremonyMember, pollId=c.id, attempt=1, index=bad):
            poll_book.restartCeremony(c.id, excluded, sender=poll_admin)
    with reverts_with(poll_book.PollBookTooFewMembers, pollId=c.id, members=1, threshold=2):
        poll_book.restartCeremony(c.id, [0, 1, 3], sender=poll_admin)

    receipt = poll_book.restartCeremony(c.id, [3, 1], sender=poll_admin)
    (log,) = poll_book.CeremonyStarted.from_receipt(receipt)
    assert (log.pollId, log.attempt, list(log.members), [bytes(k) for k in log.keys]) == (
        c.id,
        2,
        [0, 2],
        [c.keys[0], c.keys[2]],
    )
    assert _ceremony(poll_book, c.id) == (2, [0, 2], False, b"")
    # the excluded of an earlier attempt cannot be excluded again
    with reverts_with(poll_book.PollBookNotCeremonyMember, pollId=c.id, attempt=2, index=1):
        poll_book.restartCeremony(c.id, [1], sender=poll_admin)
    with reverts_with(poll_book.PollBookTooFewMembers, pollId=c.id, members=1, threshold=2):
        poll_book.restartCeremony(c.id, [2], sender=poll_admin)


def test_a_restart_starts_over_with_the_remaining_members(poll_book, poll_admin, domain, relayer, create_v2_poll):
    c = create_v2_poll(n=4, t=2)
    _all_round1(poll_book, domain, relayer, c, [0, 1, 2, 3])
    first_key = static_key()
    c.post(poll_book, domain, relayer, 0, CERTIFY, certify_payload(first_key))
    c.post(poll_book, domain, relayer, 2, COMPLAINT, complaint_payload(1))
    poll_book.restartCeremony(c.id, [1], sender=poll_admin)

    # attempt 1's messages and the excluded member are refused
    with reverts_with(poll_book.PollBookWrongAttempt, pollId=c.id, attempt=1, current=2):
        c.post(poll_book, domain, relayer, 0, ROUND1, round1_payload(2, 4), attempt=1)
    with reverts_with(poll_book.PollBookNotCeremonyMember, pollId=c.id, attempt=2, index=1):
        c.post(poll_book, domain, relayer, 1, ROUND1, round1_payload(2, 3), attempt=2)
    # round 1 is sized for the new member count (n = 3)
    with reverts_with(
        poll_book.PollBookInvalidPayloadLength,
        pollId=c.id,
        kind=ROUND1,
        length=ceremony.round1_length(2, 4),
        expected=ceremony.round1_length(2, 3),
    ):
        c.post(poll_book, domain, relayer, 0, ROUND1, round1_payload(2, 4), attempt=2)
    # nothing of attempt 1 carries over: round 1 again, no freeze, another key may be certified
    with reverts_with(poll_book.PollBookRound1Incomplete, pollId=c.id, attempt=2):
        c.post(poll_book, domain, relayer, 0, CERTIFY, certify_payload(first_key), attempt=2)
    _all_round1(poll_book, domain, relayer, c, [0, 2, 3], attempt=2)
    second_key = static_key()
    receipt = _certify_all(poll_book, domain, relayer, c, [0, 2, 3], second_key, attempt=2)
    (log,) = poll_book.ElectionKeyCertified.from_receipt(receipt)
    assert (log.attempt, bytes(log.electionKey)) == (2, second_key)
    assert _ceremony(poll_book, c.id) == (2, [0, 2, 3], True, second_key)


def test_a_restart_may_exclude_nobody(poll_book, poll_admin, domain, relayer, create_v2_poll):
    c = create_v2_poll(n=2, t=1)
    c.post(poll_book, domain, relayer, 0, ROUND1, round1_payload(1, 2))
    receipt = poll_book.restartCeremony(c.id, [], sender=poll_admin)
    (log,) = poll_book.CeremonyStarted.from_receipt(receipt)
    assert (log.attempt, list(log.members)) == (2, [0, 1])
    c.post(poll_book, domain, relayer, 0, ROUND1, round1_payload(1, 2), attempt=2)


@pytest.mark.slow
def test_attempts_end_at_255(poll_book, poll_admin, create_v2_poll):
    c = create_v2_poll(n=1, t=1)
    web3 = poll_book.provider.web3
    restart = {"from": poll_admin.address, "to": poll_book.address, "gas": 200_000}
    hashes = [
        web3.eth.send_transaction({**restart, "data": calls.encode_restart_ceremony(c.id, [])}) for _ in range(254)
    ]
    assert all(web3.eth.wait_for_transaction_receipt(h)["status"] == 1 for h in hashes)
    assert _ceremony(poll_book, c.id)[0] == 255
    with reverts_with(poll_book.PollBookTooManyAttempts, pollId=c.id):
        poll_book.restartCeremony(c.id, [], sender=poll_admin)


@pytest.mark.slow
def test_a_ceremony_of_255_trustees(chain, poll_book, poll_admin, poll_params, domain, outsider, relayer):
    """The bitmaps' edge: trustee index 254, every bit of a 255-member attempt. The 255
    registrations go out as raw transactions built by veche_core.calls (and mined one by one,
    without ape waiting on each)."""
    trustees = [Key.create() for _ in range(255)]
    keys = [static_key() for _ in trustees]
    web3 = poll_book.provider.web3
    hashes = [
        web3.eth.send_transaction(
            {
                "from": outsider.address,
                "to": poll_book.address,
                "gas": 200_000,
                "data": calls.encode_register_trustee_key(
                    trustee.address, key, 1, trustee_key_signature(domain, trustee, key, 1)
                ),
            }
        )
        for trustee, key in zip(trustees, keys)
    ]
    assert all(web3.eth.wait_for_transaction_receipt(h)["status"] == 1 for h in hashes)
    now = chain.pending_timestamp
    params = {
        **poll_params,
        "electionKey": bytes(32),
        "trustees": [t.address for t in trustees],
        "threshold": 3,
        "opensAt": now + 100_000,
        "closesAt": now + 200_000,
    }
    # (sent raw too: ape's receipt handling of a 24M-gas call on a step-tracing anvil is slow)
    tx = web3.eth.send_transaction(
        {
            "from": poll_admin.address,
            "to": poll_book.address,
            "gas": 29_000_000,
            "data": poll_book.createPoll.encode_input(*create_args(params)),
        }
    )
    assert web3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    receipt = poll_book.provider.get_receipt(tx.hex())
    (started,) = poll_book.CeremonyStarted.from_receipt(receipt)
    poll_id = started.pollId
    assert list(started.members) == list(range(255)) and [bytes(k) for k in started.keys] == keys
    c = CeremonyHandle(PollHandle(poll_id, params["opensAt"], params["closesAt"], params, receipt), trustees, keys)

    c.post(poll_book, domain, relayer, 254, ROUND1, round1_payload(3, 255))
    c.post(poll_book, domain, relayer, 0, COMPLAINT, complaint_payload(254, ComplaintReason.MalformedRound1))
    receipt = poll_book.restartCeremony(poll_id, list(range(0, 254, 2)), sender=poll_admin)
    (log,) = poll_book.CeremonyStarted.from_receipt(receipt)
    assert list(log.members) == list(range(1, 255, 2)) + [254]
    assert [bytes(k) for k in log.keys] == [keys[i] for i in log.members]
    c.post(poll_book, domain, relayer, 254, ROUND1, round1_payload(3, 128), attempt=2)


# --- The protocol core reads the contract's logs ---------------------------------------------


def test_the_core_decodes_the_ceremonys_logs(poll_book, poll_admin, domain, relayer, outsider, create_v2_poll):
    c = create_v2_poll(n=3, t=2)
    start = poll_book.provider.web3.eth.block_number
    rotated = static_key()
    register_key(poll_book, domain, c.trustees[2], rotated, 2, outsider)
    poll_book.restartCeremony(c.id, [], sender=poll_admin)
    round1 = round1_payload(2, 3)
    c.post(poll_book, domain, relayer, 0, ROUND1, round1, attempt=2)
    for index in (1, 2):
        c.post(poll_book, domain, relayer, index, ROUND1, round1_payload(2, 3), attempt=2)
    key = p256.mul_base(p256.random_scalar()).encode()  # a valid point: the DKG's decoder reads it
    _certify_all(poll_book, domain, relayer, c, [0, 1, 2], key, attempt=2)

    with RpcClient(poll_book.provider.uri) as client:  # as the verifier reads them
        raw = list(client.iter_logs(poll_book.address, [], start + 1, client.block_number()))
    decoded = [events.decode_log(log) for log in raw]
    (registered,) = [events.trustee_key_registered(e) for e in decoded if e.name == "TrusteeKeyRegistered"]
    assert registered[:3] == (c.trustees[2].address, 2, rotated)
    (started,) = [events.ceremony_started(e) for e in decoded if e.name == "CeremonyStarted"]
    assert started[:4] == (c.id, 2, (0, 1, 2), (c.keys[0], c.keys[1], rotated))
    messages = [events.ceremony_message_posted(e) for e in decoded if e.name == "CeremonyMessagePosted"]
    assert [(m.attempt, m.trustee_index, m.kind) for m in messages] == [(2, i, ROUND1) for i in range(3)] + [
        (2, i, CERTIFY) for i in range(3)
    ]
    assert messages[0].payload == round1
    assert dkg.Certification.decode(messages[-1].payload).group_key == key
    (certified,) = [events.election_key_certified(e) for e in decoded if e.name == "ElectionKeyCertified"]
    assert certified[:3] == (c.id, 2, key)
    assert certified.log_index == messages[-1].log_index + 1

"""Protocol v2: the API as the key ceremony's coordinator. It holds no ceremony secret: it relays
each trustee's signed registration and messages to PollBook (trustees need no funds), after
checking off chain everything it can — what the contract would refuse, and what would only get
the sender excluded (a malformed round 1, a certification of another key, a complaint the
public evidence refutes) — and it shows the ceremony's state with each member's next step."""

from __future__ import annotations

import json

from eth_utils import to_checksum_address
from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from veche_core import ceremony as framing
from veche_core import dkg, p256
from veche_core.ceremony import ComplaintReason, MessageKind
from veche_core.errors import EncodingError, SignatureError, VecheError
from veche_core.typed_data import ceremony_message_digest, recover_signer, trustee_key_digest

from .. import ceremony as ceremonies
from ..deps import AdminDep, SessionDep, StateDep
from ..errors import ApiError, error_responses
from ..models import Poll
from ..schemas import (
    MAX_INT,
    Address,
    CeremonyFault,
    CeremonyMember,
    CeremonyMessageIn,
    CeremonyMessageOut,
    CeremonyMessagePublic,
    CeremonyRestartIn,
    CeremonyState,
    TrusteeKeyIn,
    TrusteeKeyOut,
    unhex,
)
from .polls import trustee_key

router = APIRouter(tags=["ceremony"])

PollId = Path(ge=1, le=MAX_INT)


def _hex(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def _tx_hash(receipt) -> str:
    return _hex(bytes(receipt["transactionHash"]))


# --- trustee keys ------------------------------------------------------------------------------


@router.post(
    "/trustees/keys", status_code=201, response_model=TrusteeKeyOut, responses=error_responses(400, 409, 413, 422, 503)
)
def register_trustee_key(body: TrusteeKeyIn, state: StateDep) -> TrusteeKeyOut:
    """Relay a trustee's signed static-key registration (registerTrusteeKey). The key must be a
    P-256 point, the serial the trustee's next, the signature the trustee's. The same
    registration again (the key already registered under this serial) answers as the first."""
    trustee = to_checksum_address(body.trustee)
    key = unhex(body.key)
    try:
        p256.decode_point(key)
    except EncodingError:
        raise ApiError("trustee_key.invalid", 422, "the key is not a P-256 point (33 bytes, SEC1 compressed)") from None
    digest = trustee_key_digest(state.chain.poll_domain, trustee, key, body.serial)
    try:
        signer = recover_signer(digest, unhex(body.signature))
    except SignatureError:
        signer = None
    if signer != trustee:
        raise ApiError("trustee_key.bad_signature", 422, "the registration is not signed by this trustee")
    current, serial = trustee_key(state, trustee)
    if serial == body.serial and current == key:
        return TrusteeKeyOut(trustee=trustee, key=_hex(key), serial=serial)
    if body.serial != serial + 1:
        raise ApiError(
            "trustee_key.wrong_serial",
            409,
            f"the trustee's registered serial is {serial}: the next registration is serial {serial + 1}",
        )
    receipt = state.admin.transact(
        state.chain.poll_book.functions.registerTrusteeKey(trustee, key, body.serial, unhex(body.signature))
    )
    return TrusteeKeyOut(trustee=trustee, key=_hex(key), serial=body.serial, transaction_hash=_tx_hash(receipt))


@router.get("/trustees/{address:address}/key", response_model=TrusteeKeyOut, responses=error_responses(404, 422, 503))
def read_trustee_key(address: Address, state: StateDep) -> TrusteeKeyOut:
    """The static key a trustee registered last, and its serial (0 and null: none)."""
    key, serial = trustee_key(state, to_checksum_address(address))
    return TrusteeKeyOut(trustee=to_checksum_address(address), key=_hex(key) if serial else None, serial=serial)


# --- the ceremony's state ----------------------------------------------------------------------


def _poll(session, poll_id: int) -> Poll:
    poll = session.get(Poll, poll_id)
    if poll is None:
        raise ApiError("poll.unknown", 404, f"no poll {poll_id}")
    return poll


def _context(state, ceremony: ceremonies.Ceremony) -> bytes:
    try:
        return ceremony.context(state.chain.chain_id, state.chain.poll_book_bytes)
    except VecheError as exc:
        raise ApiError("ceremony.unusable_keys", 409, f"the attempt's static keys are unusable: {exc}") from None


def _state(state, poll: Poll, ceremony: ceremonies.Ceremony) -> CeremonyState:
    now = state.chain.now()
    trustees = ceremony.trustees
    at_fault = ceremonies.faults(ceremony, _context(state, ceremony), now) if not ceremony.certified_key else {}
    if ceremony.certified_key is not None:
        ceremonies.store_election_key(state, poll.id, ceremony.certified_key)
    members = []
    for member, (index, key) in enumerate(zip(ceremony.members, ceremony.keys), start=1):
        accused = []
        for complaint in ceremony.of_kind(MessageKind.Complaint):
            if complaint.log.trustee_index == index and complaint.log.payload:
                accused.append(complaint.log.payload[0])
        members.append(
            CeremonyMember(
                index=index,
                member=member,
                address=trustees[index],
                key=_hex(key),
                round1=ceremony.first(index, MessageKind.Round1) is not None,
                certified=ceremony.first(index, MessageKind.Certify) is not None,
                complained_about=accused,
                next=ceremony.next_step(index, now),
            )
        )
    return CeremonyState(
        poll_id=poll.id,
        attempt=ceremony.attempt,
        threshold=ceremony.threshold,
        opens_at=ceremony.opens_at,
        round1_deadline=ceremony.round1_deadline,
        members=members,
        excluded=[i for i in range(len(trustees)) if i not in ceremony.members],
        frozen=ceremony.frozen,
        certified=ceremony.certified_key is not None,
        election_key=_hex(ceremony.certified_key) if ceremony.certified_key is not None else None,
        at_fault=[CeremonyFault(index=i, address=trustees[i], cause=c) for i, c in sorted(at_fault.items())],
        messages=[
            CeremonyMessagePublic(
                index=m.log.trustee_index,
                kind=m.log.kind,
                payload=_hex(m.log.payload),
                block_number=m.log.block_number,
                transaction_hash=m.transaction_hash,
            )
            for m in ceremony.messages
        ],
    )


@router.get("/polls/{poll_id}/ceremony", response_model=CeremonyState, responses=error_responses(404, 409, 422, 503))
def read_ceremony(state: StateDep, session: SessionDep, poll_id: int = PollId) -> CeremonyState:
    """A v2 poll's key ceremony, read from the chain: the current attempt, its members (address,
    static key, what each posted and must do next), who is at fault, and its messages."""
    poll = _poll(session, poll_id)
    return _state(state, poll, ceremonies.read(state.chain, poll))


# --- relaying a member's message ---------------------------------------------------------------


@router.post(
    "/polls/{poll_id}/ceremony",
    status_code=201,
    response_model=CeremonyMessageOut,
    responses=error_responses(400, 404, 409, 413, 422, 503),
)
def post_ceremony_message(
    body: CeremonyMessageIn, state: StateDep, session: SessionDep, poll_id: int = PollId
) -> JSONResponse:
    """Relay a member's signed ceremony message (postCeremonyMessage), after checking off chain
    what the contract checks (the poll is v2 and before opensAt, the attempt is current, the
    sender a member, the signature its own, the payload's length, once per kind) and what would
    only count against the sender: a round 1 that is malformed or whose proof of possession
    fails, a complaint the public evidence refutes, a certification of another key than the
    round-1 messages make or whose signature does not verify over their transcript. The very
    message already on chain answers 200 with its transaction (nothing is sent)."""
    poll = _poll(session, poll_id)
    if poll.version != 2:
        raise ApiError("ceremony.none", 409, f"poll {poll_id} is a v1 poll: its election key was dealt at creation")
    trustees = json.loads(poll.trustees_json)
    if body.index >= len(trustees):
        raise ApiError("ceremony.unknown_trustee", 422, f"poll {poll_id} has no trustee {body.index}")
    payload = unhex(body.payload)
    digest = ceremony_message_digest(state.chain.poll_domain, poll_id, body.attempt, body.index, body.kind, payload)
    try:
        signer = recover_signer(digest, unhex(body.signature))
    except SignatureError:
        signer = None
    if signer != trustees[body.index]:
        raise ApiError("ceremony.bad_signature", 422, f"the message is not signed by trustee {body.index}")
    if state.chain.now() >= poll.opens_at:
        raise ApiError("ceremony.closed", 409, "the ceremony ended when the poll opened")
    ceremony = ceremonies.read(state.chain, poll)
    if ceremony.certified_key is not None:
        ceremonies.store_election_key(state, poll_id, ceremony.certified_key)
        raise ApiError("ceremony.certified", 409, "the election key is certified: the ceremony is over")
    if body.attempt != ceremony.attempt:
        raise ApiError(
            "ceremony.wrong_attempt", 409, f"the ceremony is at attempt {ceremony.attempt}, not {body.attempt}"
        )
    if body.index not in ceremony.members:
        raise ApiError(
            "ceremony.not_member", 422, f"trustee {body.index} is not a member of attempt {ceremony.attempt}"
        )
    shape = framing.payload_length_error(body.kind, payload, ceremony.threshold, len(ceremony.members))
    if shape is not None:
        raise ApiError("ceremony.bad_payload", 422, shape)
    for message in ceremony.messages:  # a retry of a message that went through
        if (message.log.trustee_index, message.log.kind, message.log.payload) == (body.index, body.kind, payload):
            return _message_answer(poll_id, body, message.transaction_hash, ceremony, replay=True)
    context = _context(state, ceremony)
    if body.kind == MessageKind.Round1:
        _check_round1(ceremony, context, body.index, payload)
    elif body.kind == MessageKind.Complaint:
        _check_complaint(ceremony, context, body.index, payload)
    else:
        _check_certification(ceremony, context, body.index, payload)
    receipt = state.admin.transact(
        state.chain.poll_book.functions.postCeremonyMessage(
            poll_id, body.attempt, body.index, body.kind, payload, unhex(body.signature)
        )
    )
    after = ceremony
    if body.kind == MessageKind.Certify:
        key = ceremonies.certified_key(state.chain, poll)
        if key is not None:
            ceremonies.store_election_key(state, poll_id, key)
            after.certified_key = key
    return _message_answer(poll_id, body, _tx_hash(receipt), after, replay=False)


def _message_answer(
    poll_id: int, body: CeremonyMessageIn, tx_hash: str, ceremony: ceremonies.Ceremony, replay: bool
) -> JSONResponse:
    key = ceremony.certified_key
    answer = CeremonyMessageOut(
        poll_id=poll_id,
        attempt=body.attempt,
        index=body.index,
        kind=body.kind,
        transaction_hash=tx_hash,
        replay=replay,
        certified=key is not None,
        election_key=_hex(key) if key is not None else None,
    )
    return JSONResponse(answer.model_dump(by_alias=True), status_code=200 if replay else 201)


def _already(ceremony: ceremonies.Ceremony, index: int, what: str) -> ApiError:
    return ApiError(
        "ceremony.already_posted", 409, f"trustee {index} posted its {what} in attempt {ceremony.attempt} already"
    )


def _check_round1(ceremony: ceremonies.Ceremony, context: bytes, index: int, payload: bytes) -> None:
    if ceremony.first(index, MessageKind.Round1) is not None:
        raise _already(ceremony, index, "round 1")
    try:
        message = dkg.Round1Message.decode(payload, ceremony.threshold, len(ceremony.members))
    except VecheError as exc:
        raise ApiError("ceremony.bad_round1", 422, f"the round-1 message is malformed: {exc}") from None
    if not message.verify_pop(context):
        raise ApiError("ceremony.bad_round1", 422, "the round-1 message's proof of possession does not verify")


def _check_complaint(ceremony: ceremonies.Ceremony, context: bytes, index: int, payload: bytes) -> None:
    complaint = dkg.Complaint.decode(payload)  # (its length was checked)
    accused = complaint.accused
    accused_round1 = ceremony.first(accused, MessageKind.Round1)
    if accused == index or accused not in ceremony.members or accused_round1 is None:
        raise ApiError(
            "ceremony.invalid_accused",
            422,
            f"trustee {accused} is not another member of attempt {ceremony.attempt} that posted its round 1",
        )
    for earlier in ceremony.of_kind(MessageKind.Complaint):
        if earlier.log.trustee_index == index and earlier.log.payload[:1] == bytes([accused]):
            raise ApiError(
                "ceremony.already_posted", 409, f"trustee {index} accused trustee {accused} in this attempt already"
            )
    verdict = ceremonies.judge(ceremony, context, index, complaint, accused_round1.log.payload)
    if verdict.at_fault is not dkg.Party.ACCUSED:
        reason = ComplaintReason(complaint.reason).name
        raise ApiError(
            "ceremony.refuted_complaint",
            422,
            f"the public evidence refutes this {reason} complaint ({verdict.detail}): posted, it would put the "
            "complainer at fault",
        )


def _check_certification(ceremony: ceremonies.Ceremony, context: bytes, index: int, payload: bytes) -> None:
    if ceremony.first(index, MessageKind.Certify) is not None:
        raise _already(ceremony, index, "certification")
    if not ceremony.round1_complete:
        raise ApiError("ceremony.round1_incomplete", 409, "not every member has posted its round 1 yet")
    if ceremony.frozen:
        raise ApiError(
            "ceremony.frozen", 409, f"attempt {ceremony.attempt} has a complaint: the administrator restarts it"
        )
    try:
        messages = dkg.decode_round1_payloads(ceremony.round1_payloads(), ceremony.threshold)
    except VecheError:
        raise ApiError(
            "ceremony.bad_round1", 409, "a member's round-1 message is malformed: complain about it instead"
        ) from None
    if not all(m.verify_pop(context) for m in messages):
        raise ApiError("ceremony.bad_round1", 409, "a member's proof of possession fails: complain about it instead")
    certification = dkg.Certification(payload[: p256.POINT_SIZE], payload[p256.POINT_SIZE :])
    if certification.group_key != dkg.group_key(messages):
        raise ApiError(
            "ceremony.key_mismatch", 422, "the certified key is not the one the round-1 messages make (Σ C_j,0)"
        )
    transcript = dkg.transcript(context, ceremony.threshold, ceremony.keys, messages)
    key = ceremony.keys[ceremony.member_id(index) - 1]
    if not dkg.verify_certification(key, certification.signature, transcript):
        raise ApiError(
            "ceremony.bad_certification", 422, "the certification's signature does not verify over the transcript"
        )


# --- restarting ------------------------------------------------------------------------------


@router.post(
    "/admin/polls/{poll_id}/ceremony/restart",
    response_model=CeremonyState,
    responses=error_responses(400, 401, 404, 409, 413, 422, 503),
)
def restart_ceremony(
    body: CeremonyRestartIn, state: StateDep, session: SessionDep, _: AdminDep, poll_id: int = PollId
) -> CeremonyState:
    """Start the ceremony's next attempt without `excluded` (restartCeremony). Each excluded
    trustee must be a member the current attempt shows at fault (`atFault` of the state), as the
    verifier's check 14 requires; the members left must be at least the threshold."""
    poll = _poll(session, poll_id)
    if state.chain.now() >= poll.opens_at:
        raise ApiError("ceremony.closed", 409, "the ceremony ended when the poll opened")
    ceremony = ceremonies.read(state.chain, poll)
    if ceremony.certified_key is not None:
        raise ApiError("ceremony.certified", 409, "the election key is certified: the ceremony is over")
    excluded = list(body.excluded)
    if len(set(excluded)) != len(excluded):
        raise ApiError("ceremony.invalid_exclusion", 422, "a trustee is excluded twice")
    strangers = [i for i in excluded if i not in ceremony.members]
    if strangers:
        raise ApiError(
            "ceremony.invalid_exclusion",
            422,
            f"trustee(s) {', '.join(map(str, strangers))} are not members of attempt {ceremony.attempt}",
        )
    left = len(ceremony.members) - len(excluded)
    if left < ceremony.threshold:
        raise ApiError(
            "ceremony.too_few_members",
            409,
            f"{left} members would be left, fewer than the threshold {ceremony.threshold}",
        )
    at_fault = ceremonies.faults(ceremony, _context(state, ceremony), state.chain.now())
    unjustified = [i for i in excluded if i not in at_fault]
    if unjustified:
        raise ApiError(
            "ceremony.unjustified_exclusion",
            409,
            f"attempt {ceremony.attempt} does not show trustee(s) {', '.join(map(str, unjustified))} at fault: "
            "the verifier's check 14 would fail (a trustee that has posted no round 1 is at fault only from "
            f"the round-1 deadline, {ceremony.round1_deadline})",
        )
    state.admin.transact(state.chain.poll_book.functions.restartCeremony(poll_id, excluded))
    return _state(state, poll, ceremonies.read(state.chain, poll))

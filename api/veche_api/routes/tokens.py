"""Ballot-token issuance: a resident's signed request with a blinded message → a blind
signature. The issuer learns who asked, never which token it signed."""

from __future__ import annotations

import time
from functools import partial

from eth_utils import to_checksum_address
from fastapi import APIRouter
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from veche_core import blind_rsa
from veche_core.errors import EncodingError, SignatureError
from veche_core.typed_data import issuance_request_digest, recover_signer

from ..deps import StateDep
from ..eligibility import stratum_of
from ..errors import ApiError
from ..models import Issuance, Resident
from ..schemas import IssuanceOut, IssuanceRequestIn, unhex

router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.post("", status_code=201, response_model=IssuanceOut)
def create_token(body: IssuanceRequestIn, state: StateDep) -> IssuanceOut:
    resident_address = to_checksum_address(body.resident)
    blinded = unhex(body.blinded_message)
    if body.deadline < int(time.time()):
        raise ApiError("issuance.expired", 422, "the request's deadline has passed")
    digest = issuance_request_digest(state.chain.poll_domain, body.poll_id, body.stratum, blinded, body.deadline)
    try:
        signer = recover_signer(digest, unhex(body.signature))
    except SignatureError:
        signer = None
    if signer != resident_address:
        raise ApiError("issuance.bad_signature", 422, "the request is not signed by the resident")
    info = state.poll_info(body.poll_id)
    if state.chain.now() >= info.closes_at:
        raise ApiError("poll.closed", 409, "the poll has closed")
    with state.db.session() as session:
        resident = session.get(Resident, resident_address)
        if resident is None:
            raise ApiError("resident.unknown", 404, "the resident is not enrolled")
        stratum = stratum_of(info.audience, info.strata, resident, info.opens_at)
        if body.stratum != stratum:
            raise ApiError("issuance.wrong_stratum", 422, "the stratum is not the resident's district")
        if session.exec(
            select(Issuance.id).where(Issuance.poll_id == body.poll_id, Issuance.resident == resident_address)
        ).first() is not None:
            raise ApiError("issuance.already_issued", 409, "this resident already has a token for this poll")
    state.issuance_limit.hit(resident_address)
    key = state.issuer_private_key(body.poll_id, stratum)
    if len(blinded) != key.public_key.modulus_length:
        raise ApiError("issuance.bad_blinded_message", 422, "the blinded message has the wrong length")
    try:
        blind_signature = blind_rsa.blind_sign(key, blinded)
    except (EncodingError, SignatureError):
        raise ApiError("issuance.bad_blinded_message", 422, "the blinded message is out of range") from None
    issuance = {
        "poll_id": body.poll_id, "resident": resident_address, "stratum": stratum,
        "pseudonym": "0x" + state.keys.pseudonym(body.poll_id, resident_address).hex(),
        "issued_at": int(time.time()), "status": "pending", "recorded": False, "credited": False,
    }
    # Group commit (writer.py): one transaction and one fsync for all the issuances in flight;
    # the blind signature is returned only once the issuance is durable.
    try:
        inserted = state.writer.run(partial(_record, state.db.is_sqlite, issuance))
    except IntegrityError:
        inserted = False
    if not inserted:
        raise ApiError("issuance.already_issued", 409, "this resident already has a token for this poll")
    state.metrics.tokens_issued.inc()
    return IssuanceOut(poll_id=body.poll_id, stratum=stratum, blind_signature="0x" + blind_signature.hex())


_INSERTS: dict[bool, object] = {}


def _record(is_sqlite: bool, issuance: dict, conn) -> bool:
    """The writer's job: insert unless the resident already has a token for the poll (the unique
    constraint decides, without aborting the group's transaction)."""
    statement = _INSERTS.get(is_sqlite)
    if statement is None:
        insert = sqlite_insert if is_sqlite else pg_insert
        table = Issuance.__table__
        statement = _INSERTS[is_sqlite] = insert(table).on_conflict_do_nothing(
            index_elements=["poll_id", "resident"]
        ).returning(table.c.id)
    return conn.execute(statement, issuance).first() is not None

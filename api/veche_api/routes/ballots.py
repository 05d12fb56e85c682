"""The ballot relay's front: check, persist, acknowledge with a signed receipt."""

from __future__ import annotations

import time

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from veche_core import token as token_mod
from veche_core.ballot import Ballot
from veche_core.errors import SignatureError
from veche_core.receipt import Receipt, sign_receipt

from ..deps import SessionDep, StateDep
from ..errors import ApiError
from ..models import Ballot as BallotRow
from ..models import TokenState
from ..schemas import BallotIn, BallotStatus, unhex

router = APIRouter(prefix="/ballots", tags=["ballots"])

_STALE = ("ballot.stale_sequence", 409, "the sequence is not above the token's last accepted ballot")


@router.post("", status_code=202, response_model=BallotStatus)
def cast_ballot(body: BallotIn, state: StateDep) -> JSONResponse:
    chain = state.chain
    if body.chain_id is not None and body.chain_id != chain.chain_id:
        raise ApiError("ballot.wrong_chain_id", 422, f"this relay serves chain {chain.chain_id}")
    info = state.poll_info(body.poll_id)
    if body.stratum >= len(info.issuer_keys):
        raise ApiError("ballot.unknown_stratum", 422, "the poll has no such stratum")
    ciphertext = unhex(body.ciphertext)
    if len(ciphertext) != info.ciphertext_length:
        raise ApiError("ballot.bad_ciphertext", 422, f"the ciphertext must be {info.ciphertext_length} bytes")
    ballot = Ballot(
        body.poll_id, unhex(body.token), body.sequence, body.stratum, ciphertext,
        unhex(body.token_signature), unhex(body.signature),
    )
    try:
        ballot.verify_signature(chain.poll_domain)
    except SignatureError:
        raise ApiError("ballot.bad_signature", 422, "the ballot signature does not recover its token") from None
    try:
        token_mod.verify_token_signature(
            info.issuer_keys[body.stratum], chain.chain_id, chain.deployment.poll_book,
            body.poll_id, body.stratum, ballot.token, ballot.token_credential,
        )
    except SignatureError:
        raise ApiError("ballot.bad_token_signature", 422, "the token signature does not verify for this poll and stratum") from None
    now = chain.now()
    if now < info.opens_at:
        raise ApiError("ballot.poll_not_open", 409, "the poll has not opened yet")
    if now >= info.closes_at:
        raise ApiError("ballot.poll_closed", 409, "the poll has closed")
    state.ballot_limit.hit(f"{body.poll_id}:{ballot.token_address}")

    ballot_hash = ballot.hash
    accepted_at = int(time.time())
    relayer = state.keys.relayer
    receipt = sign_receipt(
        relayer.key, relayer.address, chain.chain_id, chain.deployment.poll_book, body.poll_id,
        ballot.token_address, body.sequence, ballot_hash, accepted_at,
    )
    row = BallotRow(
        ballot_hash="0x" + ballot_hash.hex(), poll_id=body.poll_id, token=ballot.token_address,
        sequence=body.sequence, stratum=body.stratum, ciphertext=ballot.ciphertext,
        token_credential=ballot.token_credential, signature=ballot.signature,
        accepted_at=accepted_at, receipt_signature=receipt.signature,
    )
    with state.db.write_session() as session:
        result = session.exec(
            update(TokenState)
            .where(
                TokenState.poll_id == body.poll_id,
                TokenState.token == ballot.token_address,
                TokenState.last_sequence < body.sequence,
            )
            .values(last_sequence=body.sequence)
        )
        if result.rowcount == 0:
            if session.get(TokenState, (body.poll_id, ballot.token_address)) is not None:
                raise ApiError(*_STALE)
            session.add(TokenState(poll_id=body.poll_id, token=ballot.token_address, last_sequence=body.sequence))
        session.add(row)
        try:
            session.commit()  # durable before the answer
        except IntegrityError:
            raise ApiError(*_STALE) from None
    state.metrics.ballots_accepted.inc()
    out = BallotStatus(ballot_hash=row.ballot_hash, status="accepted", receipt=receipt.to_dict())
    return JSONResponse(out.model_dump(by_alias=True), status_code=202)


@router.get("/{ballot_hash}", response_model=BallotStatus)
def read_ballot(
    state: StateDep,
    session: SessionDep,
    ballot_hash: str = Path(pattern=r"^0x[0-9a-fA-F]{64}$"),
) -> BallotStatus:
    row = session.exec(select(BallotRow).where(BallotRow.ballot_hash == ballot_hash.lower())).first()
    if row is None:
        raise ApiError("ballot.unknown", 404, "no ballot with this hash was accepted here")
    chain = state.chain
    receipt = Receipt(
        chain.chain_id, chain.deployment.poll_book, row.poll_id, row.token, row.sequence,
        bytes.fromhex(row.ballot_hash[2:]), row.accepted_at, state.keys.relayer.address,
        bytes(row.receipt_signature),
    )
    if row.status == "confirmed" and row.tx_hash and row.block_number is not None:
        receipt = receipt.with_inclusion(bytes.fromhex(row.tx_hash[2:]), row.block_number)
    return BallotStatus(ballot_hash=row.ballot_hash, status=row.status, reason=row.reason, receipt=receipt.to_dict())

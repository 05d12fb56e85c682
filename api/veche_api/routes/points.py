"""Loyalty points: balance and history (from the chain's events), the rewards catalog and
charities, and residents' signed redemptions and donations relayed to CityPoints."""

from __future__ import annotations

import re
import time

from eth_utils import to_checksum_address
from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from veche_core.errors import SignatureError
from veche_core.typed_data import donation_digest, recover_signer, redemption_digest

from ..chain import REVERTS, revert_name
from ..deps import SessionDep, StateDep
from ..errors import ApiError, error_responses
from ..models import ChainTx, Charity, PointsRequest, Reward
from ..schemas import (
    ADDRESS_PATTERN,
    MAX_INT,
    CharityOut,
    DonationIn,
    PointsCreditedEntry,
    PointsDonatedEntry,
    PointsEntry,
    PointsOut,
    PointsRequestOut,
    RedemptionIn,
    RewardOut,
    RewardRedeemedEntry,
    unhex,
)

router = APIRouter(prefix="/points", tags=["points"])


def _chain_read(fn):
    try:
        return fn()
    except REVERTS as exc:
        raise ApiError(f"chain.{revert_name(exc) or 'Reverted'}", 404, "the contract refused the read") from None
    except Exception:
        raise ApiError("chain.unavailable", 503, "the chain node is not reachable") from None


@router.get("/rewards", response_model=list[RewardOut], responses=error_responses(404, 503))
def read_rewards(state: StateDep, session: SessionDep) -> list[RewardOut]:
    points = state.chain.city_points
    count = _chain_read(points.functions.rewardCount().call)
    names = {r.id: r for r in session.exec(select(Reward)).all()}
    out = []
    for reward_id in range(1, count + 1):
        meta_hash, price, stock, active = _chain_read(points.functions.reward(reward_id).call)
        meta = names.get(reward_id)
        out.append(
            RewardOut(
                id=reward_id,
                name=meta.name if meta else None,
                description=meta.description if meta else None,
                metadata_hash="0x" + bytes(meta_hash).hex(),
                price=price,
                stock=stock,
                active=active,
            )
        )
    return out


@router.get("/charities", response_model=list[CharityOut], responses=error_responses(404, 503))
def read_charities(state: StateDep, session: SessionDep) -> list[CharityOut]:
    points = state.chain.city_points
    count = _chain_read(points.functions.charityCount().call)
    names = {c.id: c for c in session.exec(select(Charity)).all()}
    out = []
    for charity_id in range(1, count + 1):
        account, meta_hash, active = _chain_read(points.functions.charity(charity_id).call)
        meta = names.get(charity_id)
        out.append(
            CharityOut(
                id=charity_id,
                name=meta.name if meta else None,
                description=meta.description if meta else None,
                account=account,
                metadata_hash="0x" + bytes(meta_hash).hex(),
                active=active,
                balance=_chain_read(points.functions.charityBalance(charity_id).call),
            )
        )
    return out


@router.get("/requests/{request_id}", response_model=PointsRequestOut, responses=error_responses(404, 422))
def read_points_request(session: SessionDep, request_id: int = Path(ge=1, le=MAX_INT)) -> PointsRequestOut:
    row = session.get(PointsRequest, request_id)
    if row is None:
        raise ApiError("points.unknown_request", 404, "no such request")
    return _out(row)


@router.get("/{address:address}", response_model=PointsOut, responses=error_responses(404, 422, 503))
def read_points(state: StateDep, address: str = Path(pattern=ADDRESS_PATTERN)) -> PointsOut:
    """Balance, next nonce for signed requests, and the history read from the chain's events."""
    resident = to_checksum_address(address)  # the path convertor admits only an address
    points = state.chain.city_points
    balance = _chain_read(points.functions.balanceOf(resident).call)
    nonce = _chain_read(points.functions.nonces(resident).call)
    history: list[PointsEntry] = []
    for event in _chain_read(lambda: state.chain.resident_logs(resident)):
        block, transaction_hash, args = event.block_number, "0x" + event.transaction_hash.hex(), event.args
        if event.name == "PointsCredited":
            history.append(
                PointsCreditedEntry(
                    event="PointsCredited",
                    block=block,
                    transaction_hash=transaction_hash,
                    poll_id=args["pollId"],
                    amount=args["amount"],
                )
            )
        elif event.name == "RewardRedeemed":
            history.append(
                RewardRedeemedEntry(
                    event="RewardRedeemed",
                    block=block,
                    transaction_hash=transaction_hash,
                    reward_id=args["rewardId"],
                    amount=-args["price"],
                )
            )
        else:  # resident_logs reads only these three events
            history.append(
                PointsDonatedEntry(
                    event="PointsDonated",
                    block=block,
                    transaction_hash=transaction_hash,
                    charity_id=args["charityId"],
                    amount=-args["amount"],
                )
            )
    return PointsOut(resident=resident, balance=balance, nonce=nonce, history=history)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _out(row: PointsRequest) -> PointsRequestOut:
    assert row.id is not None  # (a stored request)
    return PointsRequestOut(
        id=row.id,
        kind=row.kind,
        resident=row.resident,
        status=row.status,
        reason=row.reason,
        transaction_hash=row.tx_hash,
        block_number=row.block_number,
    )


def _enqueue(state, row: PointsRequest, digest: bytes, call) -> JSONResponse:
    if row.deadline < int(time.time()):
        raise ApiError("points.expired", 422, "the request's deadline has passed")
    try:
        signer = recover_signer(digest, bytes(row.signature))
    except SignatureError:
        signer = None
    if signer != row.resident:
        raise ApiError("points.bad_signature", 422, "the request is not signed by the resident")
    expected_nonce = _chain_read(state.chain.city_points.functions.nonces(row.resident).call)
    if row.nonce != expected_nonce:
        raise ApiError("points.bad_nonce", 409, f"the resident's next nonce is {expected_nonce}")
    try:  # simulate: the contract's own rules give the stable reason (balance, stock, ...)
        call.call({"from": state.keys.relayer.address})
    except REVERTS as exc:
        name = revert_name(exc) or "Reverted"
        raise ApiError(
            f"points.{_snake(name.removeprefix('CityPoints'))}", 409, f"the points contract refuses: {name}"
        ) from None
    except Exception:
        raise ApiError("chain.unavailable", 503, "the chain node is not reachable") from None
    with state.db.write_session() as session:
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            raise ApiError("points.bad_nonce", 409, "a request with this nonce is already queued") from None
    return JSONResponse(_out(row).model_dump(by_alias=True), status_code=202)


@router.post(
    "/redemptions",
    status_code=202,
    response_model=PointsRequestOut,
    responses=error_responses(400, 404, 409, 413, 422, 503),
)
def create_redemption(body: RedemptionIn, state: StateDep) -> JSONResponse:
    resident = to_checksum_address(body.resident)
    row = PointsRequest(
        kind=ChainTx.Kind.REDEEM,
        resident=resident,
        target_id=body.reward_id,
        amount=0,
        nonce=body.nonce,
        deadline=body.deadline,
        signature=unhex(body.signature),
    )
    digest = redemption_digest(state.chain.points_domain, resident, body.reward_id, body.nonce, body.deadline)
    call = state.chain.city_points.functions.redeem(
        (resident, body.reward_id, body.nonce, body.deadline), row.signature
    )
    return _enqueue(state, row, digest, call)


@router.post(
    "/donations",
    status_code=202,
    response_model=PointsRequestOut,
    responses=error_responses(400, 404, 409, 413, 422, 503),
)
def create_donation(body: DonationIn, state: StateDep) -> JSONResponse:
    resident = to_checksum_address(body.resident)
    row = PointsRequest(
        kind=ChainTx.Kind.DONATE,
        resident=resident,
        target_id=body.charity_id,
        amount=body.amount,
        nonce=body.nonce,
        deadline=body.deadline,
        signature=unhex(body.signature),
    )
    digest = donation_digest(
        state.chain.points_domain, resident, body.charity_id, body.amount, body.nonce, body.deadline
    )
    call = state.chain.city_points.functions.donate(
        (resident, body.charity_id, body.amount, body.nonce, body.deadline), row.signature
    )
    return _enqueue(state, row, digest, call)

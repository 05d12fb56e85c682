"""Administration of the points catalog (rewards, charities) and closing a poll."""

from __future__ import annotations

from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from fastapi import APIRouter, Path

from veche_core.metadata import canonical_json

from ..deps import AdminDep, StateDep
from ..errors import error_responses
from ..models import Charity, Reward
from ..schemas import MAX_INT, CharityCreate, CharityCreated, RewardCreate, RewardCreated, TallyOut

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post(
    "/rewards", status_code=201, response_model=RewardCreated, responses=error_responses(400, 401, 409, 413, 422, 503)
)
def create_reward(body: RewardCreate, state: StateDep, _: AdminDep) -> RewardCreated:
    metadata_hash = keccak(canonical_json({"name": body.name, "description": body.description}))
    points = state.chain.city_points
    receipt = state.points_admin.transact(points.functions.addReward(metadata_hash, body.price, body.stock))
    reward_id = int(points.events.RewardAdded().process_receipt(receipt)[0]["args"]["rewardId"])
    with state.db.write_session() as session:
        session.add(
            Reward(id=reward_id, name=body.name, description=body.description, metadata_hash="0x" + metadata_hash.hex())
        )
        session.commit()
    return RewardCreated(id=reward_id, metadata_hash="0x" + metadata_hash.hex(), price=body.price, stock=body.stock)


@router.post(
    "/charities",
    status_code=201,
    response_model=CharityCreated,
    responses=error_responses(400, 401, 409, 413, 422, 503),
)
def create_charity(body: CharityCreate, state: StateDep, _: AdminDep) -> CharityCreated:
    metadata_hash = keccak(canonical_json({"name": body.name, "description": body.description}))
    account = to_checksum_address(body.account)
    points = state.chain.city_points
    receipt = state.points_admin.transact(points.functions.registerCharity(account, metadata_hash))
    charity_id = int(points.events.CharityRegistered().process_receipt(receipt)[0]["args"]["charityId"])
    with state.db.write_session() as session:
        session.add(
            Charity(
                id=charity_id,
                name=body.name,
                description=body.description,
                account=account,
                metadata_hash="0x" + metadata_hash.hex(),
            )
        )
        session.commit()
    return CharityCreated(id=charity_id, account=account, metadata_hash="0x" + metadata_hash.hex())


@router.post(
    "/polls/{poll_id}/publish", response_model=TallyOut, responses=error_responses(401, 404, 409, 413, 422, 503)
)
def publish_poll(state: StateDep, _: AdminDep, poll_id: int = Path(ge=1, le=MAX_INT)) -> TallyOut:
    """After close and k key shares on chain: count the poll with the verifier's own code
    (checks 1–8, from the chain alone), then publish the tally and the dataset hash on chain.
    A failing check publishes nothing (409 `result.check_<n>_failed`)."""
    from ..tally import publish

    return publish(state, poll_id)

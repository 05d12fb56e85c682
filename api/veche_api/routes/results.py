"""After close: trustees' key shares (relayed), the published tally, per-stratum statistics
and the anonymised dataset (CSV and JSON)."""

from __future__ import annotations

import json
from typing import NamedTuple

from fastapi import APIRouter, Path
from fastapi.responses import Response
from sqlmodel import Session

from veche_core import dataset
from veche_core.errors import SignatureError
from veche_core.typed_data import key_share_digest, recover_signer

from ..deps import SessionDep, StateDep
from ..errors import ApiError, error_responses
from ..models import Poll
from ..schemas import MAX_INT, DatasetOut, KeyShareIn, KeyShareOut, TallyOut, unhex

router = APIRouter(prefix="/polls", tags=["results"])

PollId = Path(ge=1, le=MAX_INT)


class Published(NamedTuple):
    """A published poll's result columns (tally.publish fills them together)."""

    counts_json: str
    per_stratum_json: str
    dataset_hash: str
    dataset_csv: str
    publish_tx: str | None


def _published(session: Session, poll_id: int) -> Published:
    poll = session.get(Poll, poll_id)
    if poll is None:
        raise ApiError("poll.unknown", 404, f"no poll {poll_id}")
    if not poll.published:
        raise ApiError("result.not_published", 404, "the result is not published yet")
    assert poll.counts_json is not None and poll.per_stratum_json is not None  # (published: filled)
    assert poll.dataset_hash is not None and poll.dataset_csv is not None
    return Published(poll.counts_json, poll.per_stratum_json, poll.dataset_hash, poll.dataset_csv, poll.publish_tx)


@router.post(
    "/{poll_id}/key-shares",
    status_code=201,
    response_model=KeyShareOut,
    responses=error_responses(400, 404, 409, 413, 422, 503),
)
def submit_key_share(body: KeyShareIn, state: StateDep, session: SessionDep, poll_id: int = PollId) -> KeyShareOut:
    """Relay a trustee's released share (signed EIP-712 KeyShare) with submitKeyShareFor."""
    poll = session.get(Poll, poll_id)
    if poll is None:
        raise ApiError("poll.unknown", 404, f"no poll {poll_id}")
    trustees = json.loads(poll.trustees_json)
    if body.index >= len(trustees):
        raise ApiError("key_share.unknown_trustee", 422, "the poll has no trustee with this index")
    share = unhex(body.share)
    digest = key_share_digest(state.chain.poll_domain, poll_id, body.index, share)
    try:
        signer = recover_signer(digest, unhex(body.signature))
    except SignatureError:
        signer = None
    if signer != trustees[body.index]:
        raise ApiError("key_share.bad_signature", 422, "the share is not signed by this trustee")
    if state.chain.now() < poll.closes_at:
        raise ApiError("poll.not_closed", 409, "key shares are accepted only after close")
    receipt = state.admin.transact(
        state.chain.poll_book.functions.submitKeyShareFor(poll_id, body.index, share, unhex(body.signature))
    )
    return KeyShareOut(
        poll_id=poll_id, index=body.index, transaction_hash="0x" + bytes(receipt["transactionHash"]).hex()
    )


@router.get("/{poll_id}/results", response_model=TallyOut, responses=error_responses(404, 422))
def read_results(session: SessionDep, poll_id: int = PollId) -> TallyOut:
    poll = _published(session, poll_id)
    counts = json.loads(poll.counts_json)
    rows = dataset.parse(poll.dataset_csv)
    return TallyOut(
        poll_id=poll_id,
        counts=counts,
        dataset_hash=poll.dataset_hash,
        ballots_counted=len(rows),
        per_stratum=json.loads(poll.per_stratum_json),
        transaction_hash=poll.publish_tx,
    )


@router.get(
    "/{poll_id}/dataset.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **error_responses(404, 422)},
)
def read_dataset_csv(session: SessionDep, poll_id: int = PollId) -> Response:
    poll = _published(session, poll_id)
    return Response(poll.dataset_csv.encode(), media_type="text/csv")


@router.get("/{poll_id}/dataset.json", response_model=DatasetOut, responses=error_responses(404, 422))
def read_dataset_json(session: SessionDep, poll_id: int = PollId) -> Response:
    poll = _published(session, poll_id)
    return Response(dataset.to_json(poll_id, dataset.parse(poll.dataset_csv)), media_type="application/json")

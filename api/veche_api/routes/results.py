"""After close: trustees' key shares (relayed), the published tally, per-stratum statistics
and the anonymised dataset (CSV and JSON)."""

from __future__ import annotations

import json
from typing import NamedTuple

from fastapi import APIRouter, Path
from fastapi.responses import Response
from sqlmodel import Session

from veche_core import dataset, dkg
from veche_core.errors import KeyShareError, SignatureError
from veche_core.typed_data import key_share_digest, recover_signer

from ..ceremony import read as read_ceremony
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
    """Relay a trustee's released share (signed EIP-712 KeyShare) with submitKeyShareFor. A v2
    share (0x02 ‖ x_m) must match the trustee's verification share from the ceremony."""
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
    if poll.version == 2:
        _check_release_share(state, poll, body.index, share)
    if state.chain.now() < poll.closes_at:
        raise ApiError("poll.not_closed", 409, "key shares are accepted only after close")
    receipt = state.admin.transact(
        state.chain.poll_book.functions.submitKeyShareFor(poll_id, body.index, share, unhex(body.signature))
    )
    return KeyShareOut(
        poll_id=poll_id, index=body.index, transaction_hash="0x" + bytes(receipt["transactionHash"]).hex()
    )


def _check_release_share(state, poll: Poll, index: int, share: bytes) -> None:
    """A v2 share is 0x02 ‖ x_m of a member of the certified attempt, and x_m·B is that member's
    verification share Y_m (from the round-1 commitments on chain): a wrong one is refused here
    rather than set aside by every verifier."""
    try:
        secret = dkg.decode_release_share(share)
    except KeyShareError as exc:
        raise ApiError("key_share.invalid", 422, f"{exc}") from None
    ceremony = read_ceremony(state.chain, poll)
    if ceremony.certified_key is None:
        raise ApiError("ceremony.not_certified", 409, "the poll's key ceremony never certified a key")
    if index not in ceremony.members:
        raise ApiError("key_share.not_member", 422, f"trustee {index} is not a member of the attempt that made the key")
    messages = dkg.decode_round1_payloads(ceremony.round1_payloads(), poll.threshold)
    if not dkg.check_released_share(secret, dkg.verification_share(messages, ceremony.member_id(index))):
        raise ApiError(
            "key_share.mismatch", 422, "the share does not match the trustee's verification share from the ceremony"
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

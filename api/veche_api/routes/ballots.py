"""The ballot relay's front: check, persist, acknowledge with a signed receipt."""

from __future__ import annotations

import asyncio
import time
from functools import partial

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from veche_core import token as token_mod
from veche_core.abi import checksum_address
from veche_core.ballot import Ballot
from veche_core.errors import SignatureError
from veche_core.receipt import Receipt
from veche_core.typed_data import receipt_digest

from ..deps import RelayStateDep
from ..errors import ApiError, error_responses
from ..models import Ballot as BallotRow
from ..models import TokenState, table_of
from ..ratelimit import RATE_LIMITED, RateLimiter
from ..schemas import BallotIn, BallotStatus, unhex

router = APIRouter(prefix="/ballots", tags=["ballots"])

_STALE = ("ballot.stale_sequence", 409, "the sequence is not above the token's last accepted ballot")


@router.post(
    "", status_code=202, response_model=BallotStatus, responses=error_responses(400, 404, 409, 413, 422, 429, 503)
)
async def cast_ballot(body: BallotIn, state: RelayStateDep) -> JSONResponse:
    return JSONResponse(await accept_ballot(state, body), status_code=202)


async def accept_ballot(state, body: BallotIn) -> dict:
    """Check, persist, sign: the 202 body, or ApiError. (Also called by `main.FastPost`,
    which serves the same route without FastAPI's per-request machinery.)

    Safe to retry: the same ballot again (the same ballot hash) gets its stored answer — the
    original receipt (acceptedAt, relayer signature) and its current status — and changes
    nothing, also after the poll has closed or past the rate limit. Telling a replay from a stale
    sequence costs a read only when the sequence is stale, so a new ballot still takes one
    statement.

    Checks and receipt signing run inline on the event loop (~150 µs of CPU, cheaper than a
    hop to the thread pool); the insert goes to the group-commit writer, and the answer is made
    only after the transaction that holds the ballot has committed."""
    chain = state.chain
    if body.chain_id is not None and body.chain_id != chain.chain_id:
        raise ApiError("ballot.wrong_chain_id", 422, f"this relay serves chain {chain.chain_id}")
    info = state._polls.get(body.poll_id) or await run_in_threadpool(state.certified_poll_info, body.poll_id)
    if body.stratum >= len(info.issuer_keys):
        raise ApiError("ballot.unknown_stratum", 422, "the poll has no such stratum")
    ciphertext = unhex(body.ciphertext)
    if len(ciphertext) != info.ciphertext_length:
        raise ApiError("ballot.bad_ciphertext", 422, f"the ciphertext must be {info.ciphertext_length} bytes")
    ballot = Ballot(
        body.poll_id,
        unhex(body.token),
        body.sequence,
        body.stratum,
        ciphertext,
        unhex(body.token_signature),
        unhex(body.signature),
    )
    try:
        ballot.verify_signature(chain.poll_domain)
    except SignatureError:
        raise ApiError("ballot.bad_signature", 422, "the ballot signature does not recover its token") from None
    try:
        token_mod.verify_token_signature(
            info.issuer_keys[body.stratum],
            chain.chain_id,
            chain.poll_book_bytes,
            body.poll_id,
            body.stratum,
            ballot.token,
            ballot.token_credential,
        )
    except SignatureError:
        raise ApiError(
            "ballot.bad_token_signature", 422, "the token signature does not verify for this poll and stratum"
        ) from None
    hash_bytes = ballot.hash
    hash_hex = "0x" + hash_bytes.hex()
    now = chain.cached_now()
    if now is None:
        now = await run_in_threadpool(chain.now)
    if now < info.opens_at:
        raise ApiError("ballot.poll_not_open", 409, "the poll has not opened yet")
    if not info.key_certified:
        raise ApiError(
            "ballot.key_not_certified", 409, "the poll's trustees never certified its election key: it takes no ballots"
        )
    token = checksum_address(ballot.token)
    if now >= info.closes_at:  # a ballot acknowledged before the close still gets its answer
        stored = _stored(state, hash_hex)
        if stored is None:
            raise ApiError("ballot.poll_closed", 409, "the poll has closed")
        return ballot_answer(state, stored)

    accepted_at = int(time.time())
    signature = state.receipt_signer.sign(
        receipt_digest(chain.poll_domain, body.poll_id, ballot.token, body.sequence, hash_bytes, accepted_at)
    )
    row = {
        "ballot_hash": hash_hex,
        "poll_id": body.poll_id,
        "token": token,
        "sequence": body.sequence,
        "stratum": body.stratum,
        "ciphertext": ballot.ciphertext,
        "token_credential": ballot.token_credential,
        "signature": ballot.signature,
        "accepted_at": accepted_at,
        "queued_at": time.time(),
        "receipt_signature": signature,
        "status": BallotRow.Status.ACCEPTED,
    }
    try:
        outcome = await asyncio.wrap_future(
            state.writer.submit(partial(_persist, state.db.is_sqlite, state.ballot_limit, row))
        )
    except IntegrityError:  # a concurrent writer (another worker) got the sequence, or this very ballot, in first
        outcome = _stored(state, hash_hex)
        if outcome is None:
            raise ApiError(*_STALE) from None
    if isinstance(outcome, ApiError):
        raise outcome
    if outcome is not None:  # this very ballot was stored before: a retry
        return ballot_answer(state, outcome)
    state.metrics.ballots_accepted.inc()
    receipt = Receipt(
        chain.chain_id,
        chain.poll_book_address,
        body.poll_id,
        token,
        body.sequence,
        hash_bytes,
        accepted_at,
        state.relayer_address,
        signature,
    )
    return {"ballotHash": hash_hex, "status": BallotRow.Status.ACCEPTED, "reason": None, "receipt": receipt.to_dict()}


def _token_upsert(is_sqlite: bool):
    table = table_of(TokenState)
    insert = sqlite_insert if is_sqlite else pg_insert
    statement = insert(table).values(
        poll_id=bindparam("poll_id"), token=bindparam("token"), last_sequence=bindparam("sequence")
    )
    return statement.on_conflict_do_update(
        index_elements=[table.c.poll_id, table.c.token],
        set_={"last_sequence": statement.excluded.last_sequence},
        where=table.c.last_sequence < statement.excluded.last_sequence,
    ).returning(table.c.last_sequence)  # a row if inserted or raised; none if stale (rowcount
    # is not reliable here: psycopg reports -1 once a RETURNING is involved)


_UPSERTS: dict[bool, object] = {}
_TABLE = table_of(BallotRow)
_INSERT_BALLOT = _TABLE.insert()
# What an answer about a stored ballot needs (GET /ballots/{hash}, and a ballot sent again).
_BY_HASH = select(
    _TABLE.c.ballot_hash,
    _TABLE.c.poll_id,
    _TABLE.c.token,
    _TABLE.c.sequence,
    _TABLE.c.accepted_at,
    _TABLE.c.receipt_signature,
    _TABLE.c.status,
    _TABLE.c.reason,
    _TABLE.c.tx_hash,
    _TABLE.c.block_number,
).where(_TABLE.c.ballot_hash == bindparam("ballot_hash"))


def _persist(is_sqlite: bool, limiter: RateLimiter, row: dict, conn):
    """The writer's job for one ballot: draw on the token's rate limit, raise the token's
    sequence (insert or conditional update in one statement: nothing is written when the
    sequence is stale), then queue the ballot. None if queued; else the stored row of this very
    ballot (a retry, answered even over the limit) or the rate-limit or stale-sequence
    ApiError. Nothing is written but the rate limit's draw."""
    if not limiter.take(conn, f"{row['poll_id']}:{row['token']}"):
        stored = conn.execute(_BY_HASH, {"ballot_hash": row["ballot_hash"]}).first()
        return stored if stored is not None else ApiError(*RATE_LIMITED)
    upsert = _UPSERTS.get(is_sqlite)
    if upsert is None:
        upsert = _UPSERTS[is_sqlite] = _token_upsert(is_sqlite)
    result = conn.execute(upsert, {"poll_id": row["poll_id"], "token": row["token"], "sequence": row["sequence"]})
    if result.first() is None:
        stored = conn.execute(_BY_HASH, {"ballot_hash": row["ballot_hash"]}).first()
        return stored if stored is not None else ApiError(*_STALE)
    conn.execute(_INSERT_BALLOT, row)
    return None


def _stored(state, ballot_hash: str):
    with state.db.engine.connect() as conn:
        return conn.execute(_BY_HASH, {"ballot_hash": ballot_hash}).first()


def ballot_answer(state, row) -> dict:
    """The answer about a stored ballot: its status and the receipt signed when it was accepted,
    with transaction and block once confirmed — the same for GET /ballots/{hash} and for a
    ballot sent again."""
    chain = state.chain
    receipt = Receipt(
        chain.chain_id,
        chain.poll_book_address,
        row.poll_id,
        row.token,
        row.sequence,
        bytes.fromhex(row.ballot_hash[2:]),
        row.accepted_at,
        state.relayer_address,
        bytes(row.receipt_signature),
    )
    if row.status == BallotRow.Status.CONFIRMED and row.tx_hash and row.block_number is not None:
        receipt = receipt.with_inclusion(bytes.fromhex(row.tx_hash[2:]), row.block_number)
    return {"ballotHash": row.ballot_hash, "status": row.status, "reason": row.reason, "receipt": receipt.to_dict()}


@router.get("/{ballot_hash}", response_model=BallotStatus, responses=error_responses(404, 422))
def read_ballot(
    state: RelayStateDep,
    ballot_hash: str = Path(pattern=r"^0x[0-9a-fA-F]{64}$"),
) -> BallotStatus:
    row = _stored(state, ballot_hash.lower())
    if row is None:
        raise ApiError("ballot.unknown", 404, "no ballot with this hash was accepted here")
    answer = ballot_answer(state, row)
    return BallotStatus(
        ballot_hash=answer["ballotHash"], status=answer["status"], reason=answer["reason"], receipt=answer["receipt"]
    )

"""Polls: creation (admin) and what residents and observers read."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence

from eth_utils import to_checksum_address
from fastapi import APIRouter, Request
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from veche_core import blind_rsa, dkg, key_shares, p256
from veche_core.errors import CeremonyError, EncodingError, KeyShareError
from veche_core.metadata import metadata_hash as poll_metadata_hash
from veche_core.register import RegisterTree

from ..ceremony import election_key
from ..deps import AdminDep, SessionDep, StateDep
from ..eligibility import count_eligible, eligible_register, eligible_stratum
from ..errors import ApiError, error_responses
from ..models import DRAFT_POLL_BASE, ChainTx, IssuerKey, Poll, PollCreation, Resident, TxVersion
from ..relay import Outbox, finish_poll_tx
from ..relay.health import TRANSIENT, TransientError, describe
from ..schemas import MAX_INT, EligiblePollsQuery, PollCreate, PollCreated, PollPublic, StratumPublic, unhex
from ..strata import PollStrata, Stratum, group_strata

router = APIRouter(tags=["polls"])
log = logging.getLogger("veche_api")

CREATE_WAIT = 60.0  # seconds the creating request waits for its transaction to be mined


def poll_status(poll: Poll, now: int) -> str:
    if poll.published:
        return "published"
    if now < poll.opens_at:
        return "scheduled"
    if now < poll.closes_at:
        return "open"
    return "closed"


def to_public(state, poll: Poll, keys: Sequence[IssuerKey], now: int, stratum: int | None = None) -> PollPublic:
    poll_strata = PollStrata.loads(poll.strata_json)
    return PollPublic(
        id=poll.id,
        question=poll.question,
        options=json.loads(poll.options_json),
        max_choices=poll.max_choices,
        audience=json.loads(poll.audience_json),
        strata=[
            StratumPublic(name=s.name, districts=list(s.districts), register_size=s.register_size)
            for s in poll_strata.strata
        ],
        min_stratum=poll_strata.min_stratum,
        opens_at=poll.opens_at,
        closes_at=poll.closes_at,
        points=poll.points,
        version=poll.version,
        election_key=election_key(state, poll),
        issuer_keys=["0x" + bytes(k.public_key).hex() for k in sorted(keys, key=lambda k: k.stratum)],
        trustees=json.loads(poll.trustees_json),
        threshold=poll.threshold,
        metadata_hash=poll.metadata_hash,
        chain_id=state.chain.chain_id,
        poll_book=state.chain.deployment.poll_book,
        status=poll_status(poll, now),
        resident_stratum=stratum,
    )


@router.post(
    "/admin/polls", status_code=201, response_model=PollCreated, responses=error_responses(400, 401, 409, 413, 422, 503)
)
def create_poll(body: PollCreate, state: StateDep, _: AdminDep) -> PollCreated:
    """Create a poll: issuer keys per stratum, the election key dealt k-of-n to the trustees
    (v1) or left to the trustees' key ceremony (v2, `keyCeremony`), the poll on chain.
    Write-ahead: the poll, its keys (sealed) and the signed createPoll are committed before the
    broadcast, and the poll is saved under the id of the receipt's PollCreated event — by this
    request, or after a crash by the relay's reconcile. The sealed shares (v1) are kept for
    `GET /admin/polls/{id}/creation` (only each trustee can open its own)."""
    if body.max_choices > len(body.options):
        raise ApiError("poll.invalid_options", 422, "maxChoices exceeds the number of options")
    if body.opens_at >= body.closes_at:
        raise ApiError("poll.invalid_window", 422, "opensAt must be before closesAt")
    try:
        if body.key_ceremony:  # v2: COCKTAIL's rule, 1 ≤ t ≤ n (n ≤ 255 by the schema, as PollBook)
            dkg.check_parameters(body.threshold, len(body.trustees))
        else:
            key_shares.check_trustee_parameters(body.threshold, len(body.trustees))
    except (KeyShareError, CeremonyError) as exc:
        raise ApiError("poll.invalid_threshold", 422, str(exc)) from None
    addresses = [to_checksum_address(t.address) for t in body.trustees]
    if len(set(addresses)) != len(addresses) or any(int(a, 16) == 0 for a in addresses):
        raise ApiError("poll.invalid_trustees", 422, "trustee addresses must be distinct and non-zero")
    audience = body.audience
    if audience.min_age is not None and audience.max_age is not None and audience.min_age > audience.max_age:
        raise ApiError("poll.invalid_audience", 422, "minAge exceeds maxAge")
    if audience.districts is not None:
        if len(set(audience.districts)) != len(audience.districts):
            raise ApiError("poll.invalid_audience", 422, "districts repeat")
        unknown = [d for d in audience.districts if d not in state.settings.districts]
        if unknown:
            raise ApiError("poll.unknown_district", 422, f"unknown districts: {', '.join(unknown)[:200]}")
    now = state.chain.now()
    if body.closes_at <= now:
        raise ApiError("poll.invalid_window", 422, "closesAt must be in the future (chain time)")
    if body.key_ceremony:
        _check_ceremony_trustees(state, body, addresses, now)
    elif any(t.public_key is None for t in body.trustees):
        raise ApiError(
            "poll.invalid_trustee_key",
            422,
            "a v1 poll (keyCeremony false) needs each trustee's X25519 publicKey; leave keyCeremony out for a "
            "v2 poll, whose trustees make the key together",
        )

    audience_json = audience.model_dump(by_alias=True)
    poll_strata = make_strata(state, audience_json, body.opens_at)
    strata = poll_strata.strata
    # v2: the strata (which districts each holds) are committed with the texts.
    metadata_hash = poll_metadata_hash(body.question, body.options, audience_json, [s.districts for s in strata])
    private_keys = [blind_rsa.generate_private_key(bits=state.settings.rsa_bits) for _ in strata]
    public_keys = [k.public_key.encode() for k in private_keys]
    if body.key_ceremony:  # v2: no key yet; the trustees' ceremony certifies it on chain
        election_public_key, sealed_shares = bytes(32), []
    else:
        try:
            dealing = key_shares.deal(body.threshold, [unhex(t.public_key or "") for t in body.trustees])
        except Exception:
            raise ApiError("poll.invalid_trustee_key", 422, "a trustee public key is not an X25519 key") from None
        election_public_key, sealed_shares = dealing.election_public_key, list(dealing.sealed_shares)

    params = (
        metadata_hash,
        len(body.options),
        body.max_choices,
        body.opens_at,
        body.closes_at,
        body.points,
        election_public_key,
        public_keys,
        addresses,
        body.threshold,
    )
    # The register, committed before the poll opens: the residents enrolled now who are eligible.
    with state.db.session() as session:
        register = eligible_register(audience_json, strata, session.exec(select(Resident)).all(), body.opens_at)
    # The sizes shown with the strata are those committed on chain (an enrolment since the count
    # above can only add to a stratum, never bring it under the threshold).
    poll_strata = PollStrata(
        poll_strata.min_stratum, tuple(Stratum(s.districts, len(r)) for s, r in zip(strata, register, strict=True))
    )
    trees = [RegisterTree.build(addresses) for addresses in register]
    function = state.chain.poll_book.functions.createPoll(params, [t.root for t in trees], [t.size for t in trees])
    columns = {
        "question": body.question,
        "options_json": json.dumps(body.options),
        "max_choices": body.max_choices,
        "audience_json": json.dumps(audience_json),
        "strata_json": poll_strata.dumps(),
        "opens_at": body.opens_at,
        "closes_at": body.closes_at,
        "points": body.points,
        "version": 2 if body.key_ceremony else 1,
        "election_key": None if body.key_ceremony else "0x" + election_public_key.hex(),
        "trustees_json": json.dumps(addresses),
        "threshold": body.threshold,
        "metadata_hash": "0x" + metadata_hash.hex(),
    }

    def attach(session, tx: ChainTx) -> int:
        assert tx.id is not None  # (flushed with its id before its items are attached)
        creation = PollCreation(
            tx_id=tx.id,
            poll_json=json.dumps(columns),
            issuer_keys_json="[]",
            sealed_shares_json=json.dumps(["0x" + s.hex() for s in sealed_shares]),
            register_json=json.dumps(register),
        )
        session.add(creation)
        session.flush()  # its id is the sealing context until the chain gives the poll id
        assert creation.id is not None
        creation.issuer_keys_json = json.dumps(
            [
                [public_keys[s].hex(), state.keys.seal_issuer_key(DRAFT_POLL_BASE + creation.id, s, key).hex()]
                for s, key in enumerate(private_keys)
            ]
        )
        session.add(creation)
        return 1

    with state.admin.exclusive():
        gas = state.admin.estimate(function)  # a revert becomes chain.<Error> (409) before anything is written
        outbox = Outbox(state.db, state.chain.w3, state.keys.admin, state.chain.chain_id)
        for attempt in range(3):
            try:
                row = outbox.write(ChainTx.Kind.POLL, None, function, gas, attach)
                break
            except IntegrityError:  # another API process took the nonce: read it again
                outbox.reset()
                if attempt == 2:
                    raise ApiError("chain.unavailable", 503, "no nonce for the admin key; try again") from None
            except Exception:
                raise ApiError("chain.unavailable", 503, "the chain node is not reachable") from None
        private_keys.clear()  # the API keeps only the sealed copies
        try:
            outbox.send(row)
        except TransientError:
            pass  # logged: the relay sends it again while this request waits
        assert row.id is not None  # (written to the log)
        creation = _await_creation(state, row.id)
    if creation.status == PollCreation.Status.FAILED:
        raise ApiError(
            creation.reason or "chain.Reverted", 409, "the createPoll transaction failed; nothing was created"
        )
    return _creation_body(state, creation)


def _check_ceremony_trustees(state, body: PollCreate, addresses: Sequence[str], now: int) -> None:
    """A v2 poll: trustees by address only, each with a registered P-256 static key (no two the
    same), and time before opensAt for their ceremony."""
    if any(t.public_key is not None for t in body.trustees):
        raise ApiError(
            "poll.invalid_trustee_key",
            422,
            "a v2 poll (the default) names its trustees by address only: their static keys are the ones "
            "registered on chain (POST /trustees/keys); a v1 poll, whose key the API deals, needs "
            '"keyCeremony": false',
        )
    earliest = now + state.settings.ceremony_seconds
    if body.opens_at < earliest:
        raise ApiError(
            "poll.invalid_window",
            422,
            f"opensAt must leave the trustees {state.settings.ceremony_seconds} s for their key ceremony: "
            f"at {earliest} (chain time) at the earliest",
        )
    seen: dict[bytes, int] = {}
    for index, address in enumerate(addresses):
        key = registered_key(state, address)
        if key is None:
            raise ApiError(
                "poll.missing_trustee_key",
                422,
                f"trustee {index} ({address}) has no registered key: it runs `veche trustee key` and "
                "`veche trustee register` first",
            )
        try:
            p256.decode_point(key)
        except EncodingError:
            raise ApiError(
                "poll.invalid_trustee_key",
                422,
                f"trustee {index} ({address}) registered a key that is not a P-256 point: it registers another",
            ) from None
        if key in seen:
            raise ApiError(
                "poll.duplicate_trustee_key",
                422,
                f"trustees {seen[key]} and {index} ({address}) registered the same key",
            )
        seen[key] = index


def registered_key(state, address: str) -> bytes | None:
    """The trustee's registered static key on chain, None if it has none."""
    key, serial = trustee_key(state, address)
    return key if serial else None


def trustee_key(state, address: str) -> tuple[bytes, int]:
    try:
        key, serial = state.chain.poll_book.functions.trusteeKey(address).call()
    except Exception:
        raise ApiError("chain.unavailable", 503, "the chain node is not reachable") from None
    return bytes(key), int(serial)


def make_strata(state, audience: dict, opens_at: int) -> PollStrata:
    """The poll's strata: its districts in the configured order, each with the residents the
    audience admits at the opening, merged (strata.group_strata) to at least `min_stratum` each;
    409 `poll.audience_too_small` if the whole audience is smaller. Counted before the issuer
    keys are made, one per stratum."""
    threshold = state.settings.min_stratum
    listed = audience["districts"]
    districts = [d for d in state.settings.districts if listed is None or d in listed]
    with state.db.session() as session:
        counts = count_eligible(session, audience, districts, opens_at)
    total = sum(counts.values())
    if total < threshold:
        raise ApiError(
            "poll.audience_too_small",
            409,
            f"the audience holds {total} eligible residents, fewer than the {threshold} a stratum needs "
            "(VECHE_MIN_STRATUM) to keep its ballots anonymous; nothing was created",
        )
    return PollStrata(threshold, tuple(group_strata([(d, counts[d]) for d in districts], threshold)))


def _await_creation(state, tx_id: int) -> PollCreation:
    """Wait for the receipt of any version of the createPoll transaction and finish it; 503
    `poll.creation_pending` after CREATE_WAIT (the relay finishes it later)."""
    deadline = time.monotonic() + CREATE_WAIT
    rpc = state.chain.rpc()
    while True:
        with state.db.session() as session:
            creation = session.exec(select(PollCreation).where(PollCreation.tx_id == tx_id)).one()
            row = session.get(ChainTx, tx_id)
            earlier = session.exec(
                select(TxVersion.tx_hash).where(TxVersion.chain_tx_id == tx_id).order_by(col(TxVersion.id).desc())
            ).all()
        if creation.status != PollCreation.Status.PENDING:
            return creation
        found = _receipt(rpc, [row.tx_hash, *earlier])
        if found is not None:
            try:
                finish_poll_tx(state.db, state.keys, state.chain.deployment.poll_book, tx_id, *found)
            except TRANSIENT:
                time.sleep(0.1)
            except Exception as exc:  # the relay finishes it, or quarantines it (GET /health)
                log.error("createPoll %s is mined but could not be stored: %s", row.tx_hash, describe(exc))
                raise ApiError(
                    "poll.not_stored",
                    500,
                    "the poll is on chain but could not be stored; the relay "
                    "retries it and GET /health shows it while it fails",
                ) from None
            continue
        if time.monotonic() > deadline:
            raise ApiError(
                "poll.creation_pending",
                503,
                "the poll is recorded but its transaction is not mined "
                "yet; it is created when it is (GET /polls, then GET /admin/polls/{id}/creation)",
            )
        time.sleep(0.1)


def _receipt(rpc, hashes: list[str]):
    """(receipt, hash) of the mined version, or None (also when the node does not answer)."""
    try:
        for tx_hash in hashes:
            receipt = rpc.call("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                return receipt, tx_hash
    except Exception:
        return None
    return None


def _creation_body(state, creation: PollCreation) -> PollCreated:
    with state.db.session() as session:
        poll = session.get(Poll, creation.poll_id)
        keys = session.exec(select(IssuerKey).where(IssuerKey.poll_id == poll.id)).all()
    return PollCreated(
        poll=to_public(state, poll, keys, state.chain.now()),
        sealed_shares=json.loads(creation.sealed_shares_json),
        transaction_hash=poll.create_tx,
    )


@router.get(
    "/admin/polls/{poll_id}/creation", response_model=PollCreated, responses=error_responses(401, 404, 422, 503)
)
def read_poll_creation(poll_id: int, state: StateDep, session: SessionDep, _: AdminDep) -> PollCreated:
    """The answer of the request that created the poll, sealed shares included: for when that
    answer was lost (a crash; the relay finished the creation afterwards)."""
    if not 1 <= poll_id <= MAX_INT:
        raise ApiError("poll.unknown", 404, f"no poll {poll_id}")
    creation = session.exec(select(PollCreation).where(PollCreation.poll_id == poll_id)).first()
    if creation is None:
        raise ApiError("poll.unknown", 404, f"no poll {poll_id} was created by this API")
    return _creation_body(state, creation)


@router.get("/polls", response_model=list[PollPublic], responses=error_responses(400, 422, 503))
def read_polls(
    request: Request, state: StateDep, session: SessionDep, include_closed: bool = False
) -> list[PollPublic]:
    """Every poll (open and scheduled ones; closed ones too with `include_closed`), for anyone.

    The polls a resident may vote in are `POST /polls/eligible`. The old `?resident=0x…` is
    refused with 400 `poll.resident_in_url`: a URL is kept by every access log and proxy on its
    way, beside the token request and the ballot that follow, so an identity never goes in one."""
    if "resident" in request.query_params:
        raise ApiError(
            "poll.resident_in_url",
            400,
            "the resident's address does not go in a URL: POST /polls/eligible with "
            '{"resident": "0x...", "includeClosed": false}',
        )
    return _listing(state, session, include_closed, None)


@router.post("/polls/eligible", response_model=list[PollPublic], responses=error_responses(400, 404, 413, 422, 503))
def read_eligible_polls(body: EligiblePollsQuery, state: StateDep, session: SessionDep) -> list[PollPublic]:
    """The polls this resident may vote in, each with their stratum (`residentStratum`). A POST
    so that the identity address is in the body: URLs are kept in access and proxy logs, beside
    the token request and the ballot that follow from the same client."""
    resident = session.get(Resident, to_checksum_address(body.resident))
    if resident is None:
        raise ApiError("resident.unknown", 404, "no such resident")
    return _listing(state, session, body.include_closed, resident)


def _listing(state, session, include_closed: bool, resident: Resident | None) -> list[PollPublic]:
    now = state.chain.now()
    polls = session.exec(select(Poll).order_by(col(Poll.id))).all()
    out = []
    for poll in polls:
        if not include_closed and now >= poll.closes_at:
            continue
        stratum = None
        if resident is not None:
            strata = PollStrata.loads(poll.strata_json).strata
            stratum = eligible_stratum(json.loads(poll.audience_json), strata, resident, poll.opens_at)
            if stratum is None:
                continue
        keys = session.exec(select(IssuerKey).where(IssuerKey.poll_id == poll.id)).all()
        out.append(to_public(state, poll, keys, now, stratum))
    return out


@router.get(
    "/polls/{poll_id:int}", response_model=PollPublic, responses=error_responses(404, 422, 503)
)  # :int, so that GET /polls/eligible is 405 (it is POST), not a poll id that fails to parse
def read_poll(poll_id: int, state: StateDep, session: SessionDep) -> PollPublic:
    if not 1 <= poll_id <= MAX_INT:
        raise ApiError("poll.unknown", 404, f"no poll {poll_id}")
    poll = session.get(Poll, poll_id)
    if poll is None:
        raise ApiError("poll.unknown", 404, f"no poll {poll_id}")
    keys = session.exec(select(IssuerKey).where(IssuerKey.poll_id == poll_id)).all()
    return to_public(state, poll, keys, state.chain.now())

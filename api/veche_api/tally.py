"""Close and publish: count exactly what an observer counts, from chain state alone.

The ballots are read from BallotCast events (not from the API's database), and the rules are
the verifier's (docs/protocol.md §6): a ballot counts if its token signature verifies under its
stratum's issuer key (check 2), its EIP-712 signature recovers its token (3) and its block is in
the window (4); per token the highest such sequence counts (5); it must open under the rebuilt
key (7) and decode to a valid choice (8) — invalid ones are listed, not counted.
"""

from __future__ import annotations

import json
from collections import defaultdict

from veche_core import dataset, events, key_shares, plaintext, sealing
from veche_core import token as token_mod
from veche_core.ballot import Ballot
from veche_core.errors import VecheError

from .errors import ApiError
from .models import Poll
from .schemas import TallyOut


def _per_district(strata, stratum_counts, option_count, suppress_below):
    out = []
    for stratum, name in enumerate(strata):
        total, counts = stratum_counts.get(stratum, (0, [0] * option_count))
        if total < suppress_below:
            out.append({"stratum": stratum, "district": name, "suppressed": True})
        else:
            out.append({"stratum": stratum, "district": name, "suppressed": False, "ballots": total, "counts": counts})
    return out


def count_poll(state, poll: Poll):
    chain = state.chain
    info = state.poll_info(poll.id)
    trustees = json.loads(poll.trustees_json)
    shares = []
    for event in chain.poll_logs(events.KEY_SHARE_SUBMITTED, poll.id):
        index = event.args["index"]
        if index < len(trustees) and event.args["trustee"] == trustees[index]:
            shares.append(event.args["share"])
    if len(shares) < poll.threshold:
        raise ApiError("poll.not_enough_shares", 409, f"{len(shares)} of {poll.threshold} key shares are on chain")
    try:
        secret = key_shares.combine_shares(shares, bytes.fromhex(poll.election_key[2:]), poll.threshold)
    except VecheError as exc:
        raise ApiError("poll.bad_key_shares", 409, f"the key shares do not rebuild the election key: {exc}") from None

    timestamps: dict[int, int] = {}
    best: dict[str, tuple[int, Ballot, int]] = {}
    for event in chain.poll_logs(events.BALLOT_CAST, poll.id):
        a = event.args
        ballot = Ballot(poll.id, a["token"], a["sequence"], a["stratum"], a["ciphertext"], a["tokenSignature"], a["signature"])
        if ballot.stratum >= len(info.issuer_keys):
            continue
        try:
            token_mod.verify_token_signature(
                info.issuer_keys[ballot.stratum], chain.chain_id, chain.deployment.poll_book,
                poll.id, ballot.stratum, ballot.token, ballot.token_credential,
            )
            ballot.verify_signature(chain.poll_domain)
        except VecheError:
            continue
        block = event.block_number
        if block not in timestamps:
            timestamps[block] = chain.block_timestamp(block)
        if not info.opens_at <= timestamps[block] < info.closes_at:
            continue
        previous = best.get(ballot.token_address)
        if previous is None or ballot.sequence > previous[0]:
            best[ballot.token_address] = (ballot.sequence, ballot, block)

    counts = [0] * info.option_count
    stratum_counts: dict[int, tuple[int, list[int]]] = defaultdict(lambda: (0, [0] * info.option_count))
    rows = []
    invalid = 0
    for token_address, (_, ballot, block) in best.items():
        try:
            choice = plaintext.decode_choice(
                sealing.open_ballot(secret, ballot.ciphertext), info.option_count, info.max_choices
            )
        except VecheError:
            invalid += 1
            continue
        total, per = stratum_counts[ballot.stratum]
        for option in choice:
            counts[option] += 1
            per[option] += 1
        stratum_counts[ballot.stratum] = (total + 1, per)
        rows.append(dataset.DatasetRow(token_address.lower(), ballot.stratum, tuple(choice), block))
    return counts, rows, dict(stratum_counts), invalid


def publish(state, poll_id: int) -> TallyOut:
    with state.db.session() as session:
        poll = session.get(Poll, poll_id)
    if poll is None:
        raise ApiError("poll.unknown", 404, f"no poll {poll_id}")
    if poll.published:
        raise ApiError("result.already_published", 409, "the result is already published")
    if state.chain.now() < poll.closes_at:
        raise ApiError("poll.not_closed", 409, "the poll has not closed yet")
    counts, rows, stratum_counts, _invalid = count_poll(state, poll)
    dataset_hash = dataset.dataset_hash(rows)
    receipt = state.admin.transact(state.chain.poll_book.functions.publishResult(poll_id, counts, dataset_hash))
    strata = json.loads(poll.strata_json)
    per_district = _per_district(strata, stratum_counts, len(counts), state.settings.suppress_below)
    with state.db.write_session() as session:
        fresh = session.get(Poll, poll_id)
        fresh.published = True
        fresh.counts_json = json.dumps(counts)
        fresh.per_stratum_json = json.dumps(per_district)
        fresh.dataset_hash = "0x" + dataset_hash.hex()
        fresh.dataset_csv = dataset.canonical_csv(rows).decode()
        fresh.publish_tx = "0x" + bytes(receipt["transactionHash"]).hex()
        session.add(fresh)
        session.commit()
    return TallyOut(
        poll_id=poll_id, counts=counts, dataset_hash="0x" + dataset_hash.hex(), ballots_counted=len(rows),
        per_district=per_district, transaction_hash=fresh.publish_tx,
    )

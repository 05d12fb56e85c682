"""PollBook.castBallots: the time window, per-ballot checks, revoting and mixed batches.

The contract does not judge sequences: every ballot with a known stratum and a valid signature
is emitted as BallotCast, in batch order, and the verifier applies the revote rule (check 5)."""

import os

from contract_helpers import Key, args, reverts_with, role, sign_ballot

from veche_core import typed_data

UNKNOWN_STRATUM, BAD_SIGNATURE = 0, 1  # 2 (StaleSequence) is retired: never emitted


def rejections(poll_book, receipt):
    return [(log.pollId, log.token, log.sequence, log.reason) for log in poll_book.BallotRejected.from_receipt(receipt)]


def cast(poll_book, receipt):
    return [(log.token, log.sequence) for log in poll_book.BallotCast.from_receipt(receipt)]


def test_an_accepted_ballot_is_emitted_whole(poll_book, relayer, domain, open_poll):
    token = Key.create()
    ballot = sign_ballot(domain, open_poll.id, token, 1, stratum=2)
    receipt = poll_book.castBallots(open_poll.id, args([ballot]), sender=relayer)

    (log,) = poll_book.BallotCast.from_receipt(receipt)
    assert log.pollId == open_poll.id
    assert log.token == token.address
    assert log.sequence == 1
    assert log.stratum == 2
    assert bytes(log.ciphertext) == ballot.ciphertext
    assert bytes(log.tokenSignature) == ballot.token_signature
    assert bytes(log.signature) == ballot.signature
    assert len(ballot.token_signature) == 288 and len(ballot.ciphertext) == 51
    assert rejections(poll_book, receipt) == []


def test_cast_ballots_returns_the_number_accepted(poll_book, relayer, domain, open_poll):
    good = [sign_ballot(domain, open_poll.id, Key.create(), 1) for _ in range(3)]
    bad = sign_ballot(domain, open_poll.id, Key.create(), 1, stratum=9)
    batch = args(good + [bad])
    assert poll_book.castBallots.call(open_poll.id, batch, sender=relayer) == 3
    receipt = poll_book.castBallots(open_poll.id, batch, sender=relayer)
    assert receipt.return_value == 3


def test_the_window_is_opens_at_inclusive_to_closes_at_exclusive(chain, poll_book, relayer, domain, poll):
    token = Key.create()

    def attempt(sequence):
        return args([sign_ballot(domain, poll.id, token, sequence)])

    # Before open.
    chain.pending_timestamp = poll.opens_at - 1
    with reverts_with(poll_book.PollBookNotOpen, pollId=poll.id, opensAt=poll.opens_at, closesAt=poll.closes_at):
        poll_book.castBallots(poll.id, attempt(1), sender=relayer)

    # Exactly at open.
    chain.pending_timestamp = poll.opens_at
    receipt = poll_book.castBallots(poll.id, attempt(1), sender=relayer)
    assert chain.blocks[receipt.block_number].timestamp == poll.opens_at
    assert cast(poll_book, receipt) == [(token.address, 1)]

    # The last second before close.
    chain.pending_timestamp = poll.closes_at - 1
    receipt = poll_book.castBallots(poll.id, attempt(2), sender=relayer)
    assert chain.blocks[receipt.block_number].timestamp == poll.closes_at - 1
    assert cast(poll_book, receipt) == [(token.address, 2)]

    # Exactly at close, and later.
    for when in (poll.closes_at, poll.closes_at + 3600):
        chain.pending_timestamp = when
        with reverts_with(
            poll_book.PollBookNotOpen,
            pollId=poll.id,
            opensAt=poll.opens_at,
            closesAt=poll.closes_at,
        ):
            poll_book.castBallots(poll.id, attempt(3), sender=relayer)


def test_cast_ballots_rejects_unknown_polls(poll_book, relayer, domain, open_poll):
    for unknown in (0, open_poll.id + 1):
        ballot = sign_ballot(domain, unknown, Key.create(), 1)
        with reverts_with(poll_book.PollBookUnknownPoll, pollId=unknown):
            poll_book.castBallots(unknown, args([ballot]), sender=relayer)


def test_cast_ballots_needs_relayer_role(poll_book, domain, open_poll, issuer, outsider):
    ballot = sign_ballot(domain, open_poll.id, Key.create(), 1)
    for account in (issuer, outsider):
        with reverts_with(
            poll_book.AccessControlUnauthorizedAccount,
            account=account.address,
            neededRole=role("RELAYER_ROLE"),
        ):
            poll_book.castBallots(open_poll.id, args([ballot]), sender=account)


def test_the_contract_has_no_sequence_state(poll_book):
    assert "lastSequence" not in [abi.name for abi in poll_book.contract_type.abi if abi.type == "function"]


def test_revotes_and_stale_ballots_are_all_cast_in_order(poll_book, relayer, domain, open_poll):
    token = Key.create()
    first = poll_book.castBallots(open_poll.id, args([sign_ballot(domain, open_poll.id, token, 1)]), sender=relayer)
    assert cast(poll_book, first) == [(token.address, 1)]

    higher = poll_book.castBallots(open_poll.id, args([sign_ballot(domain, open_poll.id, token, 5)]), sender=relayer)
    assert cast(poll_book, higher) == [(token.address, 5)]

    # Equal and lower sequences are cast too: the verifier, not the contract, keeps the highest.
    stale = [sign_ballot(domain, open_poll.id, token, s) for s in (5, 4, 1)]
    receipt = poll_book.castBallots(open_poll.id, args(stale), sender=relayer)
    assert cast(poll_book, receipt) == [(token.address, s) for s in (5, 4, 1)]
    assert rejections(poll_book, receipt) == []
    assert receipt.return_value == 3


def test_sequence_zero_is_cast(poll_book, relayer, domain, open_poll):
    token = Key.create()
    receipt = poll_book.castBallots(open_poll.id, args([sign_ballot(domain, open_poll.id, token, 0)]), sender=relayer)
    assert cast(poll_book, receipt) == [(token.address, 0)]
    assert rejections(poll_book, receipt) == []


def test_a_batch_is_cast_in_its_own_order_duplicates_included(poll_book, relayer, domain, open_poll):
    token = Key.create()
    batch = [sign_ballot(domain, open_poll.id, token, s) for s in (1, 2, 2, 1, 3)]
    receipt = poll_book.castBallots(open_poll.id, args(batch), sender=relayer)
    assert cast(poll_book, receipt) == [(token.address, s) for s in (1, 2, 2, 1, 3)]
    assert rejections(poll_book, receipt) == []
    assert receipt.return_value == 5


def test_the_same_ballot_relayed_twice_is_cast_twice(poll_book, relayer, domain, open_poll):
    token = Key.create()
    ballot = sign_ballot(domain, open_poll.id, token, 1)
    logs = []
    for _ in range(2):
        receipt = poll_book.castBallots(open_poll.id, args([ballot]), sender=relayer)
        logs += list(poll_book.BallotCast.from_receipt(receipt))
    assert [(log.token, log.sequence, bytes(log.signature)) for log in logs] == [
        (token.address, 1, ballot.signature)
    ] * 2


def test_ballots_of_other_tokens_and_polls_are_independent(chain, poll_book, relayer, domain, create_poll):
    first, second = create_poll(), create_poll()
    chain.pending_timestamp = first.opens_at
    chain.mine()
    alice, bob = Key.create(), Key.create()
    receipt = poll_book.castBallots(first.id, args([sign_ballot(domain, first.id, alice, 7)]), sender=relayer)
    assert cast(poll_book, receipt) == [(alice.address, 7)]

    receipt = poll_book.castBallots(first.id, args([sign_ballot(domain, first.id, bob, 1)]), sender=relayer)
    assert cast(poll_book, receipt) == [(bob.address, 1)]

    receipt = poll_book.castBallots(second.id, args([sign_ballot(domain, second.id, alice, 1)]), sender=relayer)
    assert [(log.pollId, log.token, log.sequence) for log in poll_book.BallotCast.from_receipt(receipt)] == [
        (second.id, alice.address, 1)
    ]


def test_a_ballot_signed_for_another_poll_is_rejected(poll_book, relayer, domain, create_poll, chain):
    first, second = create_poll(), create_poll()
    chain.pending_timestamp = first.opens_at
    chain.mine()
    token = Key.create()
    replayed = sign_ballot(domain, first.id, token, 1)
    receipt = poll_book.castBallots(second.id, args([replayed]), sender=relayer)
    assert rejections(poll_book, receipt) == [(second.id, token.address, 1, BAD_SIGNATURE)]


def test_a_ballot_signed_for_another_deployment_is_rejected(project, admin, poll_book, relayer, domain, open_poll):
    other = admin.deploy(project.PollBook, admin, poll_book.cityPoints())
    other_domain = typed_data.poll_book_domain(domain.chain_id, other.address)
    token = Key.create()
    ballot = sign_ballot(other_domain, open_poll.id, token, 1)
    receipt = poll_book.castBallots(open_poll.id, args([ballot]), sender=relayer)
    assert rejections(poll_book, receipt) == [(open_poll.id, token.address, 1, BAD_SIGNATURE)]


def test_a_ballot_signed_for_another_chain_is_rejected(poll_book, relayer, domain, open_poll):
    other_chain = typed_data.poll_book_domain(domain.chain_id + 1, domain.verifying_contract)
    token = Key.create()
    receipt = poll_book.castBallots(
        open_poll.id, args([sign_ballot(other_chain, open_poll.id, token, 1)]), sender=relayer
    )
    assert rejections(poll_book, receipt) == [(open_poll.id, token.address, 1, BAD_SIGNATURE)]


def test_a_mixed_batch_accepts_the_good_and_skips_the_bad(poll_book, relayer, domain, open_poll):
    pid = open_poll.id
    good = [sign_ballot(domain, pid, Key.create(), 1, stratum=s % 3) for s in range(4)]

    stale_token = Key.create()
    poll_book.castBallots(pid, args([sign_ballot(domain, pid, stale_token, 3)]), sender=relayer)

    bad_stratum_token = Key.create()
    bad_stratum = sign_ballot(domain, pid, bad_stratum_token, 1, stratum=3)

    impostor_token = Key.create()
    wrong_signer = sign_ballot(domain, pid, impostor_token, 1, signer=Key.create())

    tampered_token = Key.create()
    tampered = sign_ballot(domain, pid, tampered_token, 1)
    tampered.ciphertext = bytes([tampered.ciphertext[0] ^ 1]) + tampered.ciphertext[1:]

    swapped_token = Key.create()
    swapped = sign_ballot(domain, pid, swapped_token, 1)
    swapped.token_signature = os.urandom(288)

    restratified_token = Key.create()
    restratified = sign_ballot(domain, pid, restratified_token, 1, stratum=0)
    restratified.stratum = 1  # a valid stratum, but not the signed one

    truncated_token = Key.create()
    truncated = sign_ballot(domain, pid, truncated_token, 1)
    truncated.signature = truncated.signature[:64]

    high_s_token = Key.create()
    high_s = sign_ballot(domain, pid, high_s_token, 1)
    high_s.signature = _malleate(high_s.signature)

    stale = sign_ballot(domain, pid, stale_token, 2)

    batch = [
        good[0],
        bad_stratum,
        good[1],
        wrong_signer,
        tampered,
        good[2],
        swapped,
        restratified,
        truncated,
        high_s,
        stale,
        good[3],
    ]
    receipt = poll_book.castBallots(pid, args(batch), sender=relayer)

    # The stale ballot (sequence 2 after 3) is cast in its place: only signatures and strata are
    # judged here.
    expected = [good[0], good[1], good[2], stale, good[3]]
    assert [
        (log.token, log.sequence, log.stratum, bytes(log.ciphertext))
        for log in poll_book.BallotCast.from_receipt(receipt)
    ] == [(b.token, b.sequence, b.stratum, b.ciphertext) for b in expected]
    assert rejections(poll_book, receipt) == [
        (pid, bad_stratum_token.address, 1, UNKNOWN_STRATUM),
        (pid, impostor_token.address, 1, BAD_SIGNATURE),
        (pid, tampered_token.address, 1, BAD_SIGNATURE),
        (pid, swapped_token.address, 1, BAD_SIGNATURE),
        (pid, restratified_token.address, 1, BAD_SIGNATURE),
        (pid, truncated_token.address, 1, BAD_SIGNATURE),
        (pid, high_s_token.address, 1, BAD_SIGNATURE),
    ]
    assert receipt.return_value == 5


def test_a_rejected_ballot_does_not_block_a_later_valid_one(poll_book, relayer, domain, open_poll):
    token = Key.create()
    forged = sign_ballot(domain, open_poll.id, token, 9, signer=Key.create())
    poll_book.castBallots(open_poll.id, args([forged]), sender=relayer)
    receipt = poll_book.castBallots(open_poll.id, args([sign_ballot(domain, open_poll.id, token, 1)]), sender=relayer)
    assert cast(poll_book, receipt) == [(token.address, 1)]


def test_an_empty_batch_accepts_nothing(poll_book, relayer, open_poll):
    receipt = poll_book.castBallots(open_poll.id, [], sender=relayer)
    assert receipt.return_value == 0
    assert list(receipt.events) == []


def _malleate(signature: bytes) -> bytes:
    """The other valid-for-ecrecover form (s -> n - s, flipped v) that OpenZeppelin rejects."""
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return r + (n - s).to_bytes(32, "big") + bytes([55 - v])

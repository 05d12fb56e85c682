"""PollBook.recordIssuances: one pseudonym per resident and poll, counted per stratum."""

import os

from contract_helpers import reverts_with, role


def test_record_issuances_counts_per_stratum_and_emits(poll_book, issuer, poll):
    pseudonyms = [os.urandom(32) for _ in range(5)]
    strata = [0, 2, 2, 1, 2]
    receipt = poll_book.recordIssuances(poll.id, pseudonyms, strata, sender=issuer)

    [log] = poll_book.TokensIssued.from_receipt(receipt)  # one log for the whole batch
    assert log.pollId == poll.id
    assert [bytes(p) for p in log.pseudonyms] == pseudonyms and list(log.strata) == strata
    assert [poll_book.issuedCount(poll.id, s) for s in range(3)] == [1, 1, 3]
    assert all(poll_book.isIssued(poll.id, p) for p in pseudonyms)
    assert not poll_book.isIssued(poll.id, os.urandom(32))


def test_issuances_accumulate_across_batches(poll_book, issuer, poll):
    poll_book.recordIssuances(poll.id, [os.urandom(32)], [1], sender=issuer)
    poll_book.recordIssuances(poll.id, [os.urandom(32), os.urandom(32)], [1, 1], sender=issuer)
    assert poll_book.issuedCount(poll.id, 1) == 3


def test_an_empty_batch_changes_nothing(poll_book, issuer, poll):
    receipt = poll_book.recordIssuances(poll.id, [], [], sender=issuer)
    assert list(poll_book.TokensIssued.from_receipt(receipt)) == []
    assert poll_book.issuedCount(poll.id, 0) == 0


def test_a_pseudonym_is_issued_once_per_poll(poll_book, issuer, create_poll):
    first, second = create_poll(), create_poll()
    pseudonym = os.urandom(32)
    poll_book.recordIssuances(first.id, [pseudonym], [0], sender=issuer)

    fresh = os.urandom(32)
    with reverts_with(poll_book.PollBookAlreadyIssued, pollId=first.id, pseudonym=pseudonym):
        poll_book.recordIssuances(first.id, [fresh, pseudonym], [0, 1], sender=issuer)
    # The whole batch reverted: the fresh pseudonym was not recorded either.
    assert not poll_book.isIssued(first.id, fresh)
    assert poll_book.issuedCount(first.id, 0) == 1
    assert poll_book.issuedCount(first.id, 1) == 0

    # Another poll is independent.
    poll_book.recordIssuances(second.id, [pseudonym], [0], sender=issuer)
    assert poll_book.isIssued(second.id, pseudonym)


def test_a_pseudonym_repeated_within_one_batch_reverts(poll_book, issuer, poll):
    pseudonym = os.urandom(32)
    with reverts_with(poll_book.PollBookAlreadyIssued, pollId=poll.id, pseudonym=pseudonym):
        poll_book.recordIssuances(poll.id, [pseudonym, pseudonym], [0, 0], sender=issuer)


def test_record_issuances_rejects_unknown_strata(poll_book, issuer, poll):
    with reverts_with(poll_book.PollBookUnknownStratum, pollId=poll.id, stratum=3):
        poll_book.recordIssuances(poll.id, [os.urandom(32), os.urandom(32)], [2, 3], sender=issuer)
    assert poll_book.issuedCount(poll.id, 2) == 0


def test_record_issuances_rejects_length_mismatch(poll_book, issuer, poll):
    with reverts_with(poll_book.PollBookLengthMismatch, pseudonyms=2, strata=1):
        poll_book.recordIssuances(poll.id, [os.urandom(32), os.urandom(32)], [0], sender=issuer)


def test_record_issuances_rejects_unknown_polls(poll_book, issuer, poll):
    with reverts_with(poll_book.PollBookUnknownPoll, pollId=poll.id + 1):
        poll_book.recordIssuances(poll.id + 1, [os.urandom(32)], [0], sender=issuer)


def test_issuance_is_open_until_close(chain, poll_book, issuer, poll):
    # Before the poll opens: allowed (residents may take tokens early).
    poll_book.recordIssuances(poll.id, [os.urandom(32)], [0], sender=issuer)
    # The last second before close: allowed.
    chain.pending_timestamp = poll.closes_at - 1
    receipt = poll_book.recordIssuances(poll.id, [os.urandom(32)], [0], sender=issuer)
    assert chain.blocks[receipt.block_number].timestamp == poll.closes_at - 1
    # At close: refused.
    chain.pending_timestamp = poll.closes_at
    with reverts_with(poll_book.PollBookIssuanceClosed, pollId=poll.id, closesAt=poll.closes_at):
        poll_book.recordIssuances(poll.id, [os.urandom(32)], [0], sender=issuer)
    assert poll_book.issuedCount(poll.id, 0) == 2


def test_record_issuances_needs_issuer_role(poll_book, poll, relayer, poll_admin):
    for account in (relayer, poll_admin):
        with reverts_with(
            poll_book.AccessControlUnauthorizedAccount,
            account=account.address,
            neededRole=role("ISSUER_ROLE"),
        ):
            poll_book.recordIssuances(poll.id, [os.urandom(32)], [0], sender=account)

"""PollBook key shares (direct and relayed) and publishResult."""

import os

from contract_helpers import Key, reverts_with, role

from veche_core import typed_data


def signed_share(domain, poll_id, index, share, key):
    return typed_data.sign_digest(key.private_key, typed_data.key_share_digest(domain, poll_id, index, share))


def test_a_trustee_posts_its_share_after_close(poll_book, trustee_accounts, closed_poll):
    share = os.urandom(80)
    receipt = poll_book.submitKeyShare(closed_poll.id, 1, share, sender=trustee_accounts[1])

    (log,) = poll_book.KeyShareSubmitted.from_receipt(receipt)
    assert (log.pollId, log.index, log.trustee, bytes(log.share)) == (
        closed_poll.id,
        1,
        trustee_accounts[1].address,
        share,
    )
    assert poll_book.keyShare(closed_poll.id, 1) == share
    assert poll_book.keyShare(closed_poll.id, 0) == b""
    assert poll_book.shareCount(closed_poll.id) == 1
    assert poll_book.poll(closed_poll.id).shareCount == 1


def test_shares_are_refused_before_close(chain, poll_book, trustee_accounts, trustee_key, domain, poll):
    share = os.urandom(80)
    # ape sends these transactions without estimating gas first, so even a reverting one is
    # mined: the block time is set before each call, and only wall-clock time moves it later.
    for when in (poll.opens_at - 1, poll.closes_at - 1):
        chain.pending_timestamp = when
        with reverts_with(poll_book.PollBookNotClosed, pollId=poll.id, closesAt=poll.closes_at):
            poll_book.submitKeyShare(poll.id, 0, share, sender=trustee_accounts[0])
        chain.pending_timestamp = when
        with reverts_with(poll_book.PollBookNotClosed, pollId=poll.id, closesAt=poll.closes_at):
            poll_book.submitKeyShareFor(
                poll.id,
                2,
                share,
                signed_share(domain, poll.id, 2, share, trustee_key),
                sender=trustee_accounts[0],
            )
    # Exactly at close the share is accepted.
    chain.pending_timestamp = poll.closes_at
    receipt = poll_book.submitKeyShare(poll.id, 0, share, sender=trustee_accounts[0])
    assert chain.blocks[receipt.block_number].timestamp == poll.closes_at
    assert poll_book.shareCount(poll.id) == 1


def test_only_the_indexed_trustee_may_post(poll_book, trustee_accounts, outsider, closed_poll):
    share = os.urandom(80)
    with reverts_with(poll_book.PollBookNotTrustee, pollId=closed_poll.id, index=0, account=outsider.address):
        poll_book.submitKeyShare(closed_poll.id, 0, share, sender=outsider)
    # A trustee cannot post under another trustee's index.
    with reverts_with(
        poll_book.PollBookNotTrustee,
        pollId=closed_poll.id,
        index=0,
        account=trustee_accounts[1].address,
    ):
        poll_book.submitKeyShare(closed_poll.id, 0, share, sender=trustee_accounts[1])
    assert poll_book.shareCount(closed_poll.id) == 0


def test_unknown_trustee_index_and_poll(poll_book, trustee_accounts, closed_poll):
    with reverts_with(poll_book.PollBookUnknownTrustee, pollId=closed_poll.id, index=3):
        poll_book.submitKeyShare(closed_poll.id, 3, b"share", sender=trustee_accounts[0])
    with reverts_with(poll_book.PollBookUnknownTrustee, pollId=closed_poll.id, index=3):
        poll_book.submitKeyShareFor(closed_poll.id, 3, b"share", bytes(65), sender=trustee_accounts[0])
    with reverts_with(poll_book.PollBookUnknownPoll, pollId=closed_poll.id + 1):
        poll_book.submitKeyShare(closed_poll.id + 1, 0, b"share", sender=trustee_accounts[0])
    with reverts_with(poll_book.PollBookUnknownPoll, pollId=closed_poll.id + 1):
        poll_book.submitKeyShareFor(closed_poll.id + 1, 0, b"share", bytes(65), sender=trustee_accounts[0])


def test_a_share_is_posted_once_and_not_empty(poll_book, trustee_accounts, trustee_key, domain, closed_poll):
    pid = closed_poll.id
    with reverts_with(poll_book.PollBookEmptyShare, pollId=pid, index=0):
        poll_book.submitKeyShare(pid, 0, b"", sender=trustee_accounts[0])

    first = os.urandom(80)
    poll_book.submitKeyShare(pid, 0, first, sender=trustee_accounts[0])
    with reverts_with(poll_book.PollBookShareAlreadySubmitted, pollId=pid, index=0):
        poll_book.submitKeyShare(pid, 0, os.urandom(80), sender=trustee_accounts[0])

    # Relayed path: the same rules.
    with reverts_with(poll_book.PollBookEmptyShare, pollId=pid, index=2):
        poll_book.submitKeyShareFor(
            pid, 2, b"", signed_share(domain, pid, 2, b"", trustee_key), sender=trustee_accounts[0]
        )
    share = os.urandom(80)
    signature = signed_share(domain, pid, 2, share, trustee_key)
    poll_book.submitKeyShareFor(pid, 2, share, signature, sender=trustee_accounts[0])
    with reverts_with(poll_book.PollBookShareAlreadySubmitted, pollId=pid, index=2):
        poll_book.submitKeyShareFor(pid, 2, share, signature, sender=trustee_accounts[1])

    assert poll_book.keyShare(pid, 0) == first
    assert poll_book.shareCount(pid) == 2


def test_anyone_relays_a_share_signed_by_its_trustee(poll_book, outsider, trustee_key, domain, closed_poll):
    share = os.urandom(80)
    signature = signed_share(domain, closed_poll.id, 2, share, trustee_key)
    receipt = poll_book.submitKeyShareFor(closed_poll.id, 2, share, signature, sender=outsider)

    (log,) = poll_book.KeyShareSubmitted.from_receipt(receipt)
    assert (log.pollId, log.index, log.trustee, bytes(log.share)) == (
        closed_poll.id,
        2,
        trustee_key.address,
        share,
    )
    assert poll_book.keyShare(closed_poll.id, 2) == share


def test_relayed_shares_with_bad_signatures_are_refused(
    chain, poll_book, outsider, trustee_key, domain, poll, create_poll
):
    pid = poll.id
    share = os.urandom(80)
    other_poll = create_poll()
    chain.pending_timestamp = poll.closes_at
    chain.mine()
    bad_signatures = [
        signed_share(domain, pid, 2, share, Key.create()),  # someone else
        signed_share(domain, pid, 2, os.urandom(80), trustee_key),  # another share
        signed_share(domain, pid, 1, share, trustee_key),  # another index
        signed_share(domain, other_poll.id, 2, share, trustee_key),  # another poll
        signed_share(domain, pid, 2, share, trustee_key)[:64],  # malformed
        bytes(65),  # does not recover
    ]
    for signature in bad_signatures:
        with reverts_with(poll_book.PollBookInvalidShareSignature, pollId=pid, index=2):
            poll_book.submitKeyShareFor(pid, 2, share, signature, sender=outsider)
    assert poll_book.shareCount(pid) == 0


def _release_shares(poll_book, poll_id, trustee_accounts, count):
    for index in range(count):
        poll_book.submitKeyShare(poll_id, index, os.urandom(80), sender=trustee_accounts[index])


def test_publish_result_after_threshold_shares(poll_book, poll_admin, trustee_accounts, closed_poll):
    _release_shares(poll_book, closed_poll.id, trustee_accounts, 2)
    counts = [10, 0, 7, 3]
    dataset_hash = os.urandom(32)
    receipt = poll_book.publishResult(closed_poll.id, counts, dataset_hash, sender=poll_admin)

    (log,) = poll_book.ResultPublished.from_receipt(receipt)
    assert (log.pollId, list(log.counts), bytes(log.datasetHash)) == (
        closed_poll.id,
        counts,
        dataset_hash,
    )
    published, stored_counts, stored_hash = poll_book.result(closed_poll.id)
    assert (published, list(stored_counts), bytes(stored_hash)) == (True, counts, dataset_hash)
    assert poll_book.poll(closed_poll.id).resultPublished is True


def test_no_result_before_publication(poll_book, poll):
    published, counts, dataset_hash = poll_book.result(poll.id)
    assert (published, list(counts), bytes(dataset_hash)) == (False, [], bytes(32))


def test_publish_result_guards(chain, poll_book, poll_admin, trustee_accounts, poll):
    pid = poll.id
    counts = [1, 2, 3, 4]
    chain.pending_timestamp = poll.closes_at - 1
    with reverts_with(poll_book.PollBookNotClosed, pollId=pid, closesAt=poll.closes_at):
        poll_book.publishResult(pid, counts, os.urandom(32), sender=poll_admin)

    chain.pending_timestamp = poll.closes_at
    chain.mine()
    with reverts_with(poll_book.PollBookNotEnoughShares, pollId=pid, shareCount=0, threshold=2):
        poll_book.publishResult(pid, counts, os.urandom(32), sender=poll_admin)
    _release_shares(poll_book, pid, trustee_accounts, 1)
    with reverts_with(poll_book.PollBookNotEnoughShares, pollId=pid, shareCount=1, threshold=2):
        poll_book.publishResult(pid, counts, os.urandom(32), sender=poll_admin)
    poll_book.submitKeyShare(pid, 1, os.urandom(80), sender=trustee_accounts[1])

    for wrong in ([1, 2, 3], [1, 2, 3, 4, 5], []):
        with reverts_with(poll_book.PollBookInvalidCounts, pollId=pid, length=len(wrong), optionCount=4):
            poll_book.publishResult(pid, wrong, os.urandom(32), sender=poll_admin)

    with reverts_with(poll_book.PollBookUnknownPoll, pollId=pid + 1):
        poll_book.publishResult(pid + 1, counts, os.urandom(32), sender=poll_admin)

    first_hash = os.urandom(32)
    poll_book.publishResult(pid, counts, first_hash, sender=poll_admin)
    with reverts_with(poll_book.PollBookResultAlreadyPublished, pollId=pid):
        poll_book.publishResult(pid, [4, 3, 2, 1], os.urandom(32), sender=poll_admin)
    published, stored_counts, stored_hash = poll_book.result(pid)
    assert (published, list(stored_counts), bytes(stored_hash)) == (True, counts, first_hash)


def test_a_share_may_still_be_posted_after_the_result(
    poll_book, poll_admin, trustee_accounts, trustee_key, domain, closed_poll
):
    _release_shares(poll_book, closed_poll.id, trustee_accounts, 2)
    poll_book.publishResult(closed_poll.id, [0, 0, 0, 0], bytes(32), sender=poll_admin)
    share = os.urandom(80)
    poll_book.submitKeyShareFor(
        closed_poll.id,
        2,
        share,
        signed_share(domain, closed_poll.id, 2, share, trustee_key),
        sender=poll_admin,
    )
    assert poll_book.shareCount(closed_poll.id) == 3


def test_publish_result_needs_poll_admin_role(poll_book, trustee_accounts, closed_poll, admin, issuer):
    _release_shares(poll_book, closed_poll.id, trustee_accounts, 2)
    for account in (admin, issuer):
        with reverts_with(
            poll_book.AccessControlUnauthorizedAccount,
            account=account.address,
            neededRole=role("POLL_ADMIN_ROLE"),
        ):
            poll_book.publishResult(closed_poll.id, [1, 2, 3, 4], os.urandom(32), sender=account)

"""PollBook: creating polls (every validation), the PollCreated event, the poll views."""

import os

import pytest
from contract_helpers import call_reverts_with, create_args, reverts_with, role

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def test_roles_are_the_keccak_of_their_names(poll_book, admin):
    assert poll_book.POLL_ADMIN_ROLE() == role("POLL_ADMIN_ROLE")
    assert poll_book.ISSUER_ROLE() == role("ISSUER_ROLE")
    assert poll_book.RELAYER_ROLE() == role("RELAYER_ROLE")
    assert poll_book.hasRole(bytes(32), admin)


def test_create_poll_emits_every_parameter_and_stores_them(poll_book, poll_admin, poll_params, issuer_keys, trustees):
    assert poll_book.pollCount() == 0
    receipt = poll_book.createPoll(*create_args(poll_params), sender=poll_admin)

    (log,) = poll_book.PollCreated.from_receipt(receipt)
    assert log.pollId == 1
    assert bytes(log.metadataHash) == poll_params["metadataHash"]
    assert log.optionCount == 4
    assert log.maxChoices == 2
    assert log.opensAt == poll_params["opensAt"]
    assert log.closesAt == poll_params["closesAt"]
    assert log.points == 20
    assert bytes(log.electionKey) == poll_params["electionKey"]
    assert [bytes(k) for k in log.issuerKeys] == issuer_keys
    assert list(log.trustees) == trustees
    assert log.threshold == 2

    assert poll_book.pollCount() == 1
    stored = poll_book.poll(1)
    assert bytes(stored.metadataHash) == poll_params["metadataHash"]
    assert bytes(stored.electionKey) == poll_params["electionKey"]
    assert stored.opensAt == poll_params["opensAt"]
    assert stored.closesAt == poll_params["closesAt"]
    assert stored.points == 20
    assert stored.issuerKeyCount == 3
    assert stored.optionCount == 4
    assert stored.maxChoices == 2
    assert stored.threshold == 2
    assert stored.trusteeCount == 3
    assert stored.shareCount == 0
    assert stored.resultPublished is False
    assert [poll_book.issuerKey(1, s) for s in range(3)] == issuer_keys
    assert list(poll_book.issuerKeys(1)) == issuer_keys
    assert list(poll_book.trustees(1)) == trustees


def test_poll_ids_count_up_from_one(create_poll, poll_book):
    assert [create_poll().id for _ in range(3)] == [1, 2, 3]
    assert poll_book.pollCount() == 3


def test_create_poll_needs_poll_admin_role(poll_book, poll_params, outsider, admin):
    for account in (outsider, admin):
        with reverts_with(
            poll_book.AccessControlUnauthorizedAccount,
            account=account.address,
            neededRole=role("POLL_ADMIN_ROLE"),
        ):
            poll_book.createPoll(*create_args(poll_params), sender=account)


@pytest.mark.parametrize(
    "option_count, max_choices",
    [(1, 1), (0, 0), (4, 0), (4, 5), (2, 3)],
)
def test_create_poll_rejects_bad_options(poll_book, poll_admin, poll_params, option_count, max_choices):
    params = {**poll_params, "optionCount": option_count, "maxChoices": max_choices}
    with reverts_with(poll_book.PollBookInvalidOptions, optionCount=option_count, maxChoices=max_choices):
        poll_book.createPoll(*create_args(params), sender=poll_admin)


def test_create_poll_accepts_edge_options(create_poll, poll_book):
    single = create_poll(optionCount=2, maxChoices=1)
    every = create_poll(optionCount=2, maxChoices=2)
    assert poll_book.poll(single.id).maxChoices == 1
    assert poll_book.poll(every.id).maxChoices == 2


def test_create_poll_rejects_bad_windows(chain, poll_book, poll_admin, poll_params):
    now = chain.pending_timestamp
    for opens_at, closes_at in [
        (now + 500, now + 500),  # empty window
        (now + 600, now + 500),  # inverted
        (now - 600, now - 10),  # already closed
    ]:
        params = {**poll_params, "opensAt": opens_at, "closesAt": closes_at}
        with reverts_with(poll_book.PollBookInvalidWindow, opensAt=opens_at, closesAt=closes_at):
            poll_book.createPoll(*create_args(params), sender=poll_admin)


def test_create_poll_rejects_closing_at_the_current_block(chain, poll_book, poll_admin, poll_params):
    now = chain.pending_timestamp + 5
    params = {**poll_params, "opensAt": now - 100, "closesAt": now}
    chain.pending_timestamp = now
    with reverts_with(poll_book.PollBookInvalidWindow, opensAt=now - 100, closesAt=now):
        poll_book.createPoll(*create_args(params), sender=poll_admin)


def test_create_poll_may_open_in_the_past(chain, create_poll, poll_book):
    now = chain.pending_timestamp
    handle = create_poll(opensAt=now - 3600)
    assert poll_book.poll(handle.id).opensAt == now - 3600


def test_create_poll_needs_issuer_keys(poll_book, poll_admin, poll_params):
    with reverts_with(poll_book.PollBookNoIssuerKeys):
        poll_book.createPoll(*create_args({**poll_params, "issuerKeys": []}), sender=poll_admin)


def test_create_poll_rejects_an_empty_issuer_key(poll_book, poll_admin, poll_params):
    keys = [os.urandom(270), b"", os.urandom(270)]
    with reverts_with(poll_book.PollBookEmptyIssuerKey, stratum=1):
        poll_book.createPoll(*create_args({**poll_params, "issuerKeys": keys}), sender=poll_admin)


def test_a_zero_election_key_makes_a_v2_poll(poll_book, poll_admin, poll_params, trustees):
    """A zero key is no longer refused: it asks for a key ceremony, whose trustees must have
    registered their static keys (tests/contracts/test_key_ceremony.py)."""
    with reverts_with(poll_book.PollBookMissingTrusteeKey, index=0, trustee=trustees[0]):
        poll_book.createPoll(*create_args({**poll_params, "electionKey": bytes(32)}), sender=poll_admin)


def test_create_poll_rejects_bad_trustee_lists(poll_book, poll_admin, poll_params, trustees):
    with reverts_with(poll_book.PollBookInvalidTrusteeCount, count=0):
        poll_book.createPoll(*create_args({**poll_params, "trustees": []}), sender=poll_admin)

    too_many = [f"0x{i:040x}" for i in range(1, 257)]
    with reverts_with(poll_book.PollBookInvalidTrusteeCount, count=256):
        poll_book.createPoll(*create_args({**poll_params, "trustees": too_many, "threshold": 1}), sender=poll_admin)

    with reverts_with(poll_book.PollBookInvalidTrustee, index=1, trustee=ZERO_ADDRESS):
        poll_book.createPoll(
            *create_args({**poll_params, "trustees": [trustees[0], ZERO_ADDRESS]}),
            sender=poll_admin,
        )

    duplicated = [trustees[0], trustees[1], trustees[0]]
    with reverts_with(poll_book.PollBookInvalidTrustee, index=2, trustee=trustees[0]):
        poll_book.createPoll(*create_args({**poll_params, "trustees": duplicated}), sender=poll_admin)


def test_create_poll_accepts_255_trustees(create_poll, poll_book):
    many = [f"0x{i:040x}" for i in range(1, 256)]
    handle = create_poll(trustees=many, threshold=255)
    assert poll_book.poll(handle.id).trusteeCount == 255


@pytest.mark.parametrize("threshold", [0, 4])
def test_create_poll_rejects_bad_thresholds(poll_book, poll_admin, poll_params, threshold):
    with reverts_with(poll_book.PollBookInvalidThreshold, threshold=threshold, trusteeCount=3):
        poll_book.createPoll(*create_args({**poll_params, "threshold": threshold}), sender=poll_admin)


def test_threshold_may_equal_the_number_of_trustees(create_poll, poll_book):
    assert poll_book.poll(create_poll(threshold=3).id).threshold == 3


def test_poll_views_reject_unknown_polls(poll_book, poll):
    for unknown in (0, poll.id + 1):
        error = poll_book.PollBookUnknownPoll
        call_reverts_with(poll_book.poll, [unknown], error, pollId=unknown)
        call_reverts_with(poll_book.issuerKey, [unknown, 0], error, pollId=unknown)
        call_reverts_with(poll_book.issuerKeys, [unknown], error, pollId=unknown)
        call_reverts_with(poll_book.trustees, [unknown], error, pollId=unknown)


def test_issuer_key_rejects_unknown_strata(poll_book, poll):
    call_reverts_with(
        poll_book.issuerKey,
        [poll.id, 3],
        poll_book.PollBookUnknownStratum,
        pollId=poll.id,
        stratum=3,
    )
    assert poll_book.issuerKey(poll.id, 2) == poll.params["issuerKeys"][2]


def test_create_poll_commits_the_register(poll_book, poll_admin, poll_params, register_trees):
    receipt = poll_book.createPoll(*create_args(poll_params), sender=poll_admin)
    (created,) = poll_book.PollCreated.from_receipt(receipt)
    (committed,) = poll_book.RegisterCommitted.from_receipt(receipt)
    assert committed.pollId == created.pollId
    assert [bytes(r) for r in committed.roots] == [t.root for t in register_trees]
    assert list(committed.sizes) == [5, 3, 1]
    roots, sizes = poll_book.register(created.pollId)
    assert [bytes(r) for r in roots] == [t.root for t in register_trees] and list(sizes) == [5, 3, 1]


def test_create_poll_needs_one_register_entry_per_stratum(poll_book, poll_admin, poll_params, register_trees):
    params, roots, sizes = create_args(poll_params)
    with reverts_with(poll_book.PollBookInvalidRegister, strata=3, roots=2, sizes=3):
        poll_book.createPoll(params, roots[:2], sizes, sender=poll_admin)
    with reverts_with(poll_book.PollBookInvalidRegister, strata=3, roots=3, sizes=4):
        poll_book.createPoll(params, roots, [*sizes, 1], sender=poll_admin)
    assert poll_book.pollCount() == 0

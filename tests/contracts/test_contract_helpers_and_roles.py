"""The strict revert helpers catch wrong errors and wrong inputs; role administration."""

import pytest
from contract_helpers import (
    Key,
    args,
    call_reverts_with,
    reverts_with,
    role,
    sign_ballot,
)


def test_reverts_with_fails_on_another_error(poll_book, issuer, poll):
    with pytest.raises(AssertionError, match="expected PollBookUnknownStratum"):
        with reverts_with(poll_book.PollBookUnknownStratum, pollId=poll.id + 1, stratum=0):
            poll_book.recordIssuances(poll.id + 1, [], sender=issuer)


def test_reverts_with_fails_on_wrong_or_missing_inputs(poll_book, issuer, poll):
    with pytest.raises(AssertionError, match="pollId"):
        with reverts_with(poll_book.PollBookUnknownPoll, pollId=poll.id + 2):
            poll_book.recordIssuances(poll.id + 1, [], sender=issuer)
    with pytest.raises(AssertionError, match="has inputs"):
        with reverts_with(poll_book.PollBookUnknownPoll):
            poll_book.recordIssuances(poll.id + 1, [], sender=issuer)


def test_reverts_with_fails_without_a_revert(poll_book, issuer, poll):
    with pytest.raises(AssertionError, match="did not revert"):
        with reverts_with(poll_book.PollBookUnknownPoll, pollId=poll.id):
            poll_book.recordIssuances(poll.id, [], sender=issuer)


def test_call_reverts_with_checks_error_and_inputs(poll_book, poll):
    with pytest.raises(AssertionError, match="expected PollBookUnknownStratum"):
        call_reverts_with(poll_book.poll, [0], poll_book.PollBookUnknownStratum, pollId=0, stratum=0)
    with pytest.raises(AssertionError, match="pollId"):
        call_reverts_with(poll_book.poll, [0], poll_book.PollBookUnknownPoll, pollId=1)


def test_only_the_admin_grants_roles(poll_book, city_points, admin, outsider, relayer):
    for contract, name in ((poll_book, "RELAYER_ROLE"), (city_points, "POLL_BOOK_ROLE")):
        with reverts_with(
            contract.AccessControlUnauthorizedAccount,
            account=outsider.address,
            neededRole=bytes(32),
        ):
            contract.grantRole(role(name), outsider, sender=outsider)
    poll_book.revokeRole(role("RELAYER_ROLE"), relayer, sender=admin)
    assert not poll_book.hasRole(role("RELAYER_ROLE"), relayer)


def test_a_revoked_relayer_cannot_cast(poll_book, admin, relayer, domain, open_poll):
    poll_book.revokeRole(role("RELAYER_ROLE"), relayer, sender=admin)
    ballot = sign_ballot(domain, open_poll.id, Key.create(), 1)
    with reverts_with(
        poll_book.AccessControlUnauthorizedAccount,
        account=relayer.address,
        neededRole=role("RELAYER_ROLE"),
    ):
        poll_book.castBallots(open_poll.id, args([ballot]), sender=relayer)

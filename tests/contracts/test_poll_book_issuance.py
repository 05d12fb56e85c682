"""PollBook.recordIssuances (protocol v2): every issuance is a request signed by a resident of the
stratum's committed register, once per resident and poll, and credits that resident's points in
the same call. The auditor's cases are driven here with the operator keys, straight at the
contracts: a made-up resident, a request signed by another key, a second issuance, a register
stretched past its size, and the issuer crediting an address of its choice — each refused."""

import os

from contract_helpers import Key, issuance, params_tuple, reverts_with, role
from eth_utils import to_checksum_address

from veche_core import register


def test_records_a_batch_and_credits_its_residents(
    poll_book, city_points, issuer, domain, poll, registered, register_trees
):
    items = [issuance(domain, poll.id, k, 0, register_trees[0]) for k in registered[0][:3]]
    items.append(issuance(domain, poll.id, registered[1][2], 1, register_trees[1]))
    receipt = poll_book.recordIssuances(poll.id, items, sender=issuer)

    [log] = poll_book.IssuancesRecorded.from_receipt(receipt)  # one log for the whole batch
    assert log.pollId == poll.id
    emitted = [tuple(i) for i in log.issuances]  # ape gives the structs as tuples, in field order
    assert [(to_checksum_address(i[0]), i[1], bytes(i[2]), i[3], bytes(i[4]), i[5]) for i in emitted] == [
        item[:6] for item in items
    ]
    assert [[bytes(step) for step in i[6]] for i in emitted] == [item[6] for item in items]
    credited = city_points.PointsCredited.from_receipt(receipt)  # the same transaction
    assert [(c.resident, c.pollId, c.amount) for c in credited] == [(item[0], poll.id, 20) for item in items]
    assert [city_points.balanceOf(item[0]) for item in items] == [20] * 4
    assert (poll_book.issuedCount(poll.id, 0), poll_book.issuedCount(poll.id, 1)) == (3, 1)
    assert all(poll_book.isIssued(poll.id, item[0]) for item in items)
    assert not poll_book.isIssued(poll.id, registered[0][3].address)


def test_an_empty_batch_records_and_credits_nothing(poll_book, city_points, issuer, poll):
    receipt = poll_book.recordIssuances(poll.id, [], sender=issuer)
    assert list(poll_book.IssuancesRecorded.from_receipt(receipt)) == []
    assert list(city_points.PointsCredited.from_receipt(receipt)) == []


def test_a_resident_is_issued_once_per_poll(
    poll_book, city_points, issuer, domain, create_poll, registered, register_trees
):
    first, second = create_poll(), create_poll()
    alice, bob = registered[0][0], registered[0][1]
    poll_book.recordIssuances(first.id, [issuance(domain, first.id, alice, 0, register_trees[0])], sender=issuer)
    again = [
        issuance(domain, first.id, bob, 0, register_trees[0]),
        issuance(domain, first.id, alice, 0, register_trees[0]),
    ]
    with reverts_with(poll_book.PollBookAlreadyIssued, pollId=first.id, resident=alice.address):
        poll_book.recordIssuances(first.id, again, sender=issuer)
    # The whole batch reverted: bob was neither recorded nor credited, alice not credited twice.
    assert not poll_book.isIssued(first.id, bob.address) and city_points.balanceOf(bob.address) == 0
    assert city_points.balanceOf(alice.address) == 20
    # Within one batch too.
    with reverts_with(poll_book.PollBookAlreadyIssued, pollId=first.id, resident=bob.address):
        poll_book.recordIssuances(first.id, [again[0], again[0]], sender=issuer)
    # Another poll is another issuance.
    poll_book.recordIssuances(second.id, [issuance(domain, second.id, alice, 0, register_trees[0])], sender=issuer)
    assert city_points.balanceOf(alice.address) == 40


def test_a_made_up_resident_is_refused(poll_book, city_points, issuer, domain, poll, registered, register_trees):
    """The auditor's fake residents: a fresh key signs a real request, with the proof of a real
    member (any index) or with a tree of the city's own making."""
    stranger = Key.create()
    for index in range(5):
        item = issuance(domain, poll.id, stranger, 0, register_trees[0], leaf_index=index)
        with reverts_with(poll_book.PollBookNotInRegister, pollId=poll.id, stratum=0, resident=stranger.address):
            poll_book.recordIssuances(poll.id, [item], sender=issuer)
    own_tree = register.RegisterTree.build([k.address for k in registered[0][:4]] + [stranger.address])
    item = issuance(domain, poll.id, stranger, 0, own_tree)
    with reverts_with(poll_book.PollBookNotInRegister, pollId=poll.id, stratum=0, resident=stranger.address):
        poll_book.recordIssuances(poll.id, [item], sender=issuer)
    # A member of stratum 1 is not a member of stratum 0.
    item = issuance(domain, poll.id, registered[1][0], 0, register_trees[1])
    with reverts_with(poll_book.PollBookNotInRegister, pollId=poll.id, stratum=0, resident=registered[1][0].address):
        poll_book.recordIssuances(poll.id, [item], sender=issuer)
    assert city_points.balanceOf(stranger.address) == 0


def test_a_request_signed_by_another_key_is_refused(poll_book, issuer, domain, poll, registered, register_trees):
    resident, other = registered[0][2], Key.create()
    item = issuance(domain, poll.id, resident, 0, register_trees[0], signer=other)
    with reverts_with(poll_book.PollBookInvalidRequestSignature, pollId=poll.id, resident=resident.address):
        poll_book.recordIssuances(poll.id, [item], sender=issuer)
    # Signed for another poll, or with a malformed signature.
    elsewhere = issuance(domain, poll.id + 1, resident, 0, register_trees[0])
    for bad in (elsewhere, (*elsewhere[:4], elsewhere[4][:64], *elsewhere[5:])):
        with reverts_with(poll_book.PollBookInvalidRequestSignature, pollId=poll.id, resident=resident.address):
            poll_book.recordIssuances(poll.id, [bad], sender=issuer)
    assert not poll_book.isIssued(poll.id, resident.address)


def test_no_more_residents_than_the_size_can_be_proven(poll_book, poll_admin, issuer, domain, poll_params, registered):
    """A tree of four residents committed with size 3: the fourth (index 3) cannot be proven,
    nor can a proof of another depth (the size fixes it) or a changed one."""
    keys = registered[0][:4]
    tree = register.RegisterTree.build([k.address for k in keys])
    params = {**poll_params, "register": [tree, *poll_params["register"][1:]]}
    receipt = poll_book.createPoll(
        params_tuple(params), [tree.root, *(t.root for t in params["register"][1:])], [3, 3, 1], sender=poll_admin
    )
    poll_id = poll_book.PollCreated.from_receipt(receipt)[0].pollId
    poll_book.recordIssuances(poll_id, [issuance(domain, poll_id, k, 0, tree) for k in keys[:3]], sender=issuer)
    with reverts_with(poll_book.PollBookNotInRegister, pollId=poll_id, stratum=0, resident=keys[3].address):
        poll_book.recordIssuances(poll_id, [issuance(domain, poll_id, keys[3], 0, tree)], sender=issuer)
    other = registered[0][4]
    small = register.RegisterTree.build([k.address for k in keys[:3]])
    for proof in (tree.proof(3)[:1], [*tree.proof(3), os.urandom(32)], [os.urandom(32), tree.proof(3)[1]]):
        item = issuance(domain, poll_id, other, 0, small, leaf_index=2, proof=proof)
        with reverts_with(poll_book.PollBookNotInRegister, pollId=poll_id, stratum=0, resident=other.address):
            poll_book.recordIssuances(poll_id, [item], sender=issuer)
    assert poll_book.issuedCount(poll_id, 0) == 3


def test_unknown_stratum_and_unknown_poll(poll_book, issuer, domain, poll, registered, register_trees):
    item = issuance(domain, poll.id, registered[0][0], 3, register_trees[0])
    with reverts_with(poll_book.PollBookUnknownStratum, pollId=poll.id, stratum=3):
        poll_book.recordIssuances(poll.id, [item], sender=issuer)
    with reverts_with(poll_book.PollBookUnknownPoll, pollId=poll.id + 1):
        poll_book.recordIssuances(poll.id + 1, [], sender=issuer)


def test_issuance_is_open_until_close(chain, poll_book, issuer, domain, poll, registered, register_trees):
    keys, tree = registered[0], register_trees[0]
    # Before the poll opens: allowed (residents may take tokens early).
    poll_book.recordIssuances(poll.id, [issuance(domain, poll.id, keys[0], 0, tree)], sender=issuer)
    # The last second before close: allowed.
    chain.pending_timestamp = poll.closes_at - 1
    receipt = poll_book.recordIssuances(poll.id, [issuance(domain, poll.id, keys[1], 0, tree)], sender=issuer)
    assert chain.blocks[receipt.block_number].timestamp == poll.closes_at - 1
    # At close: refused.
    chain.pending_timestamp = poll.closes_at
    with reverts_with(poll_book.PollBookIssuanceClosed, pollId=poll.id, closesAt=poll.closes_at):
        poll_book.recordIssuances(poll.id, [issuance(domain, poll.id, keys[2], 0, tree)], sender=issuer)
    assert poll_book.issuedCount(poll.id, 0) == 2


def test_a_poll_without_points_credits_nothing(
    poll_book, city_points, issuer, domain, create_poll, registered, register_trees
):
    poll = create_poll(points=0)
    receipt = poll_book.recordIssuances(
        poll.id, [issuance(domain, poll.id, registered[2][0], 2, register_trees[2])], sender=issuer
    )
    assert len(poll_book.IssuancesRecorded.from_receipt(receipt)) == 1
    assert list(city_points.PointsCredited.from_receipt(receipt)) == []


def test_record_issuances_needs_issuer_role(poll_book, poll, relayer, poll_admin):
    for account in (relayer, poll_admin):
        with reverts_with(
            poll_book.AccessControlUnauthorizedAccount,
            account=account.address,
            neededRole=role("ISSUER_ROLE"),
        ):
            poll_book.recordIssuances(poll.id, [], sender=account)


def test_only_the_poll_book_credits_points(poll_book, city_points, issuer, admin, poll_admin):
    """The auditor's credits to made-up addresses: no operator key can credit at all."""
    assert city_points.hasRole(role("POLL_BOOK_ROLE"), poll_book)
    for account in (issuer, admin, poll_admin):
        with reverts_with(
            city_points.AccessControlUnauthorizedAccount, account=account.address, neededRole=role("POLL_BOOK_ROLE")
        ):
            city_points.creditIssuances(1, [Key.create().address], 20, sender=account)
    assert poll_book.cityPoints() == city_points.address

"""CityPoints: credits, the catalog, charities, signed redemptions and donations."""

import os

import pytest
from contract_helpers import Key, call_reverts_with, reverts_with, role

from veche_core import typed_data

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@pytest.fixture
def resident():
    return Key.create()


@pytest.fixture
def creditor(city_points, admin, accounts):
    """An account standing in for the PollBook (whose issuance path tests/contracts/
    test_poll_book_issuance.py covers), so that CityPoints is tested on its own."""
    account = accounts[8]
    city_points.grantRole(role("POLL_BOOK_ROLE"), account, sender=admin)
    return account


@pytest.fixture
def funded(city_points, creditor, resident):
    """The resident with 30 points (20 from poll 1, 10 from poll 2)."""
    city_points.creditIssuances(1, [resident.address], 20, sender=creditor)
    city_points.creditIssuances(2, [resident.address], 10, sender=creditor)
    return resident


@pytest.fixture
def reward_id(city_points, points_admin):
    receipt = city_points.addReward(os.urandom(32), 25, 2, sender=points_admin)
    return city_points.RewardAdded.from_receipt(receipt)[0].rewardId


@pytest.fixture
def charity_id(city_points, points_admin, outsider):
    receipt = city_points.registerCharity(outsider, os.urandom(32), sender=points_admin)
    return city_points.CharityRegistered.from_receipt(receipt)[0].charityId


@pytest.fixture
def deadline(chain):
    return chain.pending_timestamp + 3600


def redemption(points_domain, resident, reward_id, nonce, deadline, signer=None):
    digest = typed_data.redemption_digest(points_domain, resident.address, reward_id, nonce, deadline)
    signature = typed_data.sign_digest((signer or resident).private_key, digest)
    return (resident.address, reward_id, nonce, deadline), signature


def donation(points_domain, resident, charity_id, amount, nonce, deadline, signer=None):
    digest = typed_data.donation_digest(points_domain, resident.address, charity_id, amount, nonce, deadline)
    signature = typed_data.sign_digest((signer or resident).private_key, digest)
    return (resident.address, charity_id, amount, nonce, deadline), signature


# --- credits ------------------------------------------------------------------------------


def test_credit_issuances_needs_the_poll_book_role_and_a_positive_amount(city_points, creditor, issuer, admin):
    residents = [Key.create().address for _ in range(3)]
    receipt = city_points.creditIssuances(7, residents, 20, sender=creditor)
    assert [(log.resident, log.pollId, log.amount) for log in city_points.PointsCredited.from_receipt(receipt)] == [
        (r, 7, 20) for r in residents
    ]
    assert [city_points.balanceOf(r) for r in residents] == [20, 20, 20]
    with reverts_with(city_points.CityPointsZeroAmount):
        city_points.creditIssuances(1, residents, 0, sender=creditor)
    for account in (issuer, admin):  # no operator key credits (PollBook is the only holder)
        with reverts_with(
            city_points.AccessControlUnauthorizedAccount, account=account.address, neededRole=role("POLL_BOOK_ROLE")
        ):
            city_points.creditIssuances(1, residents, 20, sender=account)


# --- the catalog ----------------------------------------------------------------------------


def test_add_and_update_rewards(city_points, points_admin):
    metadata = os.urandom(32)
    receipt = city_points.addReward(metadata, 100, 5, sender=points_admin)
    (log,) = city_points.RewardAdded.from_receipt(receipt)
    assert (log.rewardId, bytes(log.metadataHash), log.price, log.stock) == (1, metadata, 100, 5)
    assert city_points.rewardCount() == 1
    stored = city_points.reward(1)
    assert (bytes(stored.metadataHash), stored.price, stored.stock, stored.active) == (
        metadata,
        100,
        5,
        True,
    )

    receipt = city_points.updateReward(1, 80, 9, False, sender=points_admin)
    (log,) = city_points.RewardUpdated.from_receipt(receipt)
    assert (log.rewardId, log.price, log.stock, log.active) == (1, 80, 9, False)
    stored = city_points.reward(1)
    assert (bytes(stored.metadataHash), stored.price, stored.stock, stored.active) == (
        metadata,
        80,
        9,
        False,
    )

    second = city_points.addReward(os.urandom(32), 1, 1, sender=points_admin)
    assert city_points.RewardAdded.from_receipt(second)[0].rewardId == 2


def test_unknown_rewards(city_points, points_admin, reward_id):
    for unknown in (0, reward_id + 1):
        with reverts_with(city_points.CityPointsUnknownReward, rewardId=unknown):
            city_points.updateReward(unknown, 1, 1, True, sender=points_admin)
        call_reverts_with(city_points.reward, [unknown], city_points.CityPointsUnknownReward, rewardId=unknown)


def test_register_and_update_charities(city_points, points_admin, outsider):
    metadata = os.urandom(32)
    receipt = city_points.registerCharity(outsider, metadata, sender=points_admin)
    (log,) = city_points.CharityRegistered.from_receipt(receipt)
    assert (log.charityId, log.account, bytes(log.metadataHash)) == (1, outsider.address, metadata)
    assert city_points.charityCount() == 1
    stored = city_points.charity(1)
    assert (stored.account, bytes(stored.metadataHash), stored.active) == (
        outsider.address,
        metadata,
        True,
    )

    receipt = city_points.setCharityActive(1, False, sender=points_admin)
    (log,) = city_points.CharityUpdated.from_receipt(receipt)
    assert (log.charityId, log.active) == (1, False)
    assert city_points.charity(1).active is False
    city_points.setCharityActive(1, True, sender=points_admin)
    assert city_points.charity(1).active is True
    assert city_points.charityBalance(1) == 0


def test_charity_guards(city_points, points_admin, charity_id):
    with reverts_with(city_points.CityPointsZeroAddress):
        city_points.registerCharity(ZERO_ADDRESS, os.urandom(32), sender=points_admin)
    for unknown in (0, charity_id + 1):
        with reverts_with(city_points.CityPointsUnknownCharity, charityId=unknown):
            city_points.setCharityActive(unknown, False, sender=points_admin)
        call_reverts_with(city_points.charity, [unknown], city_points.CityPointsUnknownCharity, charityId=unknown)


def test_catalog_and_charities_need_points_admin_role(city_points, issuer, admin, reward_id, charity_id, outsider):
    calls = [
        lambda sender: city_points.addReward(os.urandom(32), 1, 1, sender=sender),
        lambda sender: city_points.updateReward(reward_id, 1, 1, True, sender=sender),
        lambda sender: city_points.registerCharity(outsider, os.urandom(32), sender=sender),
        lambda sender: city_points.setCharityActive(charity_id, False, sender=sender),
    ]
    for call in calls:
        for account in (issuer, admin):
            with reverts_with(
                city_points.AccessControlUnauthorizedAccount,
                account=account.address,
                neededRole=role("POINTS_ADMIN_ROLE"),
            ):
                call(account)


# --- redemption ---------------------------------------------------------------------------


def test_redeem_spends_points_and_stock(city_points, points_domain, outsider, funded, reward_id, deadline):
    request, signature = redemption(points_domain, funded, reward_id, 0, deadline)
    receipt = city_points.redeem(request, signature, sender=outsider)

    (log,) = city_points.RewardRedeemed.from_receipt(receipt)
    assert (log.resident, log.rewardId, log.price, log.nonce) == (funded.address, reward_id, 25, 0)
    assert city_points.balanceOf(funded.address) == 5
    assert city_points.reward(reward_id).stock == 1
    assert city_points.nonces(funded.address) == 1


def test_redeem_replay_and_nonce_order(city_points, points_domain, outsider, creditor, funded, reward_id, deadline):
    city_points.creditIssuances(3, [funded.address], 100, sender=creditor)
    request, signature = redemption(points_domain, funded, reward_id, 0, deadline)
    city_points.redeem(request, signature, sender=outsider)
    with reverts_with(city_points.InvalidAccountNonce, account=funded.address, currentNonce=1):
        city_points.redeem(request, signature, sender=outsider)

    ahead, ahead_signature = redemption(points_domain, funded, reward_id, 2, deadline)
    with reverts_with(city_points.InvalidAccountNonce, account=funded.address, currentNonce=1):
        city_points.redeem(ahead, ahead_signature, sender=outsider)
    assert city_points.balanceOf(funded.address) == 130 - 25


def test_redeem_deadline(chain, city_points, points_domain, outsider, funded, reward_id):
    deadline = chain.pending_timestamp + 60
    request, signature = redemption(points_domain, funded, reward_id, 0, deadline)
    chain.pending_timestamp = deadline + 1
    with reverts_with(city_points.CityPointsExpiredSignature, deadline=deadline):
        city_points.redeem(request, signature, sender=outsider)

    # At the deadline itself the request is still valid.
    deadline = chain.pending_timestamp + 60
    request, signature = redemption(points_domain, funded, reward_id, 0, deadline)
    chain.pending_timestamp = deadline
    city_points.redeem(request, signature, sender=outsider)
    assert city_points.nonces(funded.address) == 1


def test_redeem_needs_the_residents_signature(city_points, points_domain, outsider, funded, reward_id, deadline):
    request, forged = redemption(points_domain, funded, reward_id, 0, deadline, signer=Key.create())
    with reverts_with(city_points.CityPointsInvalidSigner, resident=funded.address):
        city_points.redeem(request, forged, sender=outsider)

    _, genuine = redemption(points_domain, funded, reward_id, 0, deadline)
    altered = (funded.address, reward_id, 0, deadline + 1)
    with reverts_with(city_points.CityPointsInvalidSigner, resident=funded.address):
        city_points.redeem(altered, genuine, sender=outsider)
    with reverts_with(city_points.CityPointsInvalidSigner, resident=funded.address):
        city_points.redeem(request, genuine[:64], sender=outsider)
    assert city_points.nonces(funded.address) == 0


def test_redeem_catalog_guards(city_points, points_domain, points_admin, outsider, funded, reward_id, deadline):
    request, signature = redemption(points_domain, funded, reward_id + 1, 0, deadline)
    with reverts_with(city_points.CityPointsUnknownReward, rewardId=reward_id + 1):
        city_points.redeem(request, signature, sender=outsider)

    city_points.updateReward(reward_id, 25, 2, False, sender=points_admin)
    request, signature = redemption(points_domain, funded, reward_id, 0, deadline)
    with reverts_with(city_points.CityPointsInactiveReward, rewardId=reward_id):
        city_points.redeem(request, signature, sender=outsider)

    city_points.updateReward(reward_id, 25, 0, True, sender=points_admin)
    with reverts_with(city_points.CityPointsOutOfStock, rewardId=reward_id):
        city_points.redeem(request, signature, sender=outsider)

    city_points.updateReward(reward_id, 31, 5, True, sender=points_admin)
    with reverts_with(city_points.CityPointsInsufficientBalance, resident=funded.address, balance=30, needed=31):
        city_points.redeem(request, signature, sender=outsider)

    city_points.updateReward(reward_id, 30, 5, True, sender=points_admin)
    city_points.redeem(request, signature, sender=outsider)
    assert city_points.balanceOf(funded.address) == 0


def test_stock_runs_out(city_points, points_domain, creditor, outsider, funded, reward_id, deadline):
    city_points.creditIssuances(3, [funded.address], 100, sender=creditor)
    for nonce in (0, 1):
        request = redemption(points_domain, funded, reward_id, nonce, deadline)
        city_points.redeem(*request, sender=outsider)
    with reverts_with(city_points.CityPointsOutOfStock, rewardId=reward_id):
        request = redemption(points_domain, funded, reward_id, 2, deadline)
        city_points.redeem(*request, sender=outsider)
    assert city_points.balanceOf(funded.address) == 130 - 50


# --- donation -----------------------------------------------------------------------------


def test_donate_moves_points_to_the_charity(city_points, points_domain, outsider, funded, charity_id, deadline):
    request, signature = donation(points_domain, funded, charity_id, 12, 0, deadline)
    receipt = city_points.donate(request, signature, sender=outsider)

    (log,) = city_points.PointsDonated.from_receipt(receipt)
    assert (log.resident, log.charityId, log.amount, log.nonce) == (
        funded.address,
        charity_id,
        12,
        0,
    )
    assert city_points.balanceOf(funded.address) == 18
    assert city_points.charityBalance(charity_id) == 12
    assert city_points.nonces(funded.address) == 1

    request = donation(points_domain, funded, charity_id, 18, 1, deadline)
    city_points.donate(*request, sender=outsider)
    assert city_points.balanceOf(funded.address) == 0
    assert city_points.charityBalance(charity_id) == 30


def test_donations_and_redemptions_share_one_nonce_sequence(
    city_points, points_domain, outsider, funded, charity_id, reward_id, deadline
):
    request = donation(points_domain, funded, charity_id, 1, 0, deadline)
    city_points.donate(*request, sender=outsider)
    with reverts_with(city_points.InvalidAccountNonce, account=funded.address, currentNonce=1):
        request = redemption(points_domain, funded, reward_id, 0, deadline)
        city_points.redeem(*request, sender=outsider)
    request = redemption(points_domain, funded, reward_id, 1, deadline)
    city_points.redeem(*request, sender=outsider)
    assert city_points.nonces(funded.address) == 2


def test_donate_guards(chain, city_points, points_domain, points_admin, outsider, funded, charity_id, deadline):
    request, signature = donation(points_domain, funded, charity_id, 5, 0, deadline)
    city_points.donate(request, signature, sender=outsider)
    with reverts_with(city_points.InvalidAccountNonce, account=funded.address, currentNonce=1):
        city_points.donate(request, signature, sender=outsider)

    with reverts_with(city_points.CityPointsInvalidSigner, resident=funded.address):
        city_points.donate(
            *donation(points_domain, funded, charity_id, 5, 1, deadline, signer=Key.create()),
            sender=outsider,
        )
    with reverts_with(city_points.CityPointsZeroAmount):
        request = donation(points_domain, funded, charity_id, 0, 1, deadline)
        city_points.donate(*request, sender=outsider)
    with reverts_with(city_points.CityPointsUnknownCharity, charityId=charity_id + 1):
        city_points.donate(*donation(points_domain, funded, charity_id + 1, 5, 1, deadline), sender=outsider)
    with reverts_with(city_points.CityPointsInsufficientBalance, resident=funded.address, balance=25, needed=26):
        request = donation(points_domain, funded, charity_id, 26, 1, deadline)
        city_points.donate(*request, sender=outsider)

    city_points.setCharityActive(charity_id, False, sender=points_admin)
    with reverts_with(city_points.CityPointsInactiveCharity, charityId=charity_id):
        request = donation(points_domain, funded, charity_id, 5, 1, deadline)
        city_points.donate(*request, sender=outsider)

    expired = chain.pending_timestamp + 10
    city_points.setCharityActive(charity_id, True, sender=points_admin)
    request, signature = donation(points_domain, funded, charity_id, 5, 1, expired)
    chain.pending_timestamp = expired + 1
    with reverts_with(city_points.CityPointsExpiredSignature, deadline=expired):
        city_points.donate(request, signature, sender=outsider)
    assert city_points.balanceOf(funded.address) == 25
    assert city_points.charityBalance(charity_id) == 5


def test_points_cannot_be_transferred(city_points):
    names = {abi.name for abi in city_points.contract_type.mutable_methods}
    assert not names & {"transfer", "transferFrom", "approve", "send", "move"}
    assert names >= {"creditIssuances", "redeem", "donate"}

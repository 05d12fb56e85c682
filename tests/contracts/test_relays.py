"""PollBook's relays: registerRelay grants RELAYER_ROLE and publishes who runs the relay and
where it takes ballots; every castBallots names its caller in BallotsRelayed."""

from contract_helpers import Key, args, reverts_with, role, sign_ballot

RELAYER_ROLE = role("RELAYER_ROLE")


def test_register_relay_grants_the_role_and_publishes_its_name_and_url(poll_book, admin, outsider):
    relay = Key.create().address
    receipt = poll_book.registerRelay(relay, "Memorial", "https://relay.memo.example", sender=admin)

    assert poll_book.hasRole(RELAYER_ROLE, relay)
    (granted,) = poll_book.RoleGranted.from_receipt(receipt)
    assert (bytes(granted.role), granted.account, granted.sender) == (RELAYER_ROLE, relay, admin.address)
    (registered,) = poll_book.RelayRegistered.from_receipt(receipt)
    assert (registered.relayer, registered.name, registered.url) == (relay, "Memorial", "https://relay.memo.example")

    # Again: a new name or URL, and no second RoleGranted.
    receipt = poll_book.registerRelay(relay, "Memorial", "https://relay2.memo.example", sender=admin)
    assert list(poll_book.RoleGranted.from_receipt(receipt)) == []
    (registered,) = poll_book.RelayRegistered.from_receipt(receipt)
    assert registered.url == "https://relay2.memo.example"


def test_only_the_relayer_roles_admin_registers_a_relay(poll_book, outsider):
    with reverts_with(poll_book.AccessControlUnauthorizedAccount, account=outsider.address, neededRole=bytes(32)):
        poll_book.registerRelay(outsider, "Me", "https://me.example", sender=outsider)
    assert not poll_book.hasRole(RELAYER_ROLE, outsider)


def test_a_relay_needs_a_key_a_name_and_a_url_within_bounds(poll_book, admin):
    relay = Key.create().address
    zero = "0x" + "00" * 20
    for relayer, name, url in (
        (zero, "City", "https://c.example"),
        (relay, "", "https://c.example"),
        (relay, "n" * 65, "https://c.example"),
        (relay, "City", ""),
        (relay, "City", "u" * 257),
    ):
        with reverts_with(
            poll_book.PollBookInvalidRelay,
            relayer=relayer,
            nameLength=len(name.encode()),
            urlLength=len(url.encode()),
        ):
            poll_book.registerRelay(relayer, name, url, sender=admin)
    assert not poll_book.hasRole(RELAYER_ROLE, relay)
    poll_book.registerRelay(relay, "Н" * 32, "u" * 256, sender=admin)  # 64 bytes of UTF-8: the bound
    assert poll_book.hasRole(RELAYER_ROLE, relay)


def test_each_cast_names_its_relay_and_a_removed_relay_cannot_cast(
    accounts, poll_book, admin, relayer, domain, open_poll
):
    partner = accounts[8]
    poll_book.registerRelay(partner, "University", "https://vote.uni.example", sender=admin)
    for sender in (relayer, partner):
        batch = [sign_ballot(domain, open_poll.id, Key.create(), 1) for _ in range(2)]
        receipt = poll_book.castBallots(open_poll.id, args(batch), sender=sender)
        (relayed,) = poll_book.BallotsRelayed.from_receipt(receipt)
        assert (relayed.pollId, relayed.relayer, relayed.accepted) == (open_poll.id, sender.address, 2)
        logs = receipt.decode_logs()
        assert [log.event_name for log in logs] == ["BallotCast", "BallotCast", "BallotsRelayed"]

    poll_book.revokeRole(RELAYER_ROLE, partner, sender=admin)
    with reverts_with(poll_book.AccessControlUnauthorizedAccount, account=partner.address, neededRole=RELAYER_ROLE):
        poll_book.castBallots(open_poll.id, args([sign_ballot(domain, open_poll.id, Key.create(), 1)]), sender=partner)

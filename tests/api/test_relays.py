"""GET /relays: the chain's relays as a client chooses among them (PollBook's registry)."""

from __future__ import annotations

from eth_account import Account
from web3 import Web3

from veche_node.contracts import Sender, bind, dev_accounts


def test_relays_lists_the_registry_with_the_citys_own_relay_marked(api):
    admin = Sender(Web3(Web3.HTTPProvider(api.chain.anvil.url)), dev_accounts(1)[0])  # the deployer: the admin role
    poll_book, _ = bind(admin.w3, api.chain.deployment)
    role = poll_book.functions.RELAYER_ROLE().call()
    partner, removed = Account.create().address, Account.create().address
    admin.transact(poll_book.functions.registerRelay(partner, "Университет", "https://vote.uni.example"))
    admin.transact(poll_book.functions.registerRelay(removed, "Old partner", "https://old.example"))
    admin.transact(poll_book.functions.revokeRole(role, removed))

    reply = api.http.get("/relays")

    assert reply.status_code == 200, reply.text
    relays = reply.json()["relays"]
    assert relays[0] == {
        "address": partner,
        "name": "Университет",
        "url": "https://vote.uni.example",
        "active": True,
        "city": False,
    }
    city = next(r for r in relays if r["city"])
    assert city["active"] and city["name"] is None and city["url"] is None  # granted at deployment, not registered
    assert relays[-1] == {
        "address": removed,
        "name": "Old partner",
        "url": "https://old.example",
        "active": False,
        "city": False,
    }

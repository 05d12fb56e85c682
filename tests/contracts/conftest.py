"""Fixtures for the contract tests: deployed contracts with their roles, accounts, polls at
each stage of their window. Helpers live in `contract_helpers`."""

from __future__ import annotations

import os

import pytest
from contract_helpers import (
    CLOSES_IN,
    OPENS_IN,
    CeremonyHandle,
    Key,
    PollHandle,
    create_args,
    register_key,
    role,
    static_key,
)

from veche_core import register, typed_data


@pytest.fixture(scope="session")
def admin(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def poll_admin(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def issuer(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def relayer(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def outsider(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def points_admin(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def trustee_accounts(accounts):
    """Trustees 0 and 1 send their shares themselves."""
    return [accounts[6], accounts[7]]


@pytest.fixture(scope="session")
def trustee_key():
    """Trustee 2 only signs; someone else relays its share."""
    return Key.create()


@pytest.fixture(scope="session")
def trustees(trustee_accounts, trustee_key):
    return [trustee_accounts[0].address, trustee_accounts[1].address, trustee_key.address]


@pytest.fixture(scope="session")
def city_points(project, admin, points_admin):
    contract = admin.deploy(project.CityPoints, admin)
    contract.grantRole(role("POINTS_ADMIN_ROLE"), points_admin, sender=admin)
    return contract


@pytest.fixture(scope="session")
def poll_book(project, admin, poll_admin, issuer, relayer, city_points):
    contract = admin.deploy(project.PollBook, admin, city_points)
    contract.grantRole(role("POLL_ADMIN_ROLE"), poll_admin, sender=admin)
    contract.grantRole(role("ISSUER_ROLE"), issuer, sender=admin)
    contract.grantRole(role("RELAYER_ROLE"), relayer, sender=admin)
    city_points.grantRole(role("POLL_BOOK_ROLE"), contract, sender=admin)
    return contract


@pytest.fixture(scope="session")
def registered():
    """The enrolled residents of each of the three strata (5, 3 and 1 of them)."""
    return [[Key.create() for _ in range(count)] for count in (5, 3, 1)]


@pytest.fixture(scope="session")
def register_trees(registered):
    return [register.RegisterTree.build([k.address for k in keys]) for keys in registered]


@pytest.fixture(scope="session")
def chain_id(chain):
    return chain.chain_id


@pytest.fixture(scope="session")
def domain(poll_book, chain_id):
    return typed_data.poll_book_domain(chain_id, poll_book.address)


@pytest.fixture(scope="session")
def points_domain(city_points, chain_id):
    return typed_data.city_points_domain(chain_id, city_points.address)


@pytest.fixture(scope="session")
def issuer_keys():
    """Three strata; random bytes stand in for encoded RSA public keys."""
    return [os.urandom(270) for _ in range(3)]


@pytest.fixture
def poll_params(chain, issuer_keys, trustees, register_trees):
    now = chain.pending_timestamp
    return {
        "metadataHash": os.urandom(32),
        "optionCount": 4,
        "maxChoices": 2,
        "opensAt": now + OPENS_IN,
        "closesAt": now + CLOSES_IN,
        "points": 20,
        "electionKey": os.urandom(32),
        "issuerKeys": issuer_keys,
        "trustees": trustees,
        "threshold": 2,
        "register": register_trees,
    }


@pytest.fixture
def create_poll(poll_book, poll_admin, poll_params):
    """Creates a poll from `poll_params` with overrides; returns a PollHandle."""

    def create(**overrides) -> PollHandle:
        params = {**poll_params, **overrides}
        receipt = poll_book.createPoll(*create_args(params), sender=poll_admin)
        (log,) = poll_book.PollCreated.from_receipt(receipt)
        return PollHandle(log.pollId, params["opensAt"], params["closesAt"], params, receipt)

    return create


@pytest.fixture
def poll(create_poll):
    return create_poll()


@pytest.fixture
def open_poll(chain, poll):
    """A poll whose window has opened."""
    chain.pending_timestamp = poll.opens_at
    chain.mine()
    return poll


@pytest.fixture
def closed_poll(chain, poll):
    """A poll whose window has closed."""
    chain.pending_timestamp = poll.closes_at
    chain.mine()
    return poll


@pytest.fixture
def create_v2_poll(poll_book, domain, outsider, create_poll):
    """Creates a v2 poll (zero election key) of `n` fresh trustees with threshold `t`, each of
    whose static key is registered first (relayed by the outsider); returns a CeremonyHandle."""

    def create(n: int = 3, t: int = 2, **overrides) -> CeremonyHandle:
        trustees = [Key.create() for _ in range(n)]
        keys = [static_key() for _ in range(n)]
        for trustee, key in zip(trustees, keys):
            register_key(poll_book, domain, trustee, key, 1, outsider)
        handle = create_poll(electionKey=bytes(32), trustees=[k.address for k in trustees], threshold=t, **overrides)
        return CeremonyHandle(handle, trustees, keys)

    return create

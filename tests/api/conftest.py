"""Fixtures for the API tests: real anvil, real contracts, a real HTTP server.

Each test module gets its own chain and API (module scope), so time travel in one module does
not disturb another. The database is SQLite, and also PostgreSQL when VECHE_TEST_DATABASE_URL
is set (the module's tables are dropped and created fresh).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pytest
from eth_account import Account

from veche_client.sdk import ResidentClient
from veche_core import sealing
from veche_testkit.devchain import ADMIN_KEY, DATABASES, TEST_DISTRICTS, ChainEnv, database_url, start_chain
from veche_testkit.servers import ThreadServer
from veche_testkit.waiting import eventually


@dataclass
class Api:
    chain: ChainEnv
    server: object
    http: httpx.Client
    admin: dict
    trustees: list  # (eth account, X25519 key pair)
    # Residents enrolled before the latest poll was created, by (district, birth year): a poll's
    # register is fixed at its creation (docs/protocol.md §3.11), so a test's residents must be
    # enrolled before it; `create_poll` tops the pool up first and `resident` takes from it.
    _pool: dict[tuple[str, int], list[ResidentClient]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def chain_now(self) -> int:
        return self.chain.now()

    def advance(self, seconds: int) -> None:
        self.chain.anvil.increase_time(seconds)

    def resident(self, district: str = "Central", birth_year: int = 1980) -> ResidentClient:
        """A resident from the pool, the longest enrolled first (so in the registers of the polls
        created since), or, with the pool empty, one enrolled now."""
        spare = self._pool.get((district, birth_year))
        return spare.pop(0) if spare else self.enrol(district, birth_year)

    def enrol(self, district: str = "Central", birth_year: int = 1980) -> ResidentClient:
        client = ResidentClient(self.http)
        reply = self.http.post(
            "/admin/residents",
            headers=self.admin,
            json={"address": client.address, "district": district, "birthYear": birth_year},
        )
        assert reply.status_code == 201, reply.text
        return client

    def create_poll(
        self,
        *,
        opens_in: int = 30,
        lasts: int = 3600,
        options=("Yes", "No", "Abstain"),
        max_choices: int = 1,
        audience: dict | None = None,
        points: int = 20,
        trustees: int = 3,
        threshold: int = 2,
        ceremony: list[str] | None = None,
    ) -> dict:
        """A poll, created through the API: v1 (a dealt key) by default here, for the tests of
        everything but the key; `ceremony`: a v2 poll (the API's default) of these trustee
        addresses (each with a registered key), which make its key in their ceremony before it opens."""
        for (district, birth_year), size in POOL.items():
            spare = self._pool.setdefault((district, birth_year), [])
            while len(spare) < size:
                client = ResidentClient(self.http)
                reply = self.http.post(
                    "/admin/residents",
                    headers=self.admin,
                    json={"address": client.address, "district": district, "birthYear": birth_year},
                )
                if reply.status_code != 201:  # a district this API is not configured with
                    break
                spare.append(client)
        now = self.chain_now()
        body = {
            "question": "Should the city build a new park?",
            "options": list(options),
            "maxChoices": max_choices,
            "audience": audience or {},
            "opensAt": now + opens_in,
            "closesAt": now + opens_in + lasts,
            "points": points,
            "trustees": [
                {"address": account.address, "publicKey": "0x" + pair.public_key.hex()}
                for account, pair in self.trustees[:trustees]
            ],
            "threshold": threshold,
            "keyCeremony": False,  # protocol v1: the API deals the key
        }
        if ceremony is not None:
            body["trustees"] = [{"address": address} for address in ceremony]
            del body["keyCeremony"]  # v2 is the default
        reply = self.http.post("/admin/polls", headers=self.admin, json=body, timeout=120)
        assert reply.status_code == 201, reply.text
        created = reply.json()
        created["poll"]["sealedShares"] = created["sealedShares"]
        return created["poll"]

    def poll_for(self, poll_id: int, resident: ResidentClient) -> dict:
        for poll in resident.polls():
            if poll["id"] == poll_id:
                return poll
        raise AssertionError(f"poll {poll_id} not listed for {resident.address}")

    def wait_ballot(self, ballot_hash: str, statuses=("confirmed",), timeout: float = 30.0) -> dict:
        return eventually(
            lambda: self.http.get(f"/ballots/{ballot_hash}").json(),
            timeout,
            until=lambda body: body.get("status") in statuses,
            what=f"ballot {ballot_hash} {statuses}",
        )


# How many spare residents `Api.create_poll` keeps enrolled, by (district, birth year): what the
# tests take after creating their polls.
POOL = {
    ("Central", 1980): 30,
    ("Northern", 1980): 6,
    ("Eastern", 1980): 6,
    ("Central", 1990): 2,
    ("Northern", 1950): 2,
    ("Northern", 1975): 2,
    ("Northern", 1976): 2,
}


def make_api(tmp_path_factory, kind: str, **settings_overrides):
    workdir = tmp_path_factory.mktemp("api")
    chain = start_chain(workdir, database_url(kind, workdir))
    settings = chain.settings(**settings_overrides)
    server = ThreadServer(settings).start()
    http = httpx.Client(base_url=server.url, timeout=60)
    trustees = [(Account.create(), sealing.generate_trustee_keypair()) for _ in range(3)]
    return Api(chain, server, http, {"X-Admin-Key": ADMIN_KEY}, trustees)


@pytest.fixture(scope="module", params=DATABASES)
def api(request, tmp_path_factory):
    env = make_api(tmp_path_factory, request.param)
    try:
        yield env
    finally:
        env.http.close()
        env.server.stop()
        env.chain.anvil.stop()


def assert_error(reply: httpx.Response, status: int, code: str) -> None:
    assert reply.status_code == status, f"{reply.status_code} {reply.text}"
    body = reply.json()
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)


__all__ = ["DATABASES", "TEST_DISTRICTS", "assert_error", "database_url"]

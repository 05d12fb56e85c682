"""Fixtures for the verifier's tests: one anvil and one deployment for the session, a poll per
test built with the real protocol cryptography (veche_testkit.city), and helpers to run the
verifier's checks or its CLI against the chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from veche_core import blind_rsa, key_shares
from veche_core.dataset import dataset_hash
from veche_core.deployment import Deployment
from veche_core.rpc import RpcClient
from veche_node.anvil import Anvil
from veche_node.contracts import Sender, contract_type
from veche_testkit.city import RESIDENTS, City, SimPoll, call_arguments
from veche_verify.chain import read_snapshot
from veche_verify.checks import PollVerdict, verify_poll

VERIFY = Path(sys.executable).with_name("veche-verify")
__all__ = ["RESIDENTS"]  # the synthetic residents (the test driver holds their identity keys)


@pytest.fixture(scope="session")
def anvil():
    with Anvil() as chain:
        yield chain


@pytest.fixture(scope="session")
def city(anvil) -> City:
    return City.deploy_on_dev_chain(anvil.url)


@pytest.fixture(scope="session")
def issuer_keys() -> list[blind_rsa.PrivateKey]:
    """Two RSA-2048 issuer keys, made once: key generation is the slow part of a poll."""
    return [blind_rsa.generate_private_key() for _ in range(2)]


def deploy_forge(city: City):
    """EventForge: emits PollBook's events (and PointsCredited) with no checks — a broken or
    malicious PollBook and CityPoints."""
    built = contract_type("EventForge")
    receipt = city.admin.send(
        city.w3.eth.contract(abi=built["abi"], bytecode=built["bytecode"])
        .constructor()
        .build_transaction({"from": city.admin.address})
    )
    return city.w3.eth.contract(address=receipt["contractAddress"], abi=built["abi"])


@pytest.fixture(scope="session")
def forge(city):
    return deploy_forge(city)


@pytest.fixture
def new_poll(city, issuer_keys):
    """Make a poll opened now, with tokens for `voters` residents split over two strata."""

    def make(voters: int = 6, **options) -> SimPoll:
        poll = city.create_poll(issuer_keys=issuer_keys, strata=2, **options)
        residents = RESIDENTS[:voters]
        city.issue_tokens(poll, [(r, i % 2) for i, r in enumerate(residents)])
        return poll

    return make


def close_and_publish(city: City, poll: SimPoll, **publish) -> None:
    city.advance_to(poll.closes_at)
    city.release_shares(poll)
    city.publish(poll, **publish)


def verify(
    city: City, poll_id: int, deployment: Deployment | None = None, dataset=None, workers: int = 1
) -> PollVerdict:
    with RpcClient(city.w3.provider.endpoint_uri) as client:
        snapshot = read_snapshot(client, deployment or city.deployment, poll_id, workers=workers)
    return verify_poll(snapshot, poll_id, dataset=dataset)


def failed(verdict: PollVerdict) -> set[int]:
    return {check.number for check in verdict.checks if not check.passed}


def run_cli(anvil_url: str, deployment: Deployment, *args: str, tmp_path: Path) -> tuple[int, dict | str]:
    """Run `veche-verify --json …` as a user would; returns the exit code and the parsed JSON."""
    path = tmp_path / "deployment.json"
    deployment.save(path)
    proc = subprocess.run(
        [str(VERIFY), "--rpc", anvil_url, "--deployment", str(path), "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        return proc.returncode, json.loads(proc.stdout)
    except json.JSONDecodeError:
        return proc.returncode, proc.stdout + proc.stderr


class Forged:
    """A poll mirrored onto EventForge, where the test may emit what PollBook would refuse.

    The forge is a deployment of its own, standing for both PollBook and CityPoints: token
    messages, ballot and request signatures name its address, so the poll's residents ask for
    their tokens again in its domain (`issue`, which also forges their credits), and
    `self.city` signs in that domain.
    """

    def __init__(self, city: City, forge, poll: SimPoll, *, issue: bool = True) -> None:
        self.forge, self.poll = forge, poll
        book = city.poll_book
        created = book.events.PollCreated().get_logs(
            from_block=city.deployment.start_block, argument_filters={"pollId": poll.poll_id}
        )[0]["args"]
        params = tuple(
            created[name]
            for name in (
                "metadataHash",
                "optionCount",
                "maxChoices",
                "opensAt",
                "closesAt",
                "points",
                "electionKey",
                "issuerKeys",
                "trustees",
                "threshold",
            )
        )
        city.admin.transact(forge.functions.createPoll(poll.poll_id, params))
        city.admin.transact(
            forge.functions.commitRegister(
                poll.poll_id, [t.root for t in poll.registers], [t.size for t in poll.registers]
            )
        )
        self.deployment = Deployment(
            city.deployment.chain_id, forge.address, forge.address, city.deployment.start_block
        )
        senders = {
            "admin": city.admin,
            "poll_admin": city.poll_admin,
            "issuer": city.issuer,
            "relayer": city.relayer,
            "points_admin": city.points_admin,
        }
        self.city = City(city.w3, self.deployment, senders, city.trustees)
        residents, poll.tokens[:], poll.issued[:] = list(poll.issued), [], []
        if issue:
            self.issue(residents)

    def issue(self, residents: list[tuple[str, int]], points: int | None = None) -> None:
        """Issue to (resident, stratum) on the forge as PollBook would (the forge takes the same
        recordIssuances call) and forge their credits (`points` each, the poll's by default)."""
        self.city.issue_tokens(self.poll, residents)
        self.credit([r for r, _ in residents], self.poll.points if points is None else points)

    def credit(self, residents: list[str], amount: int) -> None:
        if residents:
            self.city.admin.transact(self.forge.functions.creditPoints(self.poll.poll_id, residents, amount))

    def cast(self, ballots, *, relay: Sender | None = None, named: bool = True) -> None:
        """Emit the ballots as `relay` (by default the admin) posting them; `named=False`: with no
        BallotsRelayed, as a PollBook from before it."""
        cast = self.forge.functions.castBallots if named else self.forge.functions.castBallotsUnattributed
        (relay or self.city.admin).transact(
            cast(self.poll.poll_id, call_arguments(ballots)), gas=80_000 * len(ballots) + 200_000
        )

    def close_and_publish(self, exclude: frozenset[str] = frozenset()) -> None:
        """Release k shares as the trustees would and publish an honest count without `exclude`."""
        poll, city = self.poll, self.city
        city.advance_to(poll.closes_at)
        shares = []
        for index in range(poll.threshold):
            share = key_shares.open_trustee_share(poll.trustee_keys[index].secret_key, poll.sealed_shares[index])
            city.admin.transact(
                self.forge.functions.submitKeyShare(poll.poll_id, index, city.trustees[index].address, share)
            )
            shares.append(share)
        counts, rows = city.count(poll, shares, exclude=exclude, poll_book=self.forge)
        city.admin.transact(self.forge.functions.publishResult(poll.poll_id, counts, dataset_hash(rows)))

"""Gas report for Veche's contracts on a local anvil.

Deploys PollBook and CityPoints, creates a poll (with a committed register of 100,000
residents per stratum), and measures the gas of every operation the
city runs, above all `castBallots` per ballot in batches of 1, 100 and 500 realistic ballots
(fresh token keys; a 288-byte token signature and a 51-byte ciphertext each) and a revote batch;
then protocol v2's key ceremony: trustee key registration, createPoll of a v2 poll, each kind of
ceremony message and a restart, for 3 and 7 trustees (random payloads of the checked lengths).
Prints a Markdown table; `--output PATH` (or VECHE_GAS_REPORT=PATH) also writes it to a file.

    .venv/bin/ape run gas_report [--output PATH]

It moves the chain's clock past the poll's close (for key shares and the result), so run it on a
throwaway local chain (the default `ethereum:local:foundry` network starts one).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand
from eth_account import Account

from veche_core import ceremony, typed_data
from veche_core.calls import role_id
from veche_core.register import RegisterTree

TOKEN_SIGNATURE_SIZE = 288  # 32-byte prefix + RSA-2048 signature
CIPHERTEXT_SIZE = 51  # 48-byte sealed-box overhead + 3-byte plaintext
ISSUER_KEY_SIZE = 294  # DER SubjectPublicKeyInfo of an RSA-2048 key
SHARE_SIZE = 250  # a sealed SLIP-39 share
TARGET_GAS_PER_BALLOT = 60_000
BATCH_SIZES = (1, 100, 500)
REGISTER_SIZE = 100_000  # residents in each stratum's register: 17-step proofs


class Row(NamedTuple):
    # A NamedTuple, not a dataclass: `ape run` executes scripts with runpy, outside sys.modules,
    # where dataclasses cannot resolve the module's annotations.
    operation: str
    gas: int
    items: int = 1

    @property
    def per_item(self) -> int:
        return round(self.gas / self.items)


def _ballots(domain, poll_id: int, keys: list, sequence: int) -> list[tuple]:
    ballots = []
    for key in keys:
        ciphertext = os.urandom(CIPHERTEXT_SIZE)
        token_signature = os.urandom(TOKEN_SIGNATURE_SIZE)
        digest = typed_data.ballot_digest(domain, poll_id, key.address, sequence, 0, ciphertext, token_signature)
        signature = typed_data.sign_digest(bytes(key.key), digest)
        ballots.append((key.address, sequence, 0, ciphertext, token_signature, signature))
    return ballots


def _poll_params(strata: int, trustees: list[str], opens_at: int, closes_at: int) -> tuple:
    return (
        os.urandom(32),  # metadataHash
        4,  # optionCount
        1,  # maxChoices
        opens_at,
        closes_at,
        20,  # points
        os.urandom(32),  # electionKey
        [os.urandom(ISSUER_KEY_SIZE) for _ in range(strata)],
        trustees,
        3,  # threshold
    )


def measure() -> list[Row]:
    admin, poll_admin, issuer, relayer, points_admin, *others = accounts.test_accounts[:10]
    trustees = others[:5]
    rows: list[Row] = []

    city_points = admin.deploy(project.CityPoints, admin)
    poll_book = admin.deploy(project.PollBook, admin, city_points)
    poll_book.grantRole(role_id("POLL_ADMIN_ROLE"), poll_admin, sender=admin)
    poll_book.grantRole(role_id("ISSUER_ROLE"), issuer, sender=admin)
    poll_book.grantRole(role_id("RELAYER_ROLE"), relayer, sender=admin)
    city_points.grantRole(role_id("POLL_BOOK_ROLE"), poll_book, sender=admin)
    city_points.grantRole(role_id("POINTS_ADMIN_ROLE"), points_admin, sender=admin)

    # One register tree for every stratum: the 101 residents who take tokens, then made-up
    # addresses up to REGISTER_SIZE (their proofs have the length of a 100,000-resident district).
    residents = [Account.create() for _ in range(101)]
    tree = RegisterTree.build([r.address for r in residents] + [os.urandom(20) for _ in range(REGISTER_SIZE - 101)])

    now = chain.pending_timestamp
    trustee_addresses = [t.address for t in trustees]
    for strata in (1, 12):
        receipt = poll_book.createPoll(
            _poll_params(strata, trustee_addresses, now - 60, now + 86_400),
            [tree.root] * strata,
            [tree.size] * strata,
            sender=poll_admin,
        )
        label = "stratum" if strata == 1 else "strata"
        operation = f"createPoll ({strata} {label}, {ISSUER_KEY_SIZE}-byte keys, 5 trustees)"
        rows.append(Row(operation, receipt.gas_used))
    poll_id = poll_book.pollCount()
    closes_at = poll_book.poll(poll_id).closesAt

    domain = typed_data.poll_book_domain(chain.chain_id, poll_book.address)
    taken = iter(enumerate(residents))
    for count in (1, 100):
        items = []
        for _ in range(count):
            index, resident = next(taken)
            stratum, blinded_hash, deadline = index % 12, os.urandom(32), now + 3_600
            digest = typed_data.issuance_request_hash_digest(domain, poll_id, stratum, blinded_hash, deadline)
            signature = typed_data.sign_digest(bytes(resident.key), digest)
            items.append((resident.address, stratum, blinded_hash, deadline, signature, index, tree.proof(index)))
        receipt = poll_book.recordIssuances(poll_id, items, sender=issuer)
        operation = f"recordIssuances with the points credited ({count}; {len(tree.proof(0))}-step proofs)"
        rows.append(Row(operation, receipt.gas_used, count))

    revoters: list = []
    for size in BATCH_SIZES:
        keys = [Account.create() for _ in range(size)]
        receipt = poll_book.castBallots(poll_id, _ballots(domain, poll_id, keys, 1), sender=relayer)
        accepted = len(poll_book.BallotCast.from_receipt(receipt))
        if accepted != size:
            raise click.ClickException(f"only {accepted} of {size} ballots were accepted")
        rows.append(Row(f"castBallots, first ballots ({size})", receipt.gas_used, size))
        if size == 100:
            revoters = keys
    receipt = poll_book.castBallots(poll_id, _ballots(domain, poll_id, revoters, 2), sender=relayer)
    rows.append(Row(f"castBallots, revotes ({len(revoters)})", receipt.gas_used, len(revoters)))

    chain.pending_timestamp = closes_at
    chain.mine()
    for index in range(3):
        receipt = poll_book.submitKeyShare(poll_id, index, os.urandom(SHARE_SIZE), sender=trustees[index])
    rows.append(Row(f"submitKeyShare ({SHARE_SIZE} bytes)", receipt.gas_used))
    receipt = poll_book.publishResult(poll_id, [300, 200, 75, 25], os.urandom(32), sender=poll_admin)
    rows.append(Row("publishResult (4 options)", receipt.gas_used))

    receipt = city_points.addReward(os.urandom(32), 10, 1_000, sender=points_admin)
    reward_id = city_points.RewardAdded.from_receipt(receipt)[0].rewardId
    receipt = city_points.registerCharity(points_admin, os.urandom(32), sender=points_admin)
    charity_id = city_points.CharityRegistered.from_receipt(receipt)[0].charityId
    points_domain = typed_data.city_points_domain(chain.chain_id, city_points.address)
    deadline = chain.pending_timestamp + 3_600
    resident = residents[0]

    digest = typed_data.redemption_digest(points_domain, resident.address, reward_id, 0, deadline)
    receipt = city_points.redeem(
        (resident.address, reward_id, 0, deadline),
        typed_data.sign_digest(bytes(resident.key), digest),
        sender=relayer,
    )
    rows.append(Row("redeem", receipt.gas_used))

    digest = typed_data.donation_digest(points_domain, resident.address, charity_id, 10, 1, deadline)
    receipt = city_points.donate(
        (resident.address, charity_id, 10, 1, deadline),
        typed_data.sign_digest(bytes(resident.key), digest),
        sender=relayer,
    )
    rows.append(Row("donate", receipt.gas_used))
    rows += _ceremony_rows(poll_book, poll_admin, relayer, tree, domain)
    return rows


def _ceremony_rows(poll_book, poll_admin, relayer, tree: RegisterTree, domain) -> list[Row]:
    """Protocol v2: the trustee key registry and the key ceremony of a 3- and a 7-trustee poll."""
    rows: list[Row] = []

    def post(poll_id: int, attempt: int, index: int, kind: int, payload: bytes, key) -> int:
        digest = typed_data.ceremony_message_digest(domain, poll_id, attempt, index, kind, payload)
        signature = typed_data.sign_digest(bytes(key.key), digest)
        return poll_book.postCeremonyMessage(poll_id, attempt, index, kind, payload, signature, sender=relayer).gas_used

    def point() -> bytes:
        return bytes([2]) + os.urandom(32)

    for n, t in ((3, 2), (7, 4)):
        trustees = [Account.create() for _ in range(n)]
        for serial in (1, 2) if n == 3 else (1,):
            for trustee in trustees:
                key = point()
                signature = typed_data.sign_digest(
                    bytes(trustee.key), typed_data.trustee_key_digest(domain, trustee.address, key, serial)
                )
                receipt = poll_book.registerTrusteeKey(trustee.address, key, serial, signature, sender=relayer)
            if n == 3:
                label = "first key" if serial == 1 else "a rotation"
                rows.append(Row(f"registerTrusteeKey ({label})", receipt.gas_used))
        now = chain.pending_timestamp
        params = list(_poll_params(1, [a.address for a in trustees], now + 3_600, now + 86_400))
        params[6], params[9] = bytes(32), t  # a zero election key: v2
        receipt = poll_book.createPoll(tuple(params), [tree.root], [tree.size], sender=poll_admin)
        poll_id = poll_book.pollCount()
        rows.append(Row(f"createPoll v2 (1 stratum, {n} trustees, t = {t})", receipt.gas_used))

        length = ceremony.round1_length(t, n)
        gas = [post(poll_id, 1, i, ceremony.MessageKind.Round1, os.urandom(length), trustees[i]) for i in range(n)]
        rows.append(Row(f"postCeremonyMessage Round1 ({length} bytes; n = {n}, t = {t})", max(gas)))
        if n == 7:
            public = bytes([0, ceremony.ComplaintReason.MalformedRound1])
            rows.append(
                Row("postCeremonyMessage Complaint (public, 2 bytes)", post(poll_id, 1, 1, 2, public, trustees[1]))
            )
            with_evidence = bytes([0, ceremony.ComplaintReason.ShareVerification]) + os.urandom(130)
            gas_used = post(poll_id, 1, 2, ceremony.MessageKind.Complaint, with_evidence, trustees[2])
            rows.append(Row("postCeremonyMessage Complaint (with evidence, 132 bytes)", gas_used))
            receipt = poll_book.restartCeremony(poll_id, [0], sender=poll_admin)
            rows.append(Row(f"restartCeremony ({n} members, 1 excluded)", receipt.gas_used))
            members, attempt = list(range(1, n)), 2
            length = ceremony.round1_length(t, n - 1)
            for i in members:
                post(poll_id, attempt, i, ceremony.MessageKind.Round1, os.urandom(length), trustees[i])
        else:
            members, attempt = list(range(n)), 1
        key = point()
        gas = [
            post(poll_id, attempt, i, ceremony.MessageKind.Certify, key + os.urandom(65), trustees[i]) for i in members
        ]
        rows.append(Row(f"postCeremonyMessage Certify (n = {len(members)}, not the last)", max(gas[:-1])))
        rows.append(Row(f"postCeremonyMessage Certify (n = {len(members)}, the last: certifies)", gas[-1]))
    return rows


def render(rows: list[Row]) -> str:
    lines = [
        "| Operation | Gas (transaction) | Gas per item |",
        "|---|---:|---:|",
        *(f"| {r.operation} | {r.gas:,} | {r.per_item:,} |" for r in rows),
    ]
    largest = f"castBallots, first ballots ({BATCH_SIZES[-1]})"
    biggest = next(r for r in rows if r.operation == largest)
    verdict = "meets" if biggest.per_item <= TARGET_GAS_PER_BALLOT else "MISSES"
    lines += [
        "",
        f"Per-ballot gas in a batch of {BATCH_SIZES[-1]}: {biggest.per_item:,} "
        f"({verdict} the target of {TARGET_GAS_PER_BALLOT:,}); "
        f"block gas limit {chain.blocks.head.gas_limit:,}.",
        "Gas per item includes the transaction's share of the 21,000 base cost and calldata.",
    ]
    return "\n".join(lines) + "\n"


@click.command(cls=ConnectedProviderCommand)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: os.environ.get("VECHE_GAS_REPORT"),
    help="Also write the Markdown table to this file (default: $VECHE_GAS_REPORT).",
)
def cli(output: Path | None):
    """Measure the gas of Veche's contract operations and print a Markdown table."""
    table = render(measure())
    click.echo(table)
    if output:
        Path(output).write_text(table)
        click.echo(f"written to {output}")

"""A city that drives the contracts directly, with the real protocol cryptography.

Every step is the protocol's (blind tokens, sealed plaintexts, EIP-712 ballots, SLIP-39 shares),
but the city's and the residents' parts run in one process, with no API in between. Used by the
foundation demo, the verifier's tests (which need to build chain state that breaks one rule at a
time) and the benchmarks.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any

import coincurve
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from web3 import Web3

from veche_core import blind_rsa, key_shares, plaintext, sealing, token
from veche_core.ballot import Ballot
from veche_core.dataset import DatasetRow, dataset_hash
from veche_core.deployment import Deployment
from veche_core.typed_data import poll_book_domain, sign_digest

from .contracts import Operators, Sender, bind, deploy, dev_accounts


@dataclass(frozen=True)
class TokenKey:
    """A resident's one-time token key and its issuer-signed credential."""

    private_key: bytes
    address: str
    stratum: int
    credential: bytes


@dataclass
class SimPoll:
    poll_id: int
    option_count: int
    max_choices: int
    opens_at: int
    closes_at: int
    points: int
    issuer_keys: list[blind_rsa.PrivateKey]
    election_public_key: bytes
    trustee_keys: list[sealing.X25519KeyPair]
    sealed_shares: tuple[bytes, ...]
    threshold: int
    tokens: list[TokenKey] = field(default_factory=list)
    sequences: dict[str, int] = field(default_factory=dict)


def new_token_key() -> tuple[bytes, str]:
    private_key = os.urandom(32)
    public = coincurve.PrivateKey(private_key).public_key.format(compressed=False)[1:]
    return private_key, to_checksum_address(keccak(public)[-20:])


class City:
    """The contracts on one chain, and the city's and residents' keys to drive them."""

    def __init__(self, w3: Web3, deployment: Deployment, senders: dict[str, Sender], trustees: list[Sender]):
        self.w3 = w3
        self.deployment = deployment
        self.poll_book, self.city_points = bind(w3, deployment)
        self.domain = poll_book_domain(deployment.chain_id, deployment.poll_book)
        self.admin = senders["admin"]
        self.poll_admin = senders["poll_admin"]
        self.issuer = senders["issuer"]
        self.relayer = senders["relayer"]
        self.points_admin = senders["points_admin"]
        self.trustees = trustees

    @classmethod
    def deploy_on_dev_chain(cls, rpc_url: str, trustee_count: int = 3) -> "City":
        """Deploy on anvil with its funded development accounts in every role."""
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 120}))
        accounts = dev_accounts(5 + trustee_count)
        admin, poll_admin, issuer, relayer, points_admin = (Sender(w3, a) for a in accounts[:5])
        operators = Operators(admin.address, poll_admin.address, issuer.address, relayer.address, points_admin.address)
        deployment = deploy(w3, admin, operators)
        senders = {"admin": admin, "poll_admin": poll_admin, "issuer": issuer, "relayer": relayer, "points_admin": points_admin}
        return cls(w3, deployment, senders, [Sender(w3, a) for a in accounts[5:]])

    # --- the chain's clock -----------------------------------------------------------------

    def now(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]

    def advance_to(self, timestamp: int) -> None:
        """anvil only: mine a block at `timestamp` (or the next second if it is past)."""
        target = max(timestamp, self.now() + 1)
        self.w3.provider.make_request("evm_setNextBlockTimestamp", [target])
        self.w3.provider.make_request("evm_mine", [])

    # --- poll administration ---------------------------------------------------------------

    def create_poll(
        self,
        *,
        option_count: int = 3,
        max_choices: int = 1,
        strata: int = 2,
        opens_in: int = 0,
        duration: int = 3600,
        points: int = 20,
        threshold: int = 2,
        trustee_count: int | None = None,
        issuer_keys: list[blind_rsa.PrivateKey] | None = None,
        raw_issuer_keys: list[bytes] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> SimPoll:
        trustee_count = trustee_count or len(self.trustees)
        trustee_keys = [sealing.generate_trustee_keypair() for _ in range(trustee_count)]
        dealing = key_shares.deal(threshold, [k.public_key for k in trustee_keys])
        issuer_keys = issuer_keys or [blind_rsa.generate_private_key() for _ in range(strata)]
        opens_at = self.now() + opens_in
        closes_at = opens_at + duration
        metadata = metadata or {"question": "?", "options": [f"option {i}" for i in range(option_count)]}
        params = (
            keccak(json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode()),
            option_count,
            max_choices,
            opens_at,
            closes_at,
            points,
            dealing.election_public_key,
            raw_issuer_keys or [k.public_key.encode() for k in issuer_keys],
            [t.address for t in self.trustees[:trustee_count]],
            threshold,
        )
        receipt = self.poll_admin.transact(self.poll_book.functions.createPoll(params))
        poll_id = self.poll_book.events.PollCreated().process_receipt(receipt)[0]["args"]["pollId"]
        return SimPoll(
            poll_id, option_count, max_choices, opens_at, closes_at, points, issuer_keys,
            dealing.election_public_key, trustee_keys, dealing.sealed_shares, threshold,
        )

    # --- issuance ----------------------------------------------------------------------------

    def issue_tokens(self, poll: SimPoll, residents: list[tuple[str, int]]) -> list[TokenKey]:
        """For each (resident address, stratum): the blind protocol, the record, the points."""
        issued = [self.mint_token(poll, stratum) for _, stratum in residents]
        self.record_issuances(poll, [(keccak(f"{poll.poll_id}:{r}".encode()), s) for r, s in residents])
        self.credit(poll, [r for r, _ in residents], poll.points)
        poll.tokens.extend(issued)
        return issued

    def mint_token(
        self, poll: SimPoll, stratum: int, issuer: blind_rsa.PrivateKey | None = None
    ) -> TokenKey:
        """A fresh token key, blindly signed by the stratum's issuer key (or by `issuer`),
        with no issuance recorded on chain."""
        issuer = issuer or poll.issuer_keys[stratum]
        private_key, address = new_token_key()
        request = token.request_token(
            issuer.public_key, self.deployment.chain_id, self.deployment.poll_book, poll.poll_id, stratum, address
        )
        blind_signature = blind_rsa.blind_sign(issuer, request.blinded_msg)
        return TokenKey(private_key, address, stratum, token.finish_token(issuer.public_key, request, blind_signature))

    def record_issuances(self, poll: SimPoll, records: list[tuple[bytes, int]]) -> None:
        for start in range(0, len(records), 500):
            part = records[start : start + 500]
            self.issuer.transact(
                self.poll_book.functions.recordIssuances(poll.poll_id, [p for p, _ in part], [s for _, s in part])
            )

    def credit(self, poll: SimPoll, residents: list[str], amount: int) -> None:
        for start in range(0, len(residents), 500):
            self.issuer.transact(
                self.city_points.functions.credit(poll.poll_id, residents[start : start + 500], amount)
            )

    # --- ballots -------------------------------------------------------------------------------

    def ballot(
        self,
        poll: SimPoll,
        key: TokenKey,
        choices: list[int] | None = None,
        *,
        sequence: int | None = None,
        plaintext_bytes: bytes | None = None,
        credential: bytes | None = None,
        stratum: int | None = None,
        signer: bytes | None = None,
    ) -> Ballot:
        """A signed ballot; the keyword arguments exist to build ballots that break one rule."""
        if sequence is None:
            sequence = poll.sequences.get(key.address, 0) + 1
        poll.sequences[key.address] = max(sequence, poll.sequences.get(key.address, 0))
        if plaintext_bytes is None:
            plaintext_bytes = plaintext.encode_choice(choices or [0], poll.option_count, poll.max_choices)
        unsigned = Ballot(
            poll.poll_id,
            key.address,
            sequence,
            key.stratum if stratum is None else stratum,
            sealing.seal_ballot(poll.election_public_key, plaintext_bytes),
            key.credential if credential is None else credential,
        )
        if signer is None:
            return unsigned.sign(key.private_key, self.domain)
        # Signed by another key: a ballot the chain must reject.
        return replace(unsigned, signature=sign_digest(signer, unsigned.digest(self.domain)))

    def cast(self, poll: SimPoll, ballots: list[Ballot], batch: int = 500) -> list[dict]:
        receipts = []
        for start in range(0, len(ballots), batch):
            part = ballots[start : start + batch]
            call = self.poll_book.functions.castBallots(poll.poll_id, call_arguments(part))
            receipts.append(self.relayer.transact(call, gas=60_000 * len(part) + 200_000))
        return receipts

    # --- close, release, publish -----------------------------------------------------------------

    def release_shares(self, poll: SimPoll, indices: list[int] | None = None) -> None:
        for index in indices if indices is not None else range(poll.threshold):
            share = key_shares.open_trustee_share(poll.trustee_keys[index].secret_key, poll.sealed_shares[index])
            self.post_share(poll, index, share)

    def post_share(self, poll: SimPoll, index: int, share: bytes) -> None:
        self.trustees[index].transact(self.poll_book.functions.submitKeyShare(poll.poll_id, index, share))

    def count(
        self, poll: SimPoll, shares: list[bytes], *, exclude: frozenset[str] = frozenset(), poll_book=None
    ) -> tuple[list[int], list[DatasetRow]]:
        """The city's count: the latest ballot of each token, decrypted and tallied.

        An implementation apart from the verifier's (web3 logs, no signature checks); `exclude`
        names tokens whose ballots an honest count leaves out (e.g. a forged token signature).
        """
        secret = key_shares.combine_shares(shares, poll.election_public_key, poll.threshold)
        opener = sealing.Opener(secret)
        logs = (poll_book or self.poll_book).events.BallotCast().get_logs(
            from_block=self.deployment.start_block, argument_filters={"pollId": poll.poll_id}
        )
        latest: dict[str, Any] = {}
        for log in logs:
            if log["args"]["token"] not in exclude:
                latest[log["args"]["token"]] = log
        counts = [0] * poll.option_count
        rows = []
        for token_address, log in latest.items():
            args = log["args"]
            try:
                choice = plaintext.decode_choice(opener.open(args["ciphertext"]), poll.option_count, poll.max_choices)
            except Exception:  # noqa: BLE001 - an invalid ballot is listed by the verifier, not counted
                continue
            for option in choice:
                counts[option] += 1
            rows.append(DatasetRow(token_address.lower(), args["stratum"], choice, log["blockNumber"]))
        return counts, rows

    def published_shares(self, poll: SimPoll) -> list[bytes]:
        shares = (self.poll_book.functions.keyShare(poll.poll_id, i).call() for i in range(len(poll.trustee_keys)))
        return [share for share in shares if share]

    def publish(
        self,
        poll: SimPoll,
        counts: list[int] | None = None,
        data_hash: bytes | None = None,
        exclude: frozenset[str] = frozenset(),
    ) -> tuple[list[int], list[DatasetRow]]:
        """Count (leaving out `exclude`) and publish; `counts`/`data_hash` override, to lie."""
        recomputed, rows = self.count(poll, self.published_shares(poll), exclude=exclude)
        self.poll_admin.transact(
            self.poll_book.functions.publishResult(
                poll.poll_id, counts if counts is not None else recomputed, data_hash or dataset_hash(rows)
            )
        )
        return recomputed, rows


def call_arguments(ballots: list[Ballot]) -> list[tuple]:
    """Ballots as PollBook.castBallots takes them (its `Ballot` struct)."""
    return [(b.token_address, b.sequence, b.stratum, b.ciphertext, b.token_credential, b.signature) for b in ballots]

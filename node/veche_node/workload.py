"""A synthetic poll driven straight through the contracts: for tests, benchmarks and smoke checks.

It plays every party with the protocol core (veche_core) exactly as the real ones do — the poll
administrator (election key split among trustees, one RSA issuer key), the issuer (blind RSA
token signatures, issuances recorded on chain), residents (token keys, sealed choices, EIP-712
signed ballots), the relayer (castBallots batches), trustees (shares released after close) and
the administrator again (result and dataset hash) — so that a verifier can recount the poll.

`random_ballots` is the benchmark's shortcut: properly signed ballots whose token credentials are
random bytes of the real size (the contract does not check them; a verifier would reject them).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from veche_core import blind_rsa, dataset, key_shares, plaintext, sealing, token, typed_data
from veche_core.ballot import Ballot
from veche_core.deployment import Deployment

from .contracts import Sender, bind

# Ballots per castBallots transaction. geth's transaction pool refuses transactions larger than
# 128 KiB (txMaxSize, not configurable in 1.13), and one ballot takes about 800 bytes of
# calldata, so a geth network takes at most ~160 per batch; anvil takes 500.
GETH_BATCH = 150
ANVIL_BATCH = 500


@dataclass(frozen=True)
class Trustee:
    key: LocalAccount
    share: bytes  # the decrypted share; a real trustee keeps it sealed until close


@dataclass(frozen=True)
class BallotToken:
    """A resident's one-time token key and its unblinded credential."""

    private_key: bytes
    address: str
    stratum: int
    credential: bytes


@dataclass
class SyntheticPoll:
    poll_id: int
    domain: typed_data.Domain
    option_count: int
    max_choices: int
    opens_at: int
    closes_at: int
    election_public_key: bytes
    issuer_key: blind_rsa.PrivateKey
    trustees: list[Trustee]
    threshold: int
    points: int
    cast: list[dict[str, Any]] = field(default_factory=list)  # receipts of castBallots


class PollDriver:
    """Runs synthetic polls on one deployment through one node's RPC."""

    def __init__(
        self,
        w3: Web3,
        deployment: Deployment,
        *,
        poll_admin: LocalAccount,
        issuer: LocalAccount,
        relayer: LocalAccount,
    ) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.poll_book, self.city_points = bind(w3, deployment)
        self.poll_admin = Sender(w3, poll_admin)
        self.issuer = Sender(w3, issuer)
        self.relayer = Sender(w3, relayer)

    # --- the poll administrator -----------------------------------------------------------
    def create_poll(
        self,
        *,
        duration: int,
        option_count: int = 3,
        max_choices: int = 1,
        trustees: int = 3,
        threshold: int = 2,
        points: int = 20,
        issuer_key: blind_rsa.PrivateKey | None = None,
    ) -> SyntheticPoll:
        """A poll open from the current block until `duration` seconds from now."""
        issuer_key = issuer_key or blind_rsa.generate_private_key()
        election = sealing.generate_keypair()
        shares = key_shares.split_secret(election.secret_key, threshold, trustees)
        trustee_list = [Trustee(Account.create(), share) for share in shares]
        now = self.w3.eth.get_block("latest")["timestamp"]
        opens_at, closes_at = now, int(time.time()) + duration
        params = (
            os.urandom(32),
            option_count,
            max_choices,
            opens_at,
            closes_at,
            points,
            election.public_key,
            [issuer_key.public_key.encode()],
            [t.key.address for t in trustee_list],
            threshold,
        )
        receipt = self.poll_admin.transact(self.poll_book.functions.createPoll(params))
        (created,) = self.poll_book.events.PollCreated().process_receipt(receipt)
        poll_id = created["args"]["pollId"]
        return SyntheticPoll(
            poll_id=poll_id,
            domain=typed_data.poll_book_domain(self.deployment.chain_id, self.deployment.poll_book),
            option_count=option_count,
            max_choices=max_choices,
            opens_at=opens_at,
            closes_at=closes_at,
            election_public_key=election.public_key,
            issuer_key=issuer_key,
            trustees=trustee_list,
            threshold=threshold,
            points=points,
        )

    # --- the issuer and residents ---------------------------------------------------------
    def issue_tokens(self, poll: SyntheticPoll, count: int, stratum: int = 0) -> list[BallotToken]:
        """`count` residents each get a blind-signed token; issuances and points go on chain."""
        public = poll.issuer_key.public_key
        tokens = []
        for _ in range(count):
            key = Account.create()
            request = token.request_token(
                public, self.deployment.chain_id, self.deployment.poll_book, poll.poll_id,
                stratum, key.address,
            )  # fmt: skip
            blind_sig = blind_rsa.blind_sign(poll.issuer_key, request.blinded_msg)
            credential = token.finish_token(public, request, blind_sig)
            tokens.append(BallotToken(bytes(key.key), key.address, stratum, credential))
        # Each resident's pseudonymous issuance record and points, as the API records them.
        pseudonyms = [os.urandom(32) for _ in tokens]
        residents = [Account.create().address for _ in tokens]
        for start in range(0, count, 200):
            end = min(start + 200, count)
            self.issuer.transact(
                self.poll_book.functions.recordIssuances(
                    poll.poll_id, pseudonyms[start:end], [stratum] * (end - start)
                )
            )
            self.issuer.transact(
                self.city_points.functions.credit(poll.poll_id, residents[start:end], poll.points)
            )
        return tokens

    def ballot(
        self, poll: SyntheticPoll, ballot_token: BallotToken, choices: Iterable[int], sequence: int = 1
    ) -> Ballot:
        choice = plaintext.encode_choice(choices, poll.option_count, poll.max_choices)
        unsigned = Ballot(
            poll_id=poll.poll_id,
            token=ballot_token.address,
            sequence=sequence,
            stratum=ballot_token.stratum,
            ciphertext=sealing.seal_ballot(poll.election_public_key, choice),
            token_credential=ballot_token.credential,
        )
        return unsigned.sign(ballot_token.private_key, poll.domain)

    def random_ballots(self, poll: SyntheticPoll, count: int) -> list[Ballot]:
        """Signed ballots with real-sized random credentials (benchmarks only)."""
        public = poll.issuer_key.public_key
        credential_size = token.credential_length(public)
        choice = plaintext.encode_choice([0], poll.option_count, poll.max_choices)
        ballots = []
        for _ in range(count):
            key = Account.create()
            fake = BallotToken(bytes(key.key), key.address, 0, os.urandom(credential_size))
            unsigned = Ballot(
                poll.poll_id, fake.address, 1, 0,
                sealing.seal_ballot(poll.election_public_key, choice), fake.credential,
            )  # fmt: skip
            ballots.append(unsigned.sign(fake.private_key, poll.domain))
        return ballots

    # --- the relayer ----------------------------------------------------------------------
    @staticmethod
    def ballot_arg(ballot: Ballot) -> tuple:
        return (
            ballot.token_address, ballot.sequence, ballot.stratum, ballot.ciphertext,
            ballot.token_credential, ballot.signature,
        )  # fmt: skip

    def cast_function(self, poll: SyntheticPoll, ballots: Sequence[Ballot]):
        return self.poll_book.functions.castBallots(
            poll.poll_id, [self.ballot_arg(b) for b in ballots]
        )

    def send_cast(self, poll: SyntheticPoll, ballots: Sequence[Ballot], *, gas: int, wait: bool = False):
        """Send one castBallots batch with a fixed gas limit: no estimation round trip (web3's
        build_transaction would execute the whole batch once more to estimate it)."""
        data = self.poll_book.encode_abi(
            "castBallots", args=[poll.poll_id, [self.ballot_arg(b) for b in ballots]]
        )
        return self.relayer.send({"to": self.poll_book.address, "data": data}, gas=gas, wait=wait)

    def cast(self, poll: SyntheticPoll, ballots: Sequence[Ballot], *, batch: int = GETH_BATCH):
        """Relay ballots in batches and wait for each; returns the receipts."""
        receipts = []
        for start in range(0, len(ballots), batch):
            receipts.append(self.relayer.transact(self.cast_function(poll, ballots[start : start + batch])))
        poll.cast.extend(receipts)
        return receipts

    # --- after close ----------------------------------------------------------------------
    def wait_closed(self, poll: SyntheticPoll, timeout: float = 120.0) -> None:
        """Wait until a block at or past the poll's close time exists."""
        deadline = time.monotonic() + timeout
        while self.w3.eth.get_block("latest")["timestamp"] < poll.closes_at:
            if time.monotonic() > deadline:
                raise TimeoutError(f"poll {poll.poll_id} did not close within {timeout} s")
            time.sleep(0.5)

    def release_shares(self, poll: SyntheticPoll, count: int | None = None) -> None:
        """Trustees sign their shares; the poll administrator relays them (submitKeyShareFor)."""
        for index, trustee in enumerate(poll.trustees[: count or poll.threshold]):
            digest = typed_data.key_share_digest(poll.domain, poll.poll_id, index, trustee.share)
            signature = typed_data.sign_digest(bytes(trustee.key.key), digest)
            self.poll_admin.transact(
                self.poll_book.functions.submitKeyShareFor(poll.poll_id, index, trustee.share, signature)
            )

    def counted_ballots(self, poll: SyntheticPoll, from_block: int | None = None) -> dict[str, dict]:
        """The last ballot per token, as the chain holds them (BallotCast logs)."""
        logs = self.poll_book.events.BallotCast().get_logs(
            from_block=from_block or self.deployment.start_block,
            argument_filters={"pollId": poll.poll_id},
        )
        last: dict[str, dict] = {}
        for log in logs:
            args = log["args"]
            if args["token"] not in last or args["sequence"] > last[args["token"]]["sequence"]:
                last[args["token"]] = {**args, "blockNumber": log["blockNumber"]}
        return last

    def publish_result(self, poll: SyntheticPoll) -> tuple[list[int], bytes]:
        """Rebuild the election key from the released shares, count, publish counts and dataset."""
        shares = [t.share for t in poll.trustees[: poll.threshold]]
        secret = key_shares.combine_shares(shares, poll.election_public_key, poll.threshold)
        counts: Counter[int] = Counter()
        rows = []
        for address, cast in self.counted_ballots(poll).items():
            choice = plaintext.decode_choice(
                sealing.open_ballot(secret, cast["ciphertext"]), poll.option_count, poll.max_choices
            )
            counts.update(choice)
            rows.append(dataset.DatasetRow(address.lower(), cast["stratum"], tuple(choice), cast["blockNumber"]))
        tally = [counts[i] for i in range(poll.option_count)]
        digest = dataset.dataset_hash(rows)
        self.poll_admin.transact(self.poll_book.functions.publishResult(poll.poll_id, tally, digest))
        return tally, digest

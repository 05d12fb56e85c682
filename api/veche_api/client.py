"""A resident's side of the protocol over HTTP (used by the tests and the benchmark): identity
key, token request (blind, sign, unblind), sealed and signed ballots, points requests.

It uses only the protocol core for the bytes, like any other client would.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from veche_core import blind_rsa, plaintext, sealing
from veche_core import token as token_mod
from veche_core.ballot import Ballot
from veche_core.typed_data import (
    donation_digest, issuance_request_digest, poll_book_domain, redemption_digest, sign_digest,
    city_points_domain,
)


def hexs(data: bytes) -> str:
    return "0x" + bytes(data).hex()


@dataclass
class Token:
    poll: dict[str, Any]
    stratum: int
    account: LocalAccount
    credential: bytes
    sequence: int = 0


def ballot_body(ballot: Ballot, **extra) -> dict[str, Any]:
    return {
        "pollId": ballot.poll_id, "token": ballot.token_address, "sequence": ballot.sequence,
        "stratum": ballot.stratum, "ciphertext": hexs(ballot.ciphertext),
        "tokenSignature": hexs(ballot.token_credential), "signature": hexs(ballot.signature), **extra,
    }


class ResidentClient:
    def __init__(self, http: httpx.Client, identity: LocalAccount | None = None) -> None:
        self.http = http
        self.identity = identity or Account.create()
        self.address = self.identity.address

    # --- tokens -------------------------------------------------------------------------------

    def token_request(self, poll: dict, stratum: int, *, deadline: int | None = None, token_account=None):
        """(request body, pending TokenRequest, token account) — not sent yet."""
        key = blind_rsa.PublicKey.decode(bytes.fromhex(poll["issuerKeys"][stratum][2:]))
        token_account = token_account or Account.create()
        pending = token_mod.request_token(
            key, poll["chainId"], poll["pollBook"], poll["id"], stratum, token_account.address
        )
        deadline = deadline if deadline is not None else int(time.time()) + 600
        domain = poll_book_domain(poll["chainId"], poll["pollBook"])
        digest = issuance_request_digest(domain, poll["id"], stratum, pending.blinded_msg, deadline)
        body = {
            "resident": self.address, "pollId": poll["id"], "stratum": stratum,
            "blindedMessage": hexs(pending.blinded_msg), "deadline": deadline,
            "signature": hexs(sign_digest(self.identity.key, digest)),
        }
        return body, pending, token_account

    def get_token(self, poll: dict, stratum: int | None = None) -> Token:
        stratum = poll["residentStratum"] if stratum is None else stratum
        body, pending, token_account = self.token_request(poll, stratum)
        reply = self.http.post("/tokens", json=body)
        reply.raise_for_status()
        key = blind_rsa.PublicKey.decode(bytes.fromhex(poll["issuerKeys"][stratum][2:]))
        credential = token_mod.finish_token(key, pending, bytes.fromhex(reply.json()["blindSignature"][2:]))
        return Token(poll, stratum, token_account, credential)

    # --- ballots ------------------------------------------------------------------------------

    @staticmethod
    def make_ballot(token: Token, choice, *, sequence: int | None = None, domain=None, ciphertext=None,
                    credential=None, stratum=None, poll_id=None) -> Ballot:
        poll = token.poll
        if sequence is None:
            token.sequence += 1
            sequence = token.sequence
        if ciphertext is None:
            encoded = plaintext.encode_choice(choice, len(poll["options"]), poll["maxChoices"])
            ciphertext = sealing.seal_ballot(bytes.fromhex(poll["electionKey"][2:]), encoded)
        domain = domain or poll_book_domain(poll["chainId"], poll["pollBook"])
        return Ballot(
            poll_id if poll_id is not None else poll["id"], token.account.address, sequence,
            token.stratum if stratum is None else stratum, ciphertext,
            token.credential if credential is None else credential,
        ).sign(token.account.key, domain)

    def cast(self, token: Token, choice, **kw) -> httpx.Response:
        return self.http.post("/ballots", json=ballot_body(self.make_ballot(token, choice, **kw)))

    # --- points -------------------------------------------------------------------------------

    def redemption(self, chain_id: int, city_points: str, reward_id: int, nonce: int, deadline: int | None = None):
        deadline = deadline if deadline is not None else int(time.time()) + 600
        digest = redemption_digest(city_points_domain(chain_id, city_points), self.address, reward_id, nonce, deadline)
        return {"resident": self.address, "rewardId": reward_id, "nonce": nonce, "deadline": deadline,
                "signature": hexs(sign_digest(self.identity.key, digest))}

    def donation(self, chain_id: int, city_points: str, charity_id: int, amount: int, nonce: int,
                 deadline: int | None = None):
        deadline = deadline if deadline is not None else int(time.time()) + 600
        digest = donation_digest(
            city_points_domain(chain_id, city_points), self.address, charity_id, amount, nonce, deadline
        )
        return {"resident": self.address, "charityId": charity_id, "amount": amount, "nonce": nonce,
                "deadline": deadline, "signature": hexs(sign_digest(self.identity.key, digest))}


def random_secret_hex() -> str:
    return secrets.token_hex(32)

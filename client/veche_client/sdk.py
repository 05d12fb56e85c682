"""The resident's side of the protocol over the city's HTTP API: identity key, token request
(blind, sign, unblind), sealed and signed ballots, points requests, and the trustee's release.

It uses only the protocol core for the bytes, like any other client would; the `veche` CLI, the
tests and the benchmarks all go through it.
"""

from __future__ import annotations

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
    city_points_domain, donation_digest, issuance_request_digest, key_share_digest, poll_book_domain,
    redemption_digest, sign_digest,
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


class ApiError(Exception):
    """The API refused a request: `code` is stable (branch on it), `message` is for people."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def checked(reply: httpx.Response) -> Any:
    """The JSON of a successful reply; ApiError with the API's own code and sentence otherwise."""
    if reply.is_success:
        return reply.json()
    try:
        error = reply.json()["error"]
        raise ApiError(reply.status_code, error["code"], error["message"])
    except (ValueError, KeyError, TypeError):
        raise ApiError(reply.status_code, "http.error", f"the API answered {reply.status_code}") from None


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
        answer = checked(self.http.post("/tokens", json=body))
        key = blind_rsa.PublicKey.decode(bytes.fromhex(poll["issuerKeys"][stratum][2:]))
        credential = token_mod.finish_token(key, pending, bytes.fromhex(answer["blindSignature"][2:]))
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

    def submit(self, ballot: Ballot) -> dict[str, Any]:
        """POST a ballot; the API's answer (status and the relay-signed receipt), or ApiError."""
        return checked(self.http.post("/ballots", json=ballot_body(ballot)))

    def ballot_status(self, ballot_hash: str) -> dict[str, Any]:
        return checked(self.http.get(f"/ballots/{ballot_hash}"))

    # --- reading ------------------------------------------------------------------------------

    def polls(self, include_closed: bool = False) -> list[dict[str, Any]]:
        """The polls this resident may vote in (with its stratum in each)."""
        params = {"resident": self.address, "include_closed": str(include_closed).lower()}
        return checked(self.http.get("/polls", params=params))

    def deployment(self) -> dict[str, Any]:
        """The city's deployment file: chain id and contract addresses."""
        return checked(self.http.get("/deployment"))

    def poll(self, poll_id: int) -> dict[str, Any]:
        return checked(self.http.get(f"/polls/{poll_id}"))

    def points(self) -> dict[str, Any]:
        return checked(self.http.get(f"/points/{self.address}"))

    def rewards(self) -> list[dict[str, Any]]:
        return checked(self.http.get("/points/rewards"))

    def charities(self) -> list[dict[str, Any]]:
        return checked(self.http.get("/points/charities"))

    def redeem(self, chain_id: int, city_points: str, reward_id: int, deadline: int | None = None) -> dict[str, Any]:
        body = self.redemption(chain_id, city_points, reward_id, self.points()["nonce"], deadline)
        return checked(self.http.post("/points/redemptions", json=body))

    def donate(
        self, chain_id: int, city_points: str, charity_id: int, amount: int, deadline: int | None = None
    ) -> dict[str, Any]:
        body = self.donation(chain_id, city_points, charity_id, amount, self.points()["nonce"], deadline)
        return checked(self.http.post("/points/donations", json=body))

    def release_share(self, poll: dict[str, Any], index: int, share: bytes) -> dict[str, Any]:
        """As trustee `index` (this identity), have the API relay a released key share."""
        domain = poll_book_domain(poll["chainId"], poll["pollBook"])
        signature = sign_digest(self.identity.key, key_share_digest(domain, poll["id"], index, share))
        body = {"index": index, "share": hexs(share), "signature": hexs(signature)}
        return checked(self.http.post(f"/polls/{poll['id']}/key-shares", json=body))

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



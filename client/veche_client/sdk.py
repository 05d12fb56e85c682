"""The resident's side of the protocol over the city's HTTP API: identity key, token request
(blind, sign, unblind), sealed and signed ballots, points requests, and the trustee's release.

It uses only the protocol core for the bytes, like any other client would; the `veche` CLI, the
tests and the benchmarks all go through it.

Each token request and each ballot goes on a connection of its own, opened for it and closed
after: the city's API (and any proxy before it) must not be able to join a token request, which
names the resident, to the ballot that follows by the connection they came on. The resident's
address never goes in a URL (`POST /polls/eligible` carries it in the body).

A ballot goes to a relay the resident chooses, by default a random registered relay the city
does not run (`relay_order`): the city issues the tokens, so it should not also see the ballots
arrive (docs/threat-model.md). If that relay does not answer, the next is tried, the city's own
last; the same ballot carried by two relays counts once (docs/protocol.md §6, check 5).

Token requests and ballots are sent with `RetryPolicy`: when the answer does not come (a network
error, a timeout, a 5xx) the SAME bytes are sent again, and the API answers a copy with what it
stored for the first (docs/protocol.md, API: retries), so a lost answer is recovered.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from veche_core import blind_rsa, hpke, plaintext, sealing
from veche_core import token as token_mod
from veche_core.ballot import Ballot
from veche_core.errors import SealingError
from veche_core.typed_data import (
    ceremony_message_digest,
    city_points_domain,
    donation_digest,
    issuance_request_digest,
    key_share_digest,
    poll_book_domain,
    redemption_digest,
    sign_digest,
    trustee_key_digest,
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
        "pollId": ballot.poll_id,
        "token": ballot.token_address,
        "sequence": ballot.sequence,
        "stratum": ballot.stratum,
        "ciphertext": hexs(ballot.ciphertext),
        "tokenSignature": hexs(ballot.token_credential),
        "signature": hexs(ballot.signature),
        **extra,
    }


def seal_choice(poll: dict[str, Any], poll_id: int, stratum: int, token: str, encoded: bytes) -> bytes:
    """The ballot's ciphertext: v1 a sealed box to the dealt X25519 key; v2 HPKE to the
    certified joint key, with the chain, PollBook, poll, stratum and token bound in its info."""
    key = poll.get("electionKey")
    if not key:
        raise SealingError(f"poll {poll_id}'s trustees have not certified its election key yet")
    if poll.get("version", 1) == 2:
        info = hpke.ballot_info(poll["chainId"], poll["pollBook"], poll_id, stratum, token)
        return hpke.seal_ballot(bytes.fromhex(key[2:]), info, encoded)
    return sealing.seal_ballot(bytes.fromhex(key[2:]), encoded)


@dataclass(frozen=True)
class RetryPolicy:
    """How a request whose answer was lost is sent again: the same bytes, after a network error,
    a timeout or a 5xx, at most `attempts` times in all and never past `deadline` seconds from
    the first; the pause before attempt n is uniform in [0, min(max_delay, first_delay * 2^n))
    ("full jitter", so that clients cut off together do not come back together). Only for
    requests the API answers idempotently (token requests, ballots)."""

    attempts: int = 8
    deadline: float = 60.0
    first_delay: float = 0.25
    max_delay: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.deadline <= 0:
            raise ValueError("a retry policy needs at least one attempt and a positive deadline")

    def pause(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.first_delay * 2**attempt))


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


def post_retrying(http: httpx.Client, path: str, body: dict[str, Any], policy: RetryPolicy) -> httpx.Response:
    """POST `body`, serialised once, and the same bytes again while the answer is lost (see
    RetryPolicy): the last answer, or the last network error once the attempts or the deadline
    run out. Each attempt's timeout is cut to the time left."""
    content = json.dumps(body, separators=(",", ":")).encode()
    headers = {"content-type": "application/json"}
    give_up = time.monotonic() + policy.deadline
    for attempt in range(policy.attempts):
        left = give_up - time.monotonic()
        timeout = (
            http.timeout
            if http.timeout.read is not None and http.timeout.read <= left
            else httpx.Timeout(max(left, 0.01))
        )
        try:
            reply = http.post(path, content=content, headers=headers, timeout=timeout)
            if reply.status_code < 500:
                return reply
            lost: httpx.Response | httpx.TransportError = reply
        except httpx.TransportError as exc:  # connect/read/write errors and timeouts
            lost = exc
        pause = policy.pause(attempt)
        if attempt + 1 == policy.attempts or time.monotonic() + pause >= give_up:
            break
        time.sleep(pause)
    if isinstance(lost, httpx.Response):
        return lost
    raise lost


def relay_order(listed: list[dict[str, Any]], city_url: str) -> list[str]:
    """Where to send a ballot, in order: the active registered relays the city does not run, in
    a random order (a fresh one per ballot), then the city's own relay (its API)."""
    partners = [r["url"] for r in listed if r["active"] and r["url"] and not r["city"]]
    secrets.SystemRandom().shuffle(partners)
    return [*partners, city_url]


class ResidentClient:
    def __init__(
        self,
        http: httpx.Client,
        identity: LocalAccount | None = None,
        retry: RetryPolicy = RetryPolicy(),
        relay: str | None = None,
    ) -> None:
        self.http = http
        self.identity = identity or Account.create()
        self.address = self.identity.address
        self.retry = retry
        self.relay = relay  # the one relay to send ballots to; None: `relay_order`'s

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
            "resident": self.address,
            "pollId": poll["id"],
            "stratum": stratum,
            "blindedMessage": hexs(pending.blinded_msg),
            "deadline": deadline,
            "signature": hexs(sign_digest(self.identity.key, digest)),
        }
        return body, pending, token_account

    def fresh_connection(self, base_url: str | httpx.URL | None = None) -> httpx.Client:
        """A client of the same API (or of the relay at `base_url`) with no connection open yet
        (and no cookies): for the one request, its retries included, that must not share a
        connection with another."""
        return httpx.Client(base_url=base_url or self.http.base_url, timeout=self.http.timeout)

    def _post_alone(self, path: str, body: dict[str, Any]) -> httpx.Response:
        with self.fresh_connection() as http:
            return post_retrying(http, path, body, self.retry)

    def send_token_request(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /tokens with retries (the same request gets the same blind signature), on a
        connection of its own."""
        return checked(self._post_alone("/tokens", body))

    @staticmethod
    def finish_token(poll: dict, stratum: int, pending, token_account, answer: dict[str, Any]) -> Token:
        """Unblind the API's answer into the token (fails if the signature does not verify)."""
        key = blind_rsa.PublicKey.decode(bytes.fromhex(poll["issuerKeys"][stratum][2:]))
        credential = token_mod.finish_token(key, pending, bytes.fromhex(answer["blindSignature"][2:]))
        return Token(poll, stratum, token_account, credential)

    def get_token(self, poll: dict, stratum: int | None = None) -> Token:
        stratum = poll["residentStratum"] if stratum is None else stratum
        body, pending, token_account = self.token_request(poll, stratum)
        return self.finish_token(poll, stratum, pending, token_account, self.send_token_request(body))

    # --- ballots ------------------------------------------------------------------------------

    @staticmethod
    def make_ballot(
        token: Token,
        choice,
        *,
        sequence: int | None = None,
        domain=None,
        ciphertext=None,
        credential=None,
        stratum=None,
        poll_id=None,
    ) -> Ballot:
        poll = token.poll
        if sequence is None:
            token.sequence += 1
            sequence = token.sequence
        poll_id = poll_id if poll_id is not None else poll["id"]
        stratum = token.stratum if stratum is None else stratum
        if ciphertext is None:
            encoded = plaintext.encode_choice(choice, len(poll["options"]), poll["maxChoices"])
            ciphertext = seal_choice(poll, poll_id, stratum, token.account.address, encoded)
        domain = domain or poll_book_domain(poll["chainId"], poll["pollBook"])
        return Ballot(
            poll_id,
            bytes.fromhex(token.account.address[2:]),
            sequence,
            stratum,
            ciphertext,
            token.credential if credential is None else credential,
        ).sign(token.account.key, domain)

    def cast(self, token: Token, choice, **kw) -> httpx.Response:
        """Make and POST a ballot to the city's relay (with retries, on a connection of its own);
        the reply as it is."""
        return self._post_alone("/ballots", ballot_body(self.make_ballot(token, choice, **kw)))

    def relays(self) -> list[dict[str, Any]]:
        """The chain's relays (GET /relays), as the city's API reads them from PollBook."""
        return checked(self.http.get("/relays"))["relays"]

    def relay_urls(self) -> list[str]:
        """Where this resident's next ballot goes, in order of trying (see `relay_order`)."""
        if self.relay is not None:
            return [self.relay]
        return relay_order(self.relays(), str(self.http.base_url).rstrip("/"))

    def submit(self, ballot: Ballot) -> dict[str, Any]:
        """POST a ballot, with retries (the same ballot gets its stored receipt); the API's answer
        (status and the relay-signed receipt), or ApiError."""
        return self.send_ballot(ballot_body(ballot))

    def send_ballot(self, body: dict[str, Any]) -> dict[str, Any]:
        """`submit` for a ballot already in its request form (one kept from an earlier run), to
        `self.relay` or else the city's API."""
        return self.carry(body, [self.relay or str(self.http.base_url)])[0]

    def carry(self, body: dict[str, Any], relays: list[str]) -> tuple[dict[str, Any], str]:
        """A ballot in its request form to each of `relays` in turn (e.g. `relay_urls()`) until
        one acknowledges it, each with retries: (its answer, status and receipt; the relay's
        URL). A refusal (4xx) is the same at any relay and ends the tries; a relay that does not
        answer, or answers 5xx, gives way to the next, and the last one's failure is raised."""
        failure: Exception = ValueError("no relay to send the ballot to")
        for url in relays:
            with self.fresh_connection(url) as http:
                try:
                    return checked(post_retrying(http, "/ballots", body, self.retry)), url
                except ApiError as exc:
                    if exc.status < 500:
                        raise
                    failure = exc
                except httpx.TransportError as exc:
                    failure = exc
        raise failure

    def ballot_status(self, ballot_hash: str, relay: str | None = None) -> dict[str, Any]:
        """A ballot's status at the relay that took it (by default the city's), asked on a
        connection of its own (not one that carried the identity)."""
        with self.fresh_connection(relay) as http:
            return checked(http.get(f"/ballots/{ballot_hash}"))

    # --- reading ------------------------------------------------------------------------------

    def polls(self, include_closed: bool = False) -> list[dict[str, Any]]:
        """The polls this resident may vote in (with its stratum in each); the address goes in
        the body, never in a URL."""
        body = {"resident": self.address, "includeClosed": include_closed}
        return checked(self.http.post("/polls/eligible", json=body))

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

    # --- protocol v2: the trustee's key and ceremony ------------------------------------------

    def trustee_key(self, address: str | None = None) -> dict[str, Any]:
        """The static key registered on chain for `address` (default: this identity) and its serial."""
        return checked(self.http.get(f"/trustees/{address or self.address}/key"))

    def register_trustee_key(self, key: bytes, serial: int) -> dict[str, Any]:
        """Sign (TrusteeKey) and have the API relay the registration of static key `key`."""
        deployment = self.deployment()
        domain = poll_book_domain(deployment["chainId"], deployment["pollBook"])
        signature = sign_digest(self.identity.key, trustee_key_digest(domain, self.address, key, serial))
        body = {"trustee": self.address, "key": hexs(key), "serial": serial, "signature": hexs(signature)}
        return checked(self.http.post("/trustees/keys", json=body))

    def ceremony(self, poll_id: int) -> dict[str, Any]:
        """A v2 poll's key ceremony as the API reads it from the chain."""
        return checked(self.http.get(f"/polls/{poll_id}/ceremony"))

    def post_ceremony_message(
        self, poll: dict[str, Any], attempt: int, index: int, kind: int, payload: bytes
    ) -> dict[str, Any]:
        """As trustee `index` (this identity), sign a ceremony message and have the API relay it."""
        domain = poll_book_domain(poll["chainId"], poll["pollBook"])
        digest = ceremony_message_digest(domain, poll["id"], attempt, index, int(kind), payload)
        body = {
            "attempt": attempt,
            "index": index,
            "kind": int(kind),
            "payload": hexs(payload),
            "signature": hexs(sign_digest(self.identity.key, digest)),
        }
        return checked(self.http.post(f"/polls/{poll['id']}/ceremony", json=body))

    # --- points -------------------------------------------------------------------------------

    def redemption(self, chain_id: int, city_points: str, reward_id: int, nonce: int, deadline: int | None = None):
        deadline = deadline if deadline is not None else int(time.time()) + 600
        digest = redemption_digest(city_points_domain(chain_id, city_points), self.address, reward_id, nonce, deadline)
        return {
            "resident": self.address,
            "rewardId": reward_id,
            "nonce": nonce,
            "deadline": deadline,
            "signature": hexs(sign_digest(self.identity.key, digest)),
        }

    def donation(
        self, chain_id: int, city_points: str, charity_id: int, amount: int, nonce: int, deadline: int | None = None
    ):
        deadline = deadline if deadline is not None else int(time.time()) + 600
        digest = donation_digest(
            city_points_domain(chain_id, city_points), self.address, charity_id, amount, nonce, deadline
        )
        return {
            "resident": self.address,
            "charityId": charity_id,
            "amount": amount,
            "nonce": nonce,
            "deadline": deadline,
            "signature": hexs(sign_digest(self.identity.key, digest)),
        }

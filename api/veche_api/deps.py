"""Typed dependencies: the app's state (settings, database, chain, keys, relay, metrics) and
admin authentication."""

from __future__ import annotations

import hmac
import json
import threading
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from sqlmodel import Session, col, select

from veche_core import blind_rsa
from veche_core.typed_data import DigestSigner

from .chain import AdminSender, Chain
from .chain_polls import read_chain_poll
from .core.config import Settings
from .core.db import Database
from .core.security import Keys
from .errors import ApiError
from .metrics import Metrics
from .models import IssuerKey, Poll
from .ratelimit import RateLimiter
from .register import Registers
from .relay import Relay
from .strata import PollStrata, Stratum
from .writer import GroupWriter


@dataclass(frozen=True)
class PollInfo:
    """What the hot paths need of a poll, decoded once (polls do not change after creation)."""

    id: int
    opens_at: int
    closes_at: int
    option_count: int
    max_choices: int
    points: int
    strata: tuple[Stratum, ...]
    issuer_keys: tuple[blind_rsa.PublicKey, ...]
    audience: dict
    ciphertext_length: int
    version: int = 1
    key_certified: bool = True  # v2: False until the ceremony certified the key (then cached)


@dataclass(kw_only=True)
class RelayState:
    """What a relay takes ballots with (routes/ballots.py, routes/health.py): `veche-relay`
    serves with this alone, the city's API with its AppState, which is one too. Polls are read
    from the chain (chain_polls.py): a relay has no copy of the city's database."""

    settings: Settings
    db: Database
    chain: Chain
    metrics: Metrics
    ballot_limit: RateLimiter
    writer: GroupWriter  # group commit of ballots (and, in the city's API, issuances)
    receipt_signer: DigestSigner  # the relayer key, for receipts
    relayer_address: str
    relay: Relay | None = None  # when this process runs the relay's worker
    _polls: dict[int, PollInfo] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def poll_info(self, poll_id: int) -> PollInfo:
        found = self._polls.get(poll_id)
        if found:
            return found
        poll = read_chain_poll(self.chain.rpc(), self.chain.deployment, poll_id)
        info = PollInfo(
            id=poll_id,
            opens_at=poll.opens_at,
            closes_at=poll.closes_at,
            option_count=poll.option_count,
            max_choices=poll.max_choices,
            points=poll.points,
            strata=(),
            issuer_keys=poll.issuer_keys,
            audience={},
            ciphertext_length=poll.ciphertext_length,
            version=poll.version,
            key_certified=poll.key_certified,
        )
        if info.key_certified:  # an uncertified key is asked of the chain again
            with self._lock:
                self._polls[poll_id] = info
        return info

    def certified_poll_info(self, poll_id: int) -> PollInfo:
        """`poll_info`, asked of the chain again while a v2 poll's key is not certified."""
        return self.poll_info(poll_id)


@dataclass(kw_only=True)
class AppState(RelayState):
    """The city's API: a relay that also enrols residents, issues tokens, creates polls and
    moves points, and knows its polls from its own database."""

    keys: Keys
    admin: AdminSender
    points_admin: AdminSender
    issuance_limit: RateLimiter
    _private: dict[tuple[int, int], blind_rsa.PrivateKey] = field(default_factory=dict)
    _key_lock: threading.Lock = field(default_factory=threading.Lock)
    registers: Registers = field(init=False)

    def __post_init__(self) -> None:
        self.registers = Registers(self.db)

    def poll_info(self, poll_id: int) -> PollInfo:
        found = self._polls.get(poll_id)
        if found:
            return found
        from veche_core import hpke, plaintext, sealing

        with self.db.session() as session:
            poll = session.get(Poll, poll_id)
            if poll is None:
                raise ApiError("poll.unknown", 404, f"no poll {poll_id}")
            keys = session.exec(
                select(IssuerKey).where(IssuerKey.poll_id == poll_id).order_by(col(IssuerKey.stratum))
            ).all()
        options = json.loads(poll.options_json)
        info = PollInfo(
            id=poll.id,
            opens_at=poll.opens_at,
            closes_at=poll.closes_at,
            option_count=len(options),
            max_choices=poll.max_choices,
            points=poll.points,
            strata=PollStrata.loads(poll.strata_json).strata,
            issuer_keys=tuple(blind_rsa.PublicKey.decode(k.public_key) for k in keys),
            audience=json.loads(poll.audience_json),
            ciphertext_length=(hpke if poll.version == 2 else sealing).sealed_length(
                plaintext.plaintext_length(len(options))
            ),
            version=poll.version,
            key_certified=poll.version != 2 or bool(poll.election_key),
        )
        if info.key_certified:  # an uncertified key is asked for again (ceremony.election_key)
            with self._lock:
                self._polls[poll_id] = info
        return info

    def certified_poll_info(self, poll_id: int) -> PollInfo:
        """`poll_info`, for a v2 poll whose key the cached info does not know to be certified:
        the chain is asked (and the key stored once certified)."""
        info = self.poll_info(poll_id)
        if info.key_certified:
            return info
        from .ceremony import election_key

        with self.db.session() as session:
            poll = session.get(Poll, poll_id)
        if poll is None or election_key(self, poll) is None:
            return info
        with self._lock:
            self._polls.pop(poll_id, None)
        return self.poll_info(poll_id)

    def issuer_private_key(self, poll_id: int, stratum: int) -> blind_rsa.PrivateKey:
        found = self._private.get((poll_id, stratum))
        if found:
            return found
        with self._key_lock:  # opening a key takes ~0.1 s: once, not once per waiting request
            found = self._private.get((poll_id, stratum))
            if found:
                return found
            return self._open_issuer_key(poll_id, stratum)

    def _open_issuer_key(self, poll_id: int, stratum: int) -> blind_rsa.PrivateKey:
        with self.db.session() as session:
            row = session.get(IssuerKey, (poll_id, stratum))
        if row is None:
            raise ApiError("issuance.unknown_stratum", 422, "the poll has no such stratum")
        key = self.keys.open_issuer_key(poll_id, stratum, row.sealed_private_key)
        with self._lock:
            self._private[(poll_id, stratum)] = key
        return key


async def get_state(request: Request) -> AppState:  # async: no thread-pool hop per request
    return request.app.state.veche


StateDep = Annotated[AppState, Depends(get_state)]


async def get_relay_state(request: Request) -> RelayState:
    return request.app.state.veche


RelayStateDep = Annotated[RelayState, Depends(get_relay_state)]  # the routes a relay serves too


def get_session(state: StateDep):
    with state.db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


# Declared as an API-key security scheme, so that the OpenAPI schema says which routes need it.
ADMIN_KEY_HEADER = APIKeyHeader(name="X-Admin-Key", auto_error=False, description="the city's admin API key")


def require_admin(state: StateDep, x_admin_key: Annotated[str | None, Depends(ADMIN_KEY_HEADER)] = None) -> None:
    expected = state.settings.admin_api_key.get_secret_value()
    if not expected or not x_admin_key or not hmac.compare_digest(x_admin_key.encode(), expected.encode()):
        raise ApiError("auth.admin_required", 401, "this endpoint needs a valid X-Admin-Key header")


AdminDep = Annotated[None, Depends(require_admin)]

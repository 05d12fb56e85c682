"""Protocol v2: a poll's key ceremony as the chain holds it, for the API as its coordinator.

The API holds no ceremony secret: it reads the ceremony's events (CeremonyStarted,
CeremonyMessagePosted, ElectionKeyCertified) and PollBook's `ceremony` view, tells each member
what it must do next, judges from public data who is at fault (with the verifier's own
`faults`, so that the administrator restarts only without trustees check 14 holds at fault), and
checks what a trustee sends before relaying it (routes/ceremony.py). The certified key is copied
into the poll's row the first time it is seen, for the listings and the ballot path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from veche_core import dkg, events
from veche_core.ceremony import MessageKind
from veche_core.events import CeremonyMessageLog, CeremonyStartLog
from veche_verify import ceremony as verifier_ceremony

from .errors import ApiError
from .models import Poll

FROZEN = "frozen: the administrator must restart"
CLOSED = "closed: the poll opened without a certified key"


@dataclass
class Message:
    """A CeremonyMessagePosted with its transaction."""

    log: CeremonyMessageLog
    transaction_hash: str


@dataclass
class Ceremony:
    """The ceremony's current attempt (the last CeremonyStarted) and everything posted in it."""

    poll_id: int
    trustees: list[str]
    threshold: int
    opens_at: int
    start: CeremonyStartLog
    started_at: int  # the timestamp of the block that began the current attempt
    messages: list[Message] = field(default_factory=list)  # of the current attempt, in chain order
    certified_key: bytes | None = None

    @property
    def round1_deadline(self) -> int:
        """From then (chain time) a member that posted no round 1 is at fault and may be excluded."""
        return verifier_ceremony.round1_deadline(self.started_at, self.opens_at)

    @property
    def attempt(self) -> int:
        return self.start.attempt

    @property
    def members(self) -> tuple[int, ...]:
        return self.start.members

    @property
    def keys(self) -> tuple[bytes, ...]:
        return self.start.keys

    def member_id(self, index: int) -> int:
        return self.members.index(index) + 1

    def first(self, index: int, kind: int) -> Message | None:
        for message in self.messages:
            if message.log.trustee_index == index and message.log.kind == kind:
                return message
        return None

    def of_kind(self, kind: int) -> list[Message]:
        return [m for m in self.messages if m.log.kind == kind]

    @property
    def round1_complete(self) -> bool:
        return all(self.first(i, MessageKind.Round1) is not None for i in self.members)

    @property
    def frozen(self) -> bool:
        return bool(self.of_kind(MessageKind.Complaint))

    def round1_payloads(self) -> list[bytes]:
        """Every member's round-1 payload in member order (round 1 complete)."""
        found = [self.first(i, MessageKind.Round1) for i in self.members]
        return [m.log.payload for m in found if m is not None]

    def context(self, chain_id: int, poll_book: bytes) -> bytes:
        return dkg.ceremony_context(chain_id, poll_book, self.poll_id, self.attempt, self.keys)

    def next_step(self, index: int, now: int) -> str:
        if self.certified_key is not None:
            return "done"
        if now >= self.opens_at:
            return CLOSED
        if self.frozen:
            return FROZEN
        if self.first(index, MessageKind.Round1) is None:
            return "round1"
        if not self.round1_complete or self.first(index, MessageKind.Certify) is not None:
            return "wait"
        return "certify"


def read(chain, poll: Poll) -> Ceremony:
    """The poll's ceremony from the chain's events; 409 `ceremony.none` for a v1 poll."""
    if poll.version != 2:
        raise ApiError("ceremony.none", 409, f"poll {poll.id} is a v1 poll: its election key was dealt at creation")
    specs = (events.CEREMONY_STARTED, events.CEREMONY_MESSAGE_POSTED, events.ELECTION_KEY_CERTIFIED)
    try:
        found = chain.logs(chain.deployment.poll_book, [[s.topic for s in specs], events.uint_topic(poll.id)])
    except Exception:
        raise ApiError("chain.unavailable", 503, "the chain node is not reachable") from None
    starts = [events.ceremony_started(e) for e in found if e.name == "CeremonyStarted"]
    if not starts:
        raise ApiError("chain.unavailable", 503, f"the chain shows no ceremony of poll {poll.id} yet")
    start = starts[-1]
    try:
        started_at = chain.rpc().block_timestamps([start.block_number])[start.block_number]
    except Exception:
        raise ApiError("chain.unavailable", 503, "the chain node is not reachable") from None
    ceremony = Ceremony(poll.id, json.loads(poll.trustees_json), poll.threshold, poll.opens_at, start, started_at)
    for event in found:
        if event.name == "CeremonyMessagePosted":
            message = events.ceremony_message_posted(event)
            if message.attempt == start.attempt:
                ceremony.messages.append(Message(message, "0x" + bytes(event.transaction_hash).hex()))
        elif event.name == "ElectionKeyCertified":
            ceremony.certified_key = events.election_key_certified(event).election_key
    return ceremony


def faults(ceremony: Ceremony, context: bytes, now: int) -> dict[int, str]:
    """Poll trustee index → why the current attempt shows it at fault at chain time `now`: the
    verifier's own judgement (`veche_verify.ceremony.faults`, what check 14 holds an exclusion
    to; a restart is mined at `now` or later, so what is at fault now still is then)."""
    late = now >= ceremony.round1_deadline
    return verifier_ceremony.faults(
        ceremony.start, context, ceremony.threshold, [m.log for m in ceremony.messages], late
    )


def judge(
    ceremony: Ceremony, context: bytes, complainer: int, complaint: dkg.Complaint, accused_round1: bytes
) -> dkg.Verdict:
    """A complaint by poll trustee `complainer` in the current attempt, decided as the verifier does."""
    return verifier_ceremony.judge_complaint(
        ceremony.start, context, ceremony.threshold, complainer, complaint, accused_round1
    )


def certified_key(chain, poll: Poll) -> bytes | None:
    """A v2 poll's certified election key from PollBook's `ceremony` view (None: not yet)."""
    try:
        _attempt, _members, certified, key = chain.poll_book.functions.ceremony(poll.id).call()
    except Exception:
        raise ApiError("chain.unavailable", 503, "the chain node is not reachable") from None
    return bytes(key) if certified else None


def election_key(state, poll: Poll) -> str | None:
    """What the poll's ballots are sealed to (hex): v1 its dealt key; v2 the certified key, from
    the poll's row or else asked of the chain and stored once certified (it never changes after).
    The row itself is left as it is (it may belong to a read-only session)."""
    if poll.version != 2 or poll.election_key:
        return poll.election_key
    key = certified_key(state.chain, poll)
    if key is None:
        return None
    store_election_key(state, poll.id, key)
    return "0x" + key.hex()


def store_election_key(state, poll_id: int, key: bytes) -> None:
    with state.db.write_session() as session:
        row = session.get(Poll, poll_id)
        if row is not None and not row.election_key:
            row.election_key = "0x" + key.hex()
            session.add(row)
            session.commit()

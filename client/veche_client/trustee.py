"""A trustee's part of a v2 poll's key ceremony (COCKTAIL-DKG over P-256, PollBook as the
broadcast channel), over the city's API — which relays, and holds no secret of the ceremony.

What a trustee keeps is its static key d_i alone: round 1's polynomial is never stored (its
message is on chain, and is all round 2 needs), and round 2 is deterministic, so after close
`release_share` recomputes x_m from the chain's round-1 messages (COCKTAIL's recovery).

`step` does what the ceremony's state says is next for this trustee, and repeats while there is
something to do (the last member to post its round 1 goes on to round 2 in the same run):
- round 1: post msg_{1|i};
- round 2, once every member's round 1 is on chain: each fault found (a malformed round 1 or a
  failing proof of possession, a share that fails AEAD, is no canonical scalar or fails the VSS
  check) becomes a complaint with its evidence; with none, the trustee certifies Y with its
  signature over the transcript.
Each step is taken only when the chain's state says it is due, so running it again posts
nothing twice.

With a node of its own (`rpc`), a trustee takes nothing of the ceremony on the API's word: the
attempt, its members and keys and every round-1 message the API shows are compared with the
chain's (`check_against_chain`), and a difference stops the trustee before it computes or posts
anything — an API that showed it other round-1 messages could otherwise lead an honest trustee
into a complaint the chain refutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from veche_core import dkg, events
from veche_core.ceremony import ComplaintReason, MessageKind
from veche_core.errors import CeremonyError, CeremonyFaultError, VecheError
from veche_core.rpc import RpcClient, RpcError

from .sdk import ApiError, ResidentClient

FROZEN_PREFIX = "frozen"
CLOSED_PREFIX = "closed"


class TrusteeError(Exception):
    """This wallet cannot take part (not a trustee, not a member, another key)."""


@dataclass
class View:
    """A poll and its ceremony's state (GET /polls/{id}/ceremony), from one trustee's seat."""

    poll: dict[str, Any]
    state: dict[str, Any]
    index: int

    @property
    def attempt(self) -> int:
        return self.state["attempt"]

    @property
    def threshold(self) -> int:
        return self.state["threshold"]

    @property
    def members(self) -> list[int]:
        return [m["index"] for m in self.state["members"]]

    @property
    def keys(self) -> list[bytes]:
        return [bytes.fromhex(m["key"][2:]) for m in self.state["members"]]

    @property
    def me(self) -> dict[str, Any]:
        return self.state["members"][self.members.index(self.index)]

    @property
    def member_id(self) -> int:
        return self.members.index(self.index) + 1

    def context(self) -> bytes:
        book = bytes.fromhex(self.poll["pollBook"][2:])
        return dkg.ceremony_context(self.poll["chainId"], book, self.poll["id"], self.attempt, self.keys)

    def round1_payloads(self) -> list[bytes]:
        """Every member's round-1 payload, in member order (round 1 complete)."""
        found: dict[int, bytes] = {}
        for message in self.state["messages"]:
            if message["kind"] == MessageKind.Round1:
                found.setdefault(message["index"], bytes.fromhex(message["payload"][2:]))
        return [found[i] for i in self.members]


def check_against_chain(seen: View, rpc_url: str) -> None:
    """TrusteeError unless the chain behind `rpc_url` (the trustee's own node) holds what the API
    showed: the poll's chain, its current attempt with the same members and static keys, and
    the same first round-1 message of each member (none shown that the chain lacks, none the
    chain has left out)."""
    topics = [[events.CEREMONY_STARTED.topic, events.CEREMONY_MESSAGE_POSTED.topic], events.uint_topic(seen.poll["id"])]
    try:
        with RpcClient(rpc_url) as rpc:
            chain_id = rpc.chain_id()
            logs = [
                events.decode_log(log) for log in rpc.iter_logs(seen.poll["pollBook"], topics, 0, rpc.block_number())
            ]
    except (RpcError, OSError, VecheError) as exc:
        raise TrusteeError(f"your node at {rpc_url} cannot be read ({exc})") from None
    if chain_id != seen.poll["chainId"]:
        raise TrusteeError(
            f"your node serves chain {chain_id}; the city's API says the poll is on chain {seen.poll['chainId']}"
        )
    starts = [events.ceremony_started(e) for e in logs if e.name == "CeremonyStarted"]
    if not starts:
        raise TrusteeError("your node shows no key ceremony for this poll; the city's API shows one")
    start = max(starts, key=lambda s: (s.block_number, s.log_index))
    shown = (seen.attempt, tuple(seen.members), tuple(seen.keys))
    if (start.attempt, tuple(start.members), tuple(start.keys)) != shown:
        raise TrusteeError(
            f"the city's API shows attempt {seen.attempt} with members {seen.members}; your node holds attempt "
            f"{start.attempt} with members {list(start.members)} (or other keys): not trusting it"
        )
    on_chain: dict[int, bytes] = {}
    for e in sorted(logs, key=lambda e: (e.block_number, e.log_index)):
        if e.name == "CeremonyMessagePosted":
            message = events.ceremony_message_posted(e)
            if message.attempt == start.attempt and message.kind == MessageKind.Round1:
                on_chain.setdefault(message.trustee_index, message.payload)
    api_shown: dict[int, bytes] = {}
    for message in seen.state["messages"]:
        if message["kind"] == MessageKind.Round1:
            api_shown.setdefault(message["index"], bytes.fromhex(message["payload"][2:]))
    if api_shown != on_chain:
        differ = sorted(i for i in set(api_shown) | set(on_chain) if api_shown.get(i) != on_chain.get(i))
        raise TrusteeError(
            f"the city's API shows other round-1 messages than your node holds (trustee(s) "
            f"{', '.join(map(str, differ))}): not trusting it"
        )


def view(client: ResidentClient, poll_id: int, static_key: dkg.StaticKey, rpc: str | None = None) -> View:
    """The ceremony from this trustee's seat; TrusteeError if it has none in the current attempt,
    or (with `rpc`, the trustee's own node) if the API shows other than the chain holds."""
    poll = client.poll(poll_id)
    if poll.get("version", 1) != 2:
        raise TrusteeError(f"poll {poll_id} is a v1 poll: its key was dealt at creation, there is no ceremony")
    if client.address not in poll["trustees"]:
        raise TrusteeError(f"{client.address} is not a trustee of poll {poll_id}")
    index = poll["trustees"].index(client.address)
    seen = View(poll, client.ceremony(poll_id), index)
    if index not in seen.members:
        raise TrusteeError(
            f"you (trustee {index}) are not a member of attempt {seen.attempt} of poll {poll_id}'s ceremony: "
            "the administrator excluded you"
        )
    if seen.keys[seen.member_id - 1] != static_key.public_key:
        raise TrusteeError(
            f"the ceremony uses the static key {seen.me['key']} for you, and your wallet holds "
            f"0x{static_key.public_key.hex()}"
        )
    if rpc is not None:
        check_against_chain(seen, rpc)
    return seen


def round1(seen: View, static_key: dkg.StaticKey) -> bytes:
    return dkg.round1(seen.context(), seen.threshold, seen.keys, seen.member_id, static_key).encode()


def round2(seen: View, static_key: dkg.StaticKey) -> dkg.KeyShare:
    """COCKTAIL round 2 over the chain's round-1 messages; CeremonyFaultError names the faults."""
    return dkg.round2(seen.context(), seen.threshold, seen.keys, seen.member_id, static_key, seen.round1_payloads())


def complaint(seen: View, static_key: dkg.StaticKey, fault: tuple[int, int]) -> tuple[int, bytes]:
    """(accused trustee index, COMPLAINT payload) for a fault round 2 found: (member id, reason),
    as CeremonyFaultError lists them (dkg's own Fault pairs)."""
    return dkg.complaint_payload(
        seen.context(), seen.threshold, seen.keys, static_key, fault, seen.round1_payloads(), seen.members
    )


def certification(seen: View, static_key: dkg.StaticKey, share: dkg.KeyShare) -> bytes:
    return dkg.certification_payload(
        seen.context(), seen.threshold, seen.keys, static_key, share, seen.round1_payloads()
    )


def release_share(seen: View, static_key: dkg.StaticKey) -> bytes:
    """After close: x_m recomputed from the certified attempt's round-1 messages, as 0x02 ‖ x_m."""
    if not seen.state["certified"]:
        raise TrusteeError(f"poll {seen.poll['id']}'s ceremony never certified a key: there is nothing to release")
    return round2(seen, static_key).release_payload()


@dataclass
class Outcome:
    """What `step` did (sentences) and the member's next step after it."""

    done: list[str] = field(default_factory=list)
    next: str = ""
    state: dict[str, Any] = field(default_factory=dict)


def step(
    client: ResidentClient, poll_id: int, static_key: dkg.StaticKey, *, max_steps: int = 3, rpc: str | None = None
) -> Outcome:
    """Do what is next for this trustee (see the module's docstring), until it must wait; with
    `rpc`, every view checked against the trustee's own node first."""
    outcome = Outcome()
    for _ in range(max_steps):
        seen = view(client, poll_id, static_key, rpc)
        outcome.state, outcome.next = seen.state, seen.me["next"]
        if outcome.next == "round1":
            client.post_ceremony_message(
                seen.poll, seen.attempt, seen.index, MessageKind.Round1, round1(seen, static_key)
            )
            outcome.done.append(f"Posted your round-1 message (attempt {seen.attempt}).")
            continue
        if outcome.next != "certify":
            return outcome
        try:
            share = round2(seen, static_key)
        except CeremonyFaultError as found:
            accused_before = set(seen.me["complainedAbout"])
            for fault in found.faults:
                accused, payload = complaint(seen, static_key, fault)
                if accused in accused_before:
                    continue
                reason = ComplaintReason(int(fault[1])).name
                try:
                    client.post_ceremony_message(seen.poll, seen.attempt, seen.index, MessageKind.Complaint, payload)
                except ApiError as exc:
                    if exc.code != "ceremony.already_posted":
                        raise
                outcome.done.append(f"Trustee {accused}'s round 1 fails for you ({reason}): posted a complaint.")
            continue
        except CeremonyError as exc:
            raise TrusteeError(f"round 2 failed: {exc}") from None
        answer = client.post_ceremony_message(
            seen.poll, seen.attempt, seen.index, MessageKind.Certify, certification(seen, static_key, share)
        )
        outcome.done.append(f"Every share to you checks out: certified the election key 0x{share.group_key.hex()}.")
        if answer.get("certified"):
            outcome.done.append("Every member has certified it: it is the poll's election key.")
    seen = view(client, poll_id, static_key, rpc)
    outcome.state, outcome.next = seen.state, seen.me["next"]
    return outcome


def waiting_for(state: dict[str, Any]) -> list[int]:
    """The members the ceremony waits for: round 1 first, then the certifications."""
    members = state["members"]
    missing = [m["index"] for m in members if not m["round1"]]
    return missing or [m["index"] for m in members if not m["certified"]]

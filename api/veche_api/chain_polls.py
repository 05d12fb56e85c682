"""A poll as a relay needs it, read from the chain alone: what `veche-relay` knows of the polls
it serves (it has no copy of the city's database), and what the city's relay falls back on for a
poll its database does not hold. The city's own copy (models.Poll) says the same for its polls."""

from __future__ import annotations

from dataclasses import dataclass

from veche_core import blind_rsa, events, hpke, plaintext, sealing
from veche_core.deployment import Deployment
from veche_core.errors import VecheError
from veche_core.rpc import RpcClient, RpcError

from .errors import ApiError


@dataclass(frozen=True)
class ChainPoll:
    """A poll's PollCreated (the parameters a ballot is checked against) and whether ballots may
    be cast: a v1 poll's key was dealt at creation, a v2 poll's once ElectionKeyCertified."""

    poll_id: int
    opens_at: int
    closes_at: int
    option_count: int
    max_choices: int
    points: int
    issuer_keys: tuple[blind_rsa.PublicKey, ...]
    version: int
    key_certified: bool

    @property
    def ciphertext_length(self) -> int:
        return (hpke if self.version == 2 else sealing).sealed_length(plaintext.plaintext_length(self.option_count))


def read_chain_poll(rpc: RpcClient, deployment: Deployment, poll_id: int) -> ChainPoll:
    """The poll from the chain's events; 404 `poll.unknown` without a PollCreated, 409
    `poll.invalid` if its issuer keys do not decode (the verifier's check 1 fails on it), 503
    `chain.unavailable` if the node does not answer."""
    topics = [[events.POLL_CREATED.topic, events.ELECTION_KEY_CERTIFIED.topic], events.uint_topic(poll_id)]
    try:
        logs = list(rpc.iter_logs(deployment.poll_book, topics, deployment.start_block, rpc.block_number()))
    except (RpcError, OSError):
        raise ApiError("chain.unavailable", 503, "the chain node is not reachable") from None
    found = []
    for log in logs:
        try:
            found.append(events.decode_log(log))
        except VecheError:  # a malformed log: the verifier's check 1 names it
            continue
    created = next((e.args for e in found if e.name == "PollCreated"), None)
    if created is None:
        raise ApiError("poll.unknown", 404, f"no poll {poll_id}")
    try:
        keys = tuple(blind_rsa.PublicKey.decode(key) for key in created["issuerKeys"])
    except VecheError:
        raise ApiError("poll.invalid", 409, f"poll {poll_id}'s issuer keys on chain do not decode") from None
    version = 1 if any(created["electionKey"]) else 2
    return ChainPoll(
        poll_id=poll_id,
        opens_at=created["opensAt"],
        closes_at=created["closesAt"],
        option_count=created["optionCount"],
        max_choices=created["maxChoices"],
        points=created["points"],
        issuer_keys=keys,
        version=version,
        key_certified=version == 1 or any(e.name == "ElectionKeyCertified" for e in found),
    )

"""A poll's election secret, rebuilt from the key shares on chain (the work of check 7).

It runs before the bulk of the ballots is read, so that the worker processes open every ballot
in the same pass that checks its signatures; check 7 reports the findings made here.

v2 (the trustees' ceremony, check 15): each released share is checked on its own against its
trustee's verification share Y_m, which the ceremony's public commitments fix; a wrong one is
named and set aside, and any t valid ones rebuild the secret, which must match the certified key.

v1: a posted share that is wrong never stops the rebuild (docs/protocol.md §3.6): it is set aside
and named (check 7 fails), and the key is rebuilt from the consistent shares that remain, so one
bad trustee can neither block the count nor hide it; the verdict is FAIL all the same.
"""

from __future__ import annotations

from veche_core import dkg, key_shares, p256
from veche_core.errors import VecheError

from .records import PollParameters, PollRecord, Rebuilt


def rebuild(poll: PollRecord) -> Rebuilt:
    created = poll.created
    if created is None:
        return Rebuilt(None, missing="the poll's parameters are missing")
    if created.version == 2:
        return _rebuild_joint_secret(poll, created)
    shares = poll.shares
    if len(shares) < created.threshold:
        return Rebuilt(None, missing=f"{len(shares)} of {created.threshold} key shares are on chain")
    failures = []
    trustees = created.trustees
    usable: list[tuple[int, bytes]] = []
    for share in shares:  # in chain order
        index = share["index"]
        if index >= len(trustees) or share["trustee"] != trustees[index]:
            failures.append(f"share {index} was not posted by trustee {index}")
            continue
        try:
            info = key_shares.share_info(share["share"])
        except VecheError as exc:
            failures.append(f"share {index} does not decode: {exc}")
            continue
        if info.index != index:
            failures.append(f"share {index} carries SLIP-39 member index {info.index}")
        elif info.group_count != 1 or info.threshold != created.threshold:
            failures.append(f"share {index} is not a single-group share with the poll's threshold {created.threshold}")
        elif any(index == kept for kept, _ in usable):
            failures.append(f"share {index} was posted again (the first one posted is used)")
        else:
            usable.append((index, share["share"]))
    if len(usable) < created.threshold:
        failures.append(f"{len(usable)} of the {len(shares)} shares on chain are usable, {created.threshold} needed")
        return Rebuilt(None, failures)
    secret = None
    try:
        secret = key_shares.combine_shares([s for _, s in usable], created.election_key, created.threshold)
    except VecheError as exc:
        failures.append(str(exc))
    else:
        for position in key_shares.disagreeing_shares([s for _, s in usable], secret):
            failures.append(f"share {usable[position][0]} does not agree with the shares that rebuild the key")
    return Rebuilt(secret, failures)


def _rebuild_joint_secret(poll: PollRecord, created: PollParameters) -> Rebuilt:
    outcome = poll.ceremony_outcome
    certified = outcome.certified if outcome is not None else None
    if certified is None:
        return Rebuilt(None, missing="the trustees' ceremony certified no election key (check 14)")
    trustees = created.trustees
    failures: list[str] = []
    released: dict[int, bytes] = {}  # member id -> the first share its trustee posted
    for share in poll.shares:  # in chain order
        index = share["index"]
        if index >= len(trustees) or share["trustee"] != trustees[index]:
            failures.append(f"share {index} was not posted by trustee {index}")
            continue
        member = certified.member_id(index)
        if member is None:
            failures.append(f"trustee {index} ({trustees[index]}) released a share but made no part of the key")
        elif member in released:
            failures.append(f"trustee {index} posted a share again (the first one posted is used)")
        else:
            released[member] = share["share"]
    try:
        check = dkg.check_release(certified.verification_shares, created.threshold, certified.group_key, released)
    except VecheError as exc:
        failures.append(f"the valid shares do not rebuild the certified key: {exc}")
        return Rebuilt(None, failures)
    for member in check.invalid:
        index = certified.members[member - 1]
        failures.append(f"trustee {index} ({trustees[index]}) released a share that does not match its commitments")
    if check.secret is None:
        return Rebuilt(
            None,
            failures,
            missing=f"{len(check.valid)} valid key shares of the {created.threshold} needed are on chain",
        )
    return Rebuilt(p256.encode_scalar(check.secret), failures)

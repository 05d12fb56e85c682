"""A poll's election secret, rebuilt from the key shares on chain (the work of check 7).

It runs before the bulk of the ballots is read, so that the worker processes open every ballot
in the same pass that checks its signatures; check 7 reports the findings made here.

A posted share that is wrong never stops the rebuild (docs/protocol.md §3.6): it is set aside
and named (check 7 fails), and the key is rebuilt from the consistent shares that remain, so one
bad trustee can neither block the count nor hide it; the verdict is FAIL all the same.
"""

from __future__ import annotations

from veche_core import key_shares
from veche_core.errors import VecheError

from .records import PollRecord, Rebuilt


def rebuild(poll: PollRecord) -> Rebuilt:
    created = poll.created
    if created is None:
        return Rebuilt(None, missing="the poll's parameters are missing")
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

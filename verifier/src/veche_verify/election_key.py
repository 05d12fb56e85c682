"""A poll's election secret, rebuilt from the key shares on chain (the work of check 7).

It runs before the bulk of the ballots is read, so that the worker processes open every ballot
in the same pass that checks its signatures; check 7 reports the findings made here.
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
    usable = []
    for share in shares:
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
            continue
        usable.append((index, share["share"]))
    secret = None
    try:
        secret = key_shares.combine_shares([s for _, s in usable], created.election_key, created.threshold)
    except VecheError as exc:
        failures.append(str(exc))
    else:
        for position in key_shares.disagreeing_shares([s for _, s in usable], secret):
            failures.append(f"share {usable[position][0]} does not agree with the shares that rebuild the key")
    return Rebuilt(secret, failures)

"""The verifier's numbered checks (docs/protocol.md §6), each returning a result, never raising.

Fail closed: a check passes only when it ran over everything it covers and found nothing wrong.
A check whose inputs are not on chain *yet* (the poll is open, the trustees have not posted their
shares, no result is published) is NOT YET: it does not pass, and it does not accuse anyone. Any
other check that cannot run (its inputs are on chain and unusable) fails and says why. A poll's
verdict is FAIL if any check fails, else NOT YET if any is not yet, else PASS; a poll of which
the chain holds nothing at all is CANNOT_VERIFY (a setup mistake, not a broken rule).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from veche_core import dkg, key_shares, plaintext
from veche_core.abi import checksum_address
from veche_core.blind_rsa import PublicKey
from veche_core.dataset import DatasetRow, dataset_hash
from veche_core.errors import VecheError
from veche_core.receipt import Receipt

from . import ceremony, election_key
from .names import Names, NamesStatus
from .records import CastBallot, ChainSnapshot, PollParameters, PollRecord

STATEMENTS = {
    1: "The poll's parameters on chain are well formed (keys decode, window, options, trustees, k ≤ n).",
    2: "Every ballot's token signature verifies under the issuer key of its stratum.",
    3: "Every ballot's EIP-712 signature recovers its token address; poll id and chain id match.",
    4: "Every ballot was included within the poll's window.",
    5: (
        "Per token, only the highest sequence counts; superseded ballots are listed, not counted. A ballot "
        "carried by several relays counts once; one relay posting a ballot twice fails."
    ),
    6: "Per stratum, counted ballots ≤ issued tokens.",
    7: "The key shares rebuild a secret key that matches the published election public key.",
    8: (
        "Every counted ballot is opened; one that does not decrypt or decode to a valid choice is spoiled "
        "(the voter's): listed, not counted."
    ),
    9: "The recomputed tally equals the published tally.",
    10: "The anonymised dataset equals the set of counted ballots, and its hash equals the one on chain.",
    11: (
        "The receipt's relayer signature is valid, the relay held the relayer role when it signed, and its "
        "ballot is on chain and counted, or superseded by a later ballot of the same token."
    ),
    12: "Point credits per poll match issued tokens × points, each to a resident who was issued a token.",
    13: (
        "Every issuance is backed by a valid request of a member of the committed register for its stratum, and "
        "no stratum's issuances exceed its register size."
    ),
    14: (
        "(v2) The trustees' key ceremony holds: every proof of possession and certification verifies, the election "
        "key is the sum of the trustees' constant commitments and was certified before the poll opened, and every "
        "trustee excluded from a later attempt was shown at fault (silence only after the attempt's round-1 "
        "deadline)."
    ),
    15: (
        "(v2) Every released key share matches its trustee's commitments (a wrong one is named), and t valid shares "
        "rebuild the secret of the certified election key."
    ),
    16: (
        "(v2) Every counted ballot is opened under its own token's context; one that does not open or decode to a "
        "valid choice is spoiled (the voter's, or copied from another ballot): listed, not counted."
    ),
}
MAX_LISTED = 50


class Verdict(StrEnum):
    """A poll's (or a command's) verdict; the JSON spells them so, and the exit code follows."""

    PASS = "PASS"  # every check ran and passed
    FAIL = "FAIL"  # a rule was broken: the data on chain (or what the city serves) is wrong
    NOT_YET = "NOT_YET"  # nothing is wrong so far, but the poll is not finished on chain
    CANNOT_VERIFY = "CANNOT_VERIFY"  # nothing could be judged: no such poll, a setup mistake


@dataclass
class CheckResult:
    number: int
    passed: bool
    detail: str
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    not_yet: bool = False  # not passed, but only because its inputs are not on chain yet

    @property
    def statement(self) -> str:
        return STATEMENTS[self.number]

    @property
    def result(self) -> Verdict:
        return Verdict.PASS if self.passed else Verdict.NOT_YET if self.not_yet else Verdict.FAIL

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "statement": self.statement,
            "result": self.result.value,
            "passed": self.passed,
            "detail": self.detail,
            "counts": self.counts,
            "failures": self.failures[:MAX_LISTED],
            "failureCount": len(self.failures),
        }


def _result(number: int, failures: list[str], ok: str, counts: dict[str, int] | None = None) -> CheckResult:
    detail = ok if not failures else f"{len(failures):,} failure(s): {failures[0]}"
    return CheckResult(number, not failures, detail, counts or {}, failures)


def _cannot_run(number: int, why: str) -> CheckResult:
    return CheckResult(number, False, f"cannot run: {why}", {}, [f"cannot run: {why}"])


def _not_yet(number: int, why: str) -> CheckResult:
    return CheckResult(number, False, f"not yet: {why}", not_yet=True)


def _waiting_for(number: int, cause: CheckResult, why: str) -> CheckResult:
    """A check that needs what `cause` (another check) lacks: not yet if that is, else it fails."""
    return _not_yet(number, why) if cause.not_yet else _cannot_run(number, why)


def _shown(token: str) -> str:
    """A token as reports show addresses (EIP-55); the checks keep them in lower case."""
    return checksum_address(bytes.fromhex(token[2:]))


@dataclass
class PollVerdict:
    poll_id: int
    checks: list[CheckResult]
    option_count: int = 0
    recomputed: list[int] | None = None
    published: list[int] | None = None
    by_stratum: dict[int, list[int]] = field(default_factory=dict)
    superseded: list[dict[str, Any]] = field(default_factory=list)
    spoiled: list[dict[str, Any]] = field(default_factory=list)  # counted ballots with no valid choice (check 8)
    counted_rows: list[DatasetRow] = field(default_factory=list)
    ballots: list[CastBallot] = field(default_factory=list)  # every decoded BallotCast, in chain order
    latest: dict[str, CastBallot] = field(default_factory=dict)  # per token (lower-case hex), its last word
    equivocal: frozenset[str] = frozenset()  # tokens whose last word is two ballots: not counted (check 5)
    carried: list[dict[str, Any]] = field(default_factory=list)  # ballots carried by more than one relay
    equivocations: list[dict[str, Any]] = field(default_factory=list)
    by_relay: dict[str | None, int] = field(default_factory=dict)  # counted ballots per relay (None: not named)
    relay_names: dict[str, str | None] = field(default_factory=dict)  # what each relay registered, by address
    unverifiable: str | None = None  # why nothing of the poll could be judged (CANNOT_VERIFY)
    names: Names | None = None  # the option and stratum names, checked against metadataHash (names.py)
    # Per stratum: register size, issuances (requests), counted ballots and "requested but not
    # counted", the most ballots the issuer could have cast with abstainers' tokens unseen.
    strata: list[StratumFigures] = field(default_factory=list)
    protocol: int | None = None  # 1: the key was dealt by the city's API; 2: made by the trustees on chain

    @property
    def key_origin(self) -> str | None:
        """Who could have held the election secret before close, in a sentence for the report."""
        if self.protocol == 1:
            return (
                "dealt by the city's API at creation (protocol 1): whoever ran the API then could have kept "
                "the secret and read ballots before close"
            )
        if self.protocol == 2:
            return "made by the trustees in a key ceremony on chain (protocol 2): no one held the secret before close"
        return None

    def counted_by_relay(self) -> list[dict[str, Any]]:
        """Per relay that carried a counted ballot: its address (None where the chain names no
        relay), its registered name (None: not registered) and how many; named relays first."""
        named = [
            {"relay": _shown(r), "name": self.relay_names.get(r), "counted": n}
            for r, n in sorted(self.by_relay.items(), key=lambda item: item[0] or "")
            if r is not None
        ]
        unnamed = [{"relay": None, "name": None, "counted": self.by_relay[None]}] if None in self.by_relay else []
        return named + unnamed

    @property
    def verdict(self) -> Verdict:
        if self.unverifiable is not None or not self.checks:
            return Verdict.CANNOT_VERIFY
        results = {check.result for check in self.checks}
        if self.names is not None and self.names.status is NamesStatus.MISMATCH:
            results.add(Verdict.FAIL)
        return next(v for v in (Verdict.FAIL, Verdict.NOT_YET, Verdict.PASS) if v in results)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    @property
    def reason(self) -> str | None:
        """Why the verdict is not PASS or FAIL, in a sentence (the first check not yet run)."""
        if self.verdict is Verdict.CANNOT_VERIFY:
            return self.unverifiable or "no check ran"
        if self.verdict is Verdict.NOT_YET:
            return next(c.detail.removeprefix("not yet: ") for c in self.checks if c.not_yet)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pollId": self.poll_id,
            "verdict": self.verdict.value,
            "protocol": self.protocol,
            "electionKey": self.key_origin,
            "reason": self.reason,
            "checks": [check.to_dict() for check in self.checks],
            "tally": {
                "recomputed": self.recomputed,
                "published": self.published,
                "byStratum": {str(s): counts for s, counts in sorted(self.by_stratum.items())},
            },
            "superseded": self.superseded[:MAX_LISTED],
            "supersededCount": len(self.superseded),
            "carriedByMoreThanOneRelay": self.carried[:MAX_LISTED],
            "carriedByMoreThanOneRelayCount": len(self.carried),
            "equivocations": self.equivocations[:MAX_LISTED],
            "equivocationsCount": len(self.equivocations),
            "countedByRelay": self.counted_by_relay(),
            "spoiled": self.spoiled[:MAX_LISTED],
            "spoiledCount": len(self.spoiled),
            "names": None if self.names is None else self.names.to_dict(),
            "strata": [figures.to_dict() for figures in self.strata],
        }


@dataclass(frozen=True)
class StratumFigures:
    """What the issuer could still have done in one stratum, in numbers (docs/threat-model.md):
    enrol residents who do not exist (compare `register_size` with the district's population)
    and fill the tokens of residents who asked but did not vote (`requested_not_counted`)."""

    stratum: int
    register_size: int | None  # None: no register committed (a v1 poll)
    requests: int  # issuances recorded in the stratum
    counted: int  # counted ballots of the stratum

    @property
    def requested_not_counted(self) -> int:
        return max(self.requests - self.counted, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stratum": self.stratum,
            "registerSize": self.register_size,
            "requests": self.requests,
            "counted": self.counted,
            "requestedNotCounted": self.requested_not_counted,
        }


# --- check 1 -------------------------------------------------------------------------------


def check_parameters(poll: PollRecord) -> CheckResult:
    created = poll.created
    if created is None:
        return _cannot_run(1, f"no PollCreated event for poll {poll.poll_id}")
    failures = list(poll.undecodable)
    try:
        plaintext.check_poll_options(created.option_count, created.max_choices)
    except VecheError as exc:
        failures.append(str(exc))
    if not created.opens_at < created.closes_at:
        failures.append("opensAt is not before closesAt")
    keys = created.issuer_keys
    for stratum, encoded in enumerate(keys):
        try:
            PublicKey.decode(encoded)
        except VecheError as exc:
            failures.append(f"issuer key of stratum {stratum} does not decode: {exc}")
    if not keys:
        failures.append("the poll has no issuer keys")
    trustees = created.trustees
    if len(set(trustees)) != len(trustees) or any(int(t, 16) == 0 for t in trustees):
        failures.append("trustees repeat or include the zero address")
    try:
        if created.version == 1:
            key_shares.check_trustee_parameters(created.threshold, len(trustees))
        else:
            dkg.check_parameters(created.threshold, len(trustees))
    except VecheError as exc:
        failures.append(str(exc))
    counts = {"strata": len(keys), "options": created.option_count, "trustees": len(trustees)}
    return _result(1, failures, "well formed", counts)


# --- the whole poll ------------------------------------------------------------------------


# What count_poll runs (a v2 poll: 14, 15 and 16 in the places of 7 and 8); verify_poll adds 9, 10, 12, 13.
COUNTING_CHECKS = (1, 2, 3, 4, 5, 6, 7, 8)
KEY_CHECKS = (7, 15)  # the check that gives the election secret, v1 and v2


def verify_poll(
    snapshot: ChainSnapshot,
    poll_id: int,
    *,
    dataset: list[DatasetRow] | None = None,
) -> PollVerdict:
    """Checks 1–10, 12 and 13 for one poll (11 is receipt mode): the count, then the published
    result and dataset compared with it, the points and the issuances."""
    verdict = count_poll(snapshot, poll_id)
    poll = snapshot.polls.get(poll_id)
    if poll is None:  # no such poll: nothing to judge
        return verdict
    if poll.created is None:
        verdict.checks += [_cannot_run(n, "the poll's parameters are missing") for n in (9, 10, 12, 13)]
        return verdict
    check7 = next(c for c in verdict.checks if c.number in KEY_CHECKS)

    # Check 9: the tally.
    verdict.checks.append(_check_tally(poll, verdict, check7))

    # Check 10: the dataset.
    verdict.checks.append(check_dataset(poll, verdict, dataset, check7))

    # Check 12: points credited for this poll.
    verdict.checks.append(check_points_for_poll(poll))

    # Check 13: every issuance backed by a register member's request.
    verdict.checks.append(check_register(poll))
    return verdict


@dataclass
class CountingRule:
    """Check 5's outcome over a poll's eligible ballots (those passing checks 2-4): see `counting_rule`."""

    latest: dict[str, CastBallot]  # per token (lower-case hex), the first copy of its last word
    equivocal: frozenset[str]  # tokens whose last word is two different ballots: they count nothing
    counted: list[CastBallot]  # in chain order
    superseded: list[dict[str, Any]]
    carried: list[dict[str, Any]]  # ballots that reached the chain through more than one relay
    equivocations: list[dict[str, Any]]
    failures: list[str]  # a relay that posted a ballot twice


def counting_rule(eligible: list[CastBallot]) -> CountingRule:
    """Check 5 (docs/protocol.md §6): which ballot counts for each token, from the chain's order.

    A ballot is what its token signed (its EIP-712 digest). Per token the highest sequence counts,
    wherever it stands on chain (the contract does not judge sequences). The same ballot may reach
    the chain more than once: carried by different relays (a client that retried elsewhere) it
    counts once, its first copy by (block, log index) giving its dataset row; posted twice by one
    relay, or where the chain names no relay (a PollBook from before BallotsRelayed), check 5
    fails, since a relay posts each ballot it acknowledged once. Two different ballots with the
    token's highest sequence are its holder's equivocation: neither counts (the relays' order must
    not choose between them), and the token has no vote unless a higher sequence follows.
    `eligible` is in chain order."""
    latest: dict[str, CastBallot] = {}
    equivocal: set[str] = set()
    copies: dict[tuple[str, bytes | None], list[CastBallot]] = defaultdict(list)
    for b in eligible:
        copies[(b.token, b.digest)].append(b)
        best = latest.get(b.token)
        if best is None or b.sequence > best.sequence:
            latest[b.token] = b
            equivocal.discard(b.token)
        elif b.sequence == best.sequence and b.digest != best.digest:
            equivocal.add(b.token)
    counted = [b for b in eligible if latest[b.token] is b and b.token not in equivocal]
    firsts = [group[0] for group in copies.values()]
    superseded = [
        {
            "token": _shown(b.token),
            "sequence": b.sequence,
            "block": b.block_number,
            "supersededBy": latest[b.token].sequence,
        }
        for b in firsts
        if b.sequence < latest[b.token].sequence
    ]
    carried, failures = [], []
    for group in copies.values():
        if len(group) == 1:
            continue
        b, relays = group[0], Counter(c.relayer for c in group)
        where = f"{_shown(b.token)} #{b.sequence}"
        for relayer, times in relays.items():
            if times > 1:
                by = "a relay the chain does not name" if relayer is None else f"relay {_shown(relayer)}"
                failures.append(f"{where} was posted {times} times by {by}")
        if None not in relays and len(relays) > 1:
            carried.append(
                {
                    "token": _shown(b.token),
                    "sequence": b.sequence,
                    "relays": [_shown(r) for r in relays if r is not None],
                    "blocks": [c.block_number for c in group],
                }
            )
    rivals: dict[str, list[CastBallot]] = defaultdict(list)
    for b in firsts:
        if b.token in equivocal and b.sequence == latest[b.token].sequence:
            rivals[b.token].append(b)
    equivocations = [
        {"token": _shown(t), "sequence": latest[t].sequence, "ballots": len(r), "blocks": [b.block_number for b in r]}
        for t, r in sorted(rivals.items())
    ]
    return CountingRule(latest, frozenset(equivocal), counted, superseded, carried, equivocations, failures)


def count_poll(snapshot: ChainSnapshot, poll_id: int) -> PollVerdict:
    """Checks 1–8 and what they count: the recomputed tally, per stratum, and the dataset rows.

    The one counting rule: `verify_poll` compares what was published with this, and the city's
    API publishes this (api/veche_api/tally.py), so that what the city publishes is what every
    observer recomputes. Checks 9, 10 and 12 are not run here (nothing is published yet)."""
    poll = snapshot.polls.get(poll_id)
    if poll is None:
        return PollVerdict(
            poll_id,
            [],
            unverifiable=f"no poll {poll_id} on PollBook {snapshot.deployment.poll_book} of chain "
            f"{snapshot.chain_id} (no event names it up to block {snapshot.head})",
        )
    check1 = check_parameters(poll)
    verdict = PollVerdict(poll_id, [check1])
    created = poll.created
    if created is None:  # check 1 failed: nothing else can run
        verdict.checks += [_cannot_run(n, "the poll's parameters are missing") for n in COUNTING_CHECKS[1:]]
        return verdict
    verdict.option_count = created.option_count
    verdict.protocol = created.version
    deployment = snapshot.deployment

    # Checks 2-4 in one pass over the ballots, in chain order. Checks 2 and 3 were done by the
    # workers that read each ballot (work.scan_range); check 4 is the window, by the timestamps
    # of the blocks that include the ballots. Check 5 (the `counting_rule` below) then picks each
    # token's counted ballot among the eligible ones.
    found = poll.ballots
    token_failures: list[str] = []
    signature_failures: list[str] = []
    window_failures: list[str] = []
    if snapshot.chain_id != deployment.chain_id:
        signature_failures.insert(
            0, f"the node's chain id {snapshot.chain_id} is not the deployment's {deployment.chain_id}"
        )
    opens, closes, stamps = created.opens_at, created.closes_at, snapshot.block_timestamps
    eligible: list[CastBallot] = []
    for b in found:
        ok = True
        if b.token_error:
            token_failures.append(f"{_shown(b.token)} #{b.sequence}: {b.token_error}")
            ok = False
        if b.signature_error:
            signature_failures.append(f"{_shown(b.token)} #{b.sequence}: {b.signature_error}")
            ok = False
        if not opens <= stamps.get(b.block_number, -1) < closes:
            window_failures.append(
                f"{_shown(b.token)} #{b.sequence}: included at {stamps.get(b.block_number)}, outside "
                f"[{opens}, {closes})"
            )
            ok = False
        if ok:
            eligible.append(b)
    verdict.ballots = found
    n = {"ballots": len(found)}
    verdict.checks.append(_result(2, token_failures, f"{len(found):,} token signatures verify", n))
    verdict.checks.append(_result(3, signature_failures, f"{len(found):,} ballot signatures recover their tokens", n))
    verdict.checks.append(_result(4, window_failures, f"{len(found):,} ballots inside the window", n))

    rule = counting_rule(eligible)
    counted = rule.counted
    verdict.latest, verdict.equivocal = rule.latest, rule.equivocal
    verdict.superseded, verdict.carried, verdict.equivocations = rule.superseded, rule.carried, rule.equivocations
    verdict.by_relay = dict(Counter(b.relayer for b in counted))
    verdict.relay_names = {address: relay.name for address, relay in snapshot.relays.items()}
    verdict.checks.append(
        _result(
            5,
            rule.failures,
            f"{len(counted):,} counted, {len(rule.superseded):,} superseded"
            + (f", {len(rule.carried):,} carried by more than one relay" if rule.carried else "")
            + (f", {len(rule.equivocations):,} tokens equivocated" if rule.equivocations else ""),
            {
                "counted": len(counted),
                "superseded": len(rule.superseded),
                "carried": len(rule.carried),
                "equivocations": len(rule.equivocations),
            },
        )
    )

    # Check 6: per stratum, counted ballots ≤ issued tokens.
    issued = poll.issued
    per_stratum = Counter(b.stratum for b in counted)
    over = [
        f"stratum {s}: {c} counted ballots, {issued.get(s, 0)} tokens issued"
        for s, c in sorted(per_stratum.items())
        if c > issued.get(s, 0)
    ]
    verdict.checks.append(
        _result(
            6,
            over,
            f"{len(counted):,} counted ≤ {sum(issued.values()):,} issued",
            {"issued": sum(issued.values()), "counted": len(counted)},
        )
    )
    sizes = [size for _, size in poll.register] if poll.register is not None else []
    verdict.strata = [
        StratumFigures(s, sizes[s] if s < len(sizes) else None, issued.get(s, 0), per_stratum.get(s, 0))
        for s in range(len(created.issuer_keys))
    ]

    # Check 7 (v2: 14, the ceremony, and 15, the released shares): the election secret.
    if created.version == 1:
        secret, check7 = _rebuild_election_key(snapshot, poll, created)
        verdict.checks.append(check7)
    else:
        verdict.checks.append(check_ceremony(snapshot, poll, created))
        secret, check7 = _rebuild_joint_secret(snapshot, poll, created, verdict.checks[-1])
        verdict.checks.append(check7)
    opened = 8 if created.version == 1 else 16

    # Check 8 (v2: 16): every counted ballot is opened (by the workers that read it); a counted
    # ballot with no valid choice is the voter's spoiled ballot, listed and left out of the tally.
    if secret is None:
        verdict.checks.append(_waiting_for(opened, check7, f"no election secret key (check {check7.number})"))
    elif any(b.choice is None for b in counted):  # a snapshot read without the election key
        verdict.checks.append(_cannot_run(opened, "the ballots were read without the election key"))
        secret = None
    else:
        verdict.spoiled = [
            {"token": _shown(b.token), "sequence": b.sequence, "block": b.block_number, "reason": b.choice}
            for b in counted
            if isinstance(b.choice, str)
        ]
        spoiled = len(verdict.spoiled)
        verdict.checks.append(
            _result(
                opened,
                [],
                f"{len(counted):,} counted ballots opened: {len(counted) - spoiled:,} valid, {spoiled:,} spoiled",
                {"counted": len(counted), "spoiled": spoiled},
            )
        )

    # The tally (compared with the published one by check 9) and the dataset rows (check 10).
    if secret is not None:
        tally = [0] * created.option_count
        by_stratum: dict[int, list[int]] = defaultdict(lambda: [0] * created.option_count)
        rows = []
        for b in counted:
            choice = b.choice
            if not isinstance(choice, tuple):  # spoiled (listed by check 8); never None here
                continue
            stratum_tally = by_stratum[b.stratum]
            for option in choice:
                tally[option] += 1
                stratum_tally[option] += 1
            rows.append(DatasetRow(b.token, b.stratum, choice, b.block_number))
        verdict.recomputed, verdict.by_stratum, verdict.counted_rows = tally, dict(by_stratum), rows
    return verdict


def _rebuild_election_key(
    snapshot: ChainSnapshot, poll: PollRecord, created: PollParameters
) -> tuple[bytes | None, CheckResult]:
    rebuilt = poll.election_key or election_key.rebuild(poll)  # read_snapshot rebuilt it already
    if rebuilt.missing:
        if poll.results:  # a result is on chain that no one can recompute: a broken rule
            return None, _cannot_run(7, f"a result is published, but {rebuilt.missing}")
        if snapshot.head_time < created.closes_at:
            return None, _not_yet(
                7, f"the poll is open until {_utc(created.closes_at)}; the trustees post their shares after it closes"
            )
        return None, _not_yet(7, f"the trustees have not released the key: {rebuilt.missing}")
    counts = {"shares": len(poll.shares), "threshold": created.threshold}
    return rebuilt.secret, _result(7, rebuilt.failures, f"{len(poll.shares)} shares rebuild the election key", counts)


def check_ceremony(snapshot: ChainSnapshot, poll: PollRecord, created: PollParameters) -> CheckResult:
    """Check 14: the ceremony's transcript and every exclusion (ceremony.judge, run by read_snapshot)."""
    outcome = poll.ceremony_outcome
    if outcome is None:
        outcome = poll.ceremony_outcome = ceremony.judge(
            poll.ceremony, created, snapshot.chain_id, snapshot.deployment.poll_book, poll.poll_id
        )
    if outcome.failures:
        return _result(14, outcome.failures, "")
    certified = outcome.certified
    if certified is None:
        if snapshot.head_time < created.opens_at:
            return _not_yet(
                14,
                f"the trustees' ceremony is under way ({outcome.pending}); the poll opens at {_utc(created.opens_at)}",
            )
        return _cannot_run(
            14, f"{outcome.pending}, and the poll was due to open at {_utc(created.opens_at)}: it never opened"
        )
    excluded = f"; excluded before: {'; '.join(outcome.excluded)}" if outcome.excluded else ""
    return _result(
        14,
        [],
        f"{len(certified.members)} trustees certified the election key in attempt {certified.attempt}{excluded}",
        {"attempts": outcome.attempts, "members": len(certified.members), "threshold": created.threshold},
    )


def _rebuild_joint_secret(
    snapshot: ChainSnapshot, poll: PollRecord, created: PollParameters, check14: CheckResult
) -> tuple[bytes | None, CheckResult]:
    """Check 15: the released shares, each against its commitments (election_key.rebuild). An
    exclusion check 14 finds unjustified fails that check, but does not stop the count: the
    certified attempt's transcript holds, so its key is the poll's (as a wrong share does not)."""
    outcome = poll.ceremony_outcome
    if outcome is None or outcome.certified is None:
        return None, _waiting_for(15, check14, "the ceremony certified no usable election key (check 14)")
    rebuilt = poll.election_key or election_key.rebuild(poll)
    counts = {"shares": len(poll.shares), "threshold": created.threshold}
    if rebuilt.secret is None:
        if rebuilt.failures:  # a trustee released a wrong share: named, whatever else is missing
            return None, _result(15, rebuilt.failures, "", counts)
        if poll.results:
            return None, _cannot_run(15, f"a result is published, but {rebuilt.missing}")
        if snapshot.head_time < created.closes_at:
            return None, _not_yet(
                15,
                f"the poll is open until {_utc(created.closes_at)}; the trustees release their shares after it closes",
            )
        return None, _not_yet(15, f"the trustees have not released the key: {rebuilt.missing}")
    valid = len(poll.shares) - len(rebuilt.failures)
    return rebuilt.secret, _result(
        15, rebuilt.failures, f"{valid} released shares match their commitments and rebuild the election key", counts
    )


def _utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _check_tally(poll: PollRecord, verdict: PollVerdict, check7: CheckResult) -> CheckResult:
    if verdict.recomputed is None:
        return _waiting_for(9, check7, f"the ballots could not be decrypted (check {check7.number})")
    if not poll.results:
        return _not_yet(9, "no result is published on chain yet")
    if len(poll.results) != 1:
        return _cannot_run(9, f"{len(poll.results)} ResultPublished events (expected one)")
    published = list(poll.results[0]["counts"])
    verdict.published = published
    failures = []
    if len(published) != len(verdict.recomputed):
        failures.append(f"published {len(published)} counts for {len(verdict.recomputed)} options")
    else:
        failures = [
            f"option {i + 1}: recomputed {r}, published {p}"
            for i, (r, p) in enumerate(zip(verdict.recomputed, published))
            if r != p
        ]
    return _result(9, failures, "recomputed tally equals the published one", {"ballots": sum(verdict.recomputed)})


def check_dataset(
    poll: PollRecord, verdict: PollVerdict, dataset: list[DatasetRow] | None, check7: CheckResult
) -> CheckResult:
    if verdict.recomputed is None:
        return _waiting_for(10, check7, f"the ballots could not be decrypted (check {check7.number})")
    if not poll.results:
        return _not_yet(10, "no result (and so no dataset hash) is published on chain yet")
    if len(poll.results) != 1:
        return _cannot_run(10, "no single published result holds a dataset hash")
    expected = verdict.counted_rows
    failures = []
    if dataset_hash(expected) != poll.results[0]["datasetHash"]:
        failures.append("the dataset hash on chain is not the hash of the counted ballots")
    if dataset is not None:
        mine = {row.token: row for row in expected}
        theirs: dict[str, DatasetRow] = {}
        for row in dataset:
            if row.token in theirs:
                failures.append(f"row for {row.token} appears twice")
            theirs[row.token] = row
        for token_address in sorted(mine.keys() - theirs.keys()):
            failures.append(f"missing row: {token_address}")
        for token_address in sorted(theirs.keys() - mine.keys()):
            failures.append(f"row not among the counted ballots: {token_address}")
        for token_address in sorted(mine.keys() & theirs.keys()):
            if mine[token_address] != theirs[token_address]:
                failures.append(f"row differs from the chain: {token_address}")
        if dataset_hash(dataset) != poll.results[0]["datasetHash"]:
            failures.append("the given dataset's hash is not the one on chain")
    what = (
        "the dataset file and the on-chain hash match" if dataset is not None else "the on-chain dataset hash matches"
    )
    return _result(10, failures, f"{what} the {len(expected):,} counted ballots", {"rows": len(expected)})


def check_points_for_poll(poll: PollRecord) -> CheckResult:
    if poll.created is None:
        return _cannot_run(12, "no poll parameters")
    credited = sum(amount for _, amount in poll.credits)
    tokens = sum(poll.issued.values())
    expected = tokens * poll.created.points
    failures = []
    if credited != expected:
        failures.append(f"credited {credited:,} points; {tokens:,} tokens × {poll.created.points} = {expected:,}")
    residents = Counter(resident for resident, _ in poll.credits)
    failures += [f"{checksum_address(r)} credited {c} times" for r, c in residents.items() if c > 1]
    if not poll.pseudonymous:  # v2: issuances name their residents, so credits can be matched
        issued_to = {issuance.resident for issuance in poll.issuances}
        failures += [
            f"{checksum_address(r)} credited without an issuance" for r in sorted(residents) if r not in issued_to
        ]
    return _result(12, failures, f"{credited:,} points for {tokens:,} tokens", {"credited": credited, "tokens": tokens})


# --- check 13 ------------------------------------------------------------------------------


def check_register(poll: PollRecord) -> CheckResult:
    """Check 13, from the events alone: the poll committed one register entry per stratum; each
    IssuancesRecorded item's request recovers its resident and its proof puts the resident in
    the stratum's register (the workers judged each, work.issuance_error); a resident is issued
    once; no stratum has more issuances than its register size. A v1 issuance (a pseudonym,
    TokensIssued) is backed by nothing and fails it."""
    created = poll.created
    if created is None:
        return _cannot_run(13, "no poll parameters")
    if poll.register is None:
        return _cannot_run(13, "the poll committed no register (no RegisterCommitted): its issuances are unbacked")
    failures = []
    strata = len(created.issuer_keys)
    if len(poll.register) != strata:
        failures.append(f"the register has {len(poll.register)} entries for {strata} strata")
    if poll.pseudonymous:
        failures.append(f"{poll.pseudonymous:,} pseudonymous (v1) issuances, backed by no request")
    failures += [issuance.error for issuance in poll.issuances if issuance.error is not None]
    repeated = Counter(issuance.resident for issuance in poll.issuances)
    failures += [f"{checksum_address(r)} was issued {c} tokens" for r, c in repeated.items() if c > 1]
    for stratum, (_, size) in enumerate(poll.register):
        issued = poll.issued.get(stratum, 0)
        if issued > size:
            failures.append(f"stratum {stratum}: {issued:,} issuances for a register of {size:,}")
    size_total = sum(size for _, size in poll.register)
    return _result(
        13,
        failures,
        f"{len(poll.issuances):,} issuances, each a register member's request ({size_total:,} registered)",
        {"issuances": len(poll.issuances), "registered": size_total},
    )


# --- receipt mode and the points audit ---------------------------------------------------------


def check_receipt(snapshot: ChainSnapshot, verdict: PollVerdict, receipt: Receipt) -> CheckResult:
    """Check 11: signed by a relay that held PollBook's RELAYER_ROLE; its ballot counted or superseded."""
    deployment = snapshot.deployment
    failures = []
    if receipt.chain_id != deployment.chain_id or receipt.poll_book != deployment.poll_book:
        failures.append("the receipt is for another chain or PollBook deployment")
    try:
        receipt.verify_signature()
    except VecheError as exc:
        failures.append(str(exc))
    signer = receipt.relayer.lower()
    token = receipt.token.lower()
    copies = [b for b in verdict.ballots if b.token == token and b.ballot_hash == receipt.ballot_hash]
    # The copy this relay posted, if the chain shows one (another relay may have carried it too).
    found = next((b for b in copies if b.relayer == signer), copies[0] if copies else None)
    relay = snapshot.relays.get(signer)
    signed_by = relay.shown if relay is not None else checksum_address(bytes.fromhex(signer[2:]))
    if found is not None and found.relayer == signer:
        pass  # castBallots checked its role when it posted the ballot
    elif relay is None or not relay.held:
        failures.append(f"{signed_by} never held the relayer role on the PollBook")
    elif not relay.held_at(receipt.accepted_at):
        failures.append(f"{signed_by} did not hold the relayer role at {_utc(receipt.accepted_at)}, when it signed")
    latest = verdict.latest.get(token)
    carried = "" if found is None or found.relayer is None else f" (carried by relay {_shown(found.relayer)})"
    if found is not None and latest is not None and latest.digest == found.digest and token not in verdict.equivocal:
        state = f"on chain in block {found.block_number}{carried} and counted"
    elif found is not None and latest is not None and latest.sequence == found.sequence and token in verdict.equivocal:
        # Not the relay's doing: the token's holder signed another ballot with the same sequence.
        state = (
            f"on chain in block {found.block_number}{carried}, not counted: the token signed another ballot "
            f"with the same sequence {found.sequence} (its holder equivocated)"
        )
    elif latest is not None and latest.sequence > receipt.sequence:
        where = f"on chain in block {found.block_number}{carried}" if found else "not on chain"
        state = f"{where}, superseded by sequence {latest.sequence} of the same token"
    elif found is not None:
        state = f"on chain in block {found.block_number}{carried} but not counted"
        failures.append("the ballot is on chain but not counted (see checks 2–5)")
    else:
        state = "not on chain"
        failures.append("the receipt's ballot never reached the chain and was not superseded: the relay dropped it")
    return _result(
        11,
        failures,
        f"signed by {signed_by}; ballot {receipt.ballot_hash.hex()[:16]}… {state}",
        {"found": int(found is not None)},
    )


def check_points(snapshot: ChainSnapshot, balances_on_chain: dict[str, int]) -> CheckResult:
    """Check 12 over every poll, and every balance against the sum of its events."""
    failures = []
    for poll_id in sorted(snapshot.polls):
        result = check_points_for_poll(snapshot.polls[poll_id])
        failures += [f"poll {poll_id}: {failure}" for failure in result.failures]
    for resident, expected in sorted(snapshot.balances_by_events.items()):
        actual = balances_on_chain.get(resident)
        if actual != expected:
            failures.append(f"{resident}: balance {actual}, events sum to {expected}")
    counts = {"polls": len(snapshot.polls), "residents": len(snapshot.balances_by_events)}
    return _result(
        12,
        failures,
        f"credits of {len(snapshot.polls)} polls and {len(snapshot.balances_by_events):,} balances agree",
        counts,
    )

"""A v2 poll's key ceremony, judged from the chain alone (the work of check 14).

The trustees' messages are on chain, each signed by its sender (PollBook checked the
signatures), so every verifier reaches the same judgement: the certified attempt's transcript
(every proof of possession, every certification, Y = Σ C_{j,0}, certified before the poll
opened), and every earlier attempt's end — a trustee the poll administrator excluded from the
next attempt must have been shown at fault in the attempt it was excluded from: it posted no
round-1 message by the attempt's round-1 deadline, a malformed one, a complaint that the public
evidence refutes, or a complaint against it holds. So the city cannot drop an honest trustee
unseen, nor a slow one early (docs/protocol.md §6, check 14).
"""

from __future__ import annotations

from collections.abc import Sequence

from veche_core import dkg
from veche_core.ceremony import MessageKind
from veche_core.errors import VecheError
from veche_core.events import CeremonyMessageLog, CeremonyStartLog

from .records import CeremonyOutcome, CeremonyRecord, CertifiedKey, PollParameters


def judge(
    ceremony: CeremonyRecord, created: PollParameters, chain_id: int, poll_book: str, poll_id: int
) -> CeremonyOutcome:
    outcome = CeremonyOutcome()
    starts = sorted(ceremony.starts, key=lambda s: (s.block_number, s.log_index))
    outcome.attempts = len(starts)
    if not starts:
        outcome.failures.append("no CeremonyStarted for a poll without a dealt election key")
        return outcome
    trustees = created.trustees
    book = bytes.fromhex(poll_book[2:])
    previous: CeremonyStartLog | None = None
    contexts: dict[int, bytes] = {}
    for start in starts:
        expected_attempt = 1 if previous is None else previous.attempt + 1
        if start.attempt != expected_attempt:
            outcome.failures.append(f"attempt {start.attempt} started where attempt {expected_attempt} was due")
        if list(start.members) != sorted(set(start.members)) or any(i >= len(trustees) for i in start.members):
            outcome.failures.append(f"attempt {start.attempt}: its members are not ascending poll trustees")
            previous = start
            continue
        if previous is None:
            if list(start.members) != list(range(len(trustees))):
                outcome.failures.append("attempt 1 does not include every trustee of the poll")
        elif not set(start.members) <= set(previous.members):  # (keys may change: a trustee may rotate its own)
            outcome.failures.append(f"attempt {start.attempt} adds members the previous attempt did not have")
        try:
            contexts[start.attempt] = dkg.ceremony_context(chain_id, book, poll_id, start.attempt, start.keys)
        except VecheError as exc:
            outcome.failures.append(f"attempt {start.attempt}: its members' keys are unusable: {exc}")
        if previous is not None and previous.attempt in contexts:
            restarted_at = ceremony.started_at.get(start.attempt)
            began_at = ceremony.started_at.get(previous.attempt)
            # Without the blocks' times no member is late: an exclusion for silence fails (fail closed).
            late = (
                restarted_at is not None
                and began_at is not None
                and restarted_at >= round1_deadline(began_at, created.opens_at)
            )
            _judge_exclusions(outcome, previous, start, contexts[previous.attempt], created, ceremony.messages, late)
        previous = start
    last = starts[-1]

    certified = sorted(ceremony.certified, key=lambda c: (c.block_number, c.log_index))
    if not certified:
        outcome.pending = f"attempt {last.attempt} has not certified an election key"
        return outcome
    if len(certified) > 1 or certified[0].attempt != last.attempt:
        outcome.failures.append("the key was certified more than once, or not by the last attempt")
        return outcome
    key_log = certified[0]
    if ceremony.certified_at is None or ceremony.certified_at >= created.opens_at:
        outcome.failures.append(
            f"the election key was certified at {ceremony.certified_at}, not before the poll opened"
        )
    if last.attempt not in contexts:
        return outcome
    messages = _first_by_sender(ceremony.messages, last.attempt)
    complaints = [m for m in ceremony.messages if m.attempt == last.attempt and m.kind == MessageKind.Complaint]
    if complaints:
        outcome.failures.append(f"attempt {last.attempt} was certified despite {len(complaints)} complaint(s)")
    round1 = [messages.get((i, MessageKind.Round1)) for i in last.members]
    certifications = [messages.get((i, MessageKind.Certify)) for i in last.members]
    if any(m is None for m in round1):
        outcome.failures.append(f"attempt {last.attempt} was certified without every member's round-1 message")
        return outcome
    try:
        check = dkg.check_ceremony(
            contexts[last.attempt],
            created.threshold,
            last.keys,
            [m.payload for m in round1 if m is not None],
            [m.payload if m is not None else b"" for m in certifications],
            key_log.election_key,
        )
    except VecheError as exc:
        outcome.failures.append(f"attempt {last.attempt}: {exc}")
        return outcome
    for problem in check.problems:
        outcome.failures.append(f"attempt {last.attempt}: {_named(problem, last.members, trustees)}")
    if check.ok and check.group_key is not None:
        outcome.certified = CertifiedKey(last.attempt, tuple(last.members), check.group_key, check.verification_shares)
    return outcome


def _first_by_sender(messages: Sequence[CeremonyMessageLog], attempt: int) -> dict[tuple[int, int], CeremonyMessageLog]:
    """(sender index, kind) → its first message of the attempt (PollBook takes one of each)."""
    found: dict[tuple[int, int], CeremonyMessageLog] = {}
    for message in sorted(messages, key=lambda m: (m.block_number, m.log_index)):
        if message.attempt == attempt:
            found.setdefault((message.trustee_index, message.kind), message)
    return found


def judge_complaint(
    start: CeremonyStartLog,
    context: bytes,
    threshold: int,
    complainer: int,
    complaint: dkg.Complaint,
    accused_round1: bytes,
) -> dkg.Verdict:
    """`dkg.judge_complaint` for a complaint that poll trustee `complainer` posted in the attempt
    `start` began (trustee indices, the chain's, turned into the attempt's member ids)."""
    members = list(start.members)
    return dkg.judge_complaint(
        context,
        threshold,
        start.keys,
        members.index(complainer) + 1,
        members.index(complaint.accused) + 1,
        complaint.reason,
        complaint.evidence,
        accused_round1,
    )


def round1_deadline(started_at: int, opens_at: int) -> int:
    """When a member of an attempt begun at `started_at` that has posted no round 1 is late:
    halfway from then to the poll's opening (chain time). Before it, silence is no fault: a
    trustee is given half of what time is left, and a restart still leaves the rest half."""
    return started_at + max(0, opens_at - started_at) // 2


def faults(
    start: CeremonyStartLog,
    context: bytes,
    threshold: int,
    messages: Sequence[CeremonyMessageLog],
    late: bool,
) -> dict[int, str]:
    """Poll trustee index → why the attempt `start` began shows it at fault, from public data
    (messages of other attempts are passed over): it posted no round-1 message and the round-1
    deadline has passed (`late`, see `round1_deadline`), a malformed one (or its proof of
    possession fails), a malformed complaint or one against a trustee with no round-1 message,
    a complaint the evidence refutes, or a complaint against it holds. The first cause found is
    given. The one judgement of who may be excluded: check 14 holds every exclusion to it (with
    `late` at the restart's time), and the API's coordinator answers with it (`atFault`, now)."""
    members = list(start.members)
    first = _first_by_sender(messages, start.attempt)
    complaints = [
        m
        for m in sorted(messages, key=lambda m: (m.block_number, m.log_index))
        if m.attempt == start.attempt and m.kind == MessageKind.Complaint
    ]
    at_fault: dict[int, str] = {}
    for index in members:
        round1 = first.get((index, MessageKind.Round1))
        if round1 is None:
            if late:
                at_fault.setdefault(index, "posted no round-1 message by the round-1 deadline")
            continue
        try:
            message = dkg.Round1Message.decode(round1.payload, threshold, len(members))
        except VecheError as exc:
            at_fault.setdefault(index, f"posted a malformed round-1 message ({exc})")
            continue
        if not message.verify_pop(context):
            at_fault.setdefault(index, "posted a round-1 message whose proof of possession fails")
    for complaint in complaints:
        complainer = complaint.trustee_index
        try:
            parsed = dkg.Complaint.decode(complaint.payload)
        except VecheError as exc:
            at_fault.setdefault(complainer, f"posted a malformed complaint ({exc})")
            continue
        accused_round1 = first.get((parsed.accused, MessageKind.Round1))
        if parsed.accused not in members or accused_round1 is None:
            at_fault.setdefault(complainer, "accused a trustee that posted no round-1 message")
            continue
        verdict = judge_complaint(start, context, threshold, complainer, parsed, accused_round1.payload)
        if verdict.at_fault is dkg.Party.ACCUSED:
            at_fault.setdefault(parsed.accused, f"was shown at fault by trustee {complainer}'s complaint")
        else:
            at_fault.setdefault(complainer, f"filed a complaint the evidence refutes ({verdict.detail})")
    return at_fault


def _judge_exclusions(
    outcome: CeremonyOutcome,
    ended: CeremonyStartLog,
    started: CeremonyStartLog,
    context: bytes,
    created: PollParameters,
    all_messages: Sequence[CeremonyMessageLog],
    late: bool,
) -> None:
    """Every member of `ended` missing from `started` must have been shown at fault in `ended`
    (`late`: `started` began after `ended`'s round-1 deadline)."""
    trustees = created.trustees
    at_fault = faults(ended, context, created.threshold, all_messages, late)
    for index in ended.members:
        if index in started.members:
            continue
        cause = at_fault.get(index)
        who = f"trustee {index} ({trustees[index]})"
        if cause is None:
            outcome.failures.append(
                f"attempt {started.attempt} excluded {who}, whom attempt {ended.attempt} does not show at fault"
            )
        else:
            outcome.excluded.append(f"attempt {ended.attempt}: {who} {cause}")


def _named(problem: str, members: Sequence[int], trustees: Sequence[str]) -> str:
    """dkg speaks of member ids; a report names the trustee too."""
    for member, index in enumerate(members, start=1):
        prefix = f"member {member}:"
        if problem.startswith(prefix):
            return f"trustee {index} ({trustees[index]}):{problem[len(prefix) :]}"
    return problem

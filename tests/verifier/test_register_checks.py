"""Check 13 and the issuer's slack (docs/protocol.md §6, docs/threat-model.md): the auditor's
cases of issue 16, driven with the operator keys straight at the contracts. What PollBook
refuses (a made-up resident, a request signed by another key, a second credit, a stratum over
its register) is forged on EventForge; each is caught by the check that should catch it, and
nothing else fails. What no check can catch (tokens the issuer fills for residents who asked
and did not vote) is the slack every report shows per stratum."""

from __future__ import annotations

import io
import os

from rich.console import Console

from veche_api.tally import publication_count, refusals
from veche_core.rpc import RpcClient
from veche_testkit.city import new_token_key
from veche_verify.chain import read_snapshot
from veche_verify.report import print_poll

from .conftest import RESIDENTS, Forged, close_and_publish, failed, verify

REGISTERS = [RESIDENTS[:10], RESIDENTS[10:16]]
PARAMETERS = (
    "metadataHash",
    "optionCount",
    "maxChoices",
    "opensAt",
    "closesAt",
    "points",
    "electionKey",
    "issuerKeys",
    "trustees",
    "threshold",
)


def _poll(city, issuer_keys, **options):
    return city.create_poll(issuer_keys=issuer_keys, strata=2, register=REGISTERS, **options)


def _figures(verdict) -> list[tuple]:
    return [(f.stratum, f.register_size, f.requests, f.counted, f.requested_not_counted) for f in verdict.strata]


def test_an_honest_poll_passes_and_shows_its_slack(city, issuer_keys):
    poll = _poll(city, issuer_keys)
    tokens = city.issue_tokens(poll, [(r, 0) for r in REGISTERS[0][:4]] + [(r, 1) for r in REGISTERS[1][:3]])
    city.cast(poll, [city.ballot(poll, key, [0]) for key in tokens[:3] + tokens[4:5]])  # 3 of 4, 1 of 3 vote
    close_and_publish(city, poll)

    verdict = verify(city, poll.poll_id)

    assert failed(verdict) == set()
    assert _figures(verdict) == [(0, 10, 4, 3, 1), (1, 6, 3, 1, 2)]
    assert verdict.to_dict()["strata"][1] == {
        "stratum": 1,
        "registerSize": 6,
        "requests": 3,
        "counted": 1,
        "requestedNotCounted": 2,
    }
    out = io.StringIO()
    print_poll(Console(file=out, width=100), verdict)
    assert "requested, not counted" in out.getvalue() and "register and issuer slack" in out.getvalue()


def test_tokens_filled_for_abstainers_pass_every_check_but_only_up_to_the_slack(city, issuer_keys):
    """The issuer mints a token for each requester who did not vote and casts it: nothing can
    tell (each fits under its stratum's requests), and it is exactly the slack the honest poll
    showed. One more would be counted > issued (check 6, tests/verifier/test_checks.py)."""
    poll = _poll(city, issuer_keys)
    tokens = city.issue_tokens(poll, [(r, 0) for r in REGISTERS[0][:4]])
    padding = [city.mint_token(poll, 0)]  # the one requester who will not vote
    city.cast(poll, [city.ballot(poll, key, [1]) for key in tokens[:3] + padding])
    close_and_publish(city, poll)

    verdict = verify(city, poll.poll_id)

    assert failed(verdict) == set()
    assert _figures(verdict)[0] == (0, 10, 4, 4, 0)


def test_the_auditors_stuffing_fails_check_13_only(city, forge, issuer_keys):
    """Issue 16: 5 issuances for people who are no resident (fresh keys; the city's proofs of
    real members' positions), their points credited, and ballots cast with those tokens."""
    poll = _poll(city, issuer_keys)
    forged = Forged(city, forge, poll, issue=False)
    forged.issue([(r, 0) for r in REGISTERS[0][:3]])
    fakes = [new_token_key() for _ in range(5)]
    forged.city.resident_keys.update({address: key for key, address in fakes})
    forged.issue([(address, 0) for _, address in fakes])
    forged.cast([forged.city.ballot(poll, key, [2]) for key in poll.tokens])
    forged.close_and_publish()

    verdict = verify(city, poll.poll_id, forged.deployment)

    assert failed(verdict) == {13}
    check13 = next(c for c in verdict.checks if c.number == 13)
    assert len(check13.failures) == 5 and all("not in the register of stratum 0" in f for f in check13.failures)
    assert _figures(verdict)[0] == (0, 10, 8, 8, 0)

    # The city's own publication refuses such a poll: it counts with check 13 too.
    with RpcClient(city.w3.provider.endpoint_uri) as client:
        snapshot = read_snapshot(client, forged.deployment, poll.poll_id)
    assert [c.number for c in refusals(publication_count(snapshot, poll.poll_id))] == [13]


def test_pseudonymous_issuances_with_credits_to_made_up_addresses_fail_check_13(city, forge, issuer_keys):
    """The attack as issue 16 ran it on v1: any pseudonym, points to made-up addresses."""
    poll = _poll(city, issuer_keys)
    forged = Forged(city, forge, poll, issue=False)
    forged.issue([(r, 1) for r in REGISTERS[1][:2]])
    forged.city.admin.transact(
        forge.functions.recordPseudonyms(poll.poll_id, [os.urandom(32) for _ in range(5)], [1] * 5)
    )
    forged.credit([new_token_key()[1] for _ in range(5)], poll.points)
    minted = [forged.city.mint_token(poll, 1) for _ in range(5)]
    forged.cast([forged.city.ballot(poll, key, [0]) for key in poll.tokens + minted])
    forged.close_and_publish()

    verdict = verify(city, poll.poll_id, forged.deployment)

    assert failed(verdict) == {13}
    check13 = next(c for c in verdict.checks if c.number == 13)
    assert check13.failures == [
        "5 pseudonymous (v1) issuances, backed by no request",
        "stratum 1: 7 issuances for a register of 6",
    ]


def test_a_request_signed_by_a_key_outside_the_register_fails_check_13(city, forge, issuer_keys):
    poll = _poll(city, issuer_keys)
    forged = Forged(city, forge, poll, issue=False)
    forged.issue([(RESIDENTS[0], 0)])
    key, record = forged.city.request_token(poll, RESIDENTS[1], 0, signer=new_token_key()[0])
    forged.city.record_issuances(poll, [record])
    forged.credit([RESIDENTS[1]], poll.points)
    forged.cast([forged.city.ballot(poll, k, [0]) for k in [*poll.tokens, key]])
    forged.close_and_publish()

    verdict = verify(city, poll.poll_id, forged.deployment)

    assert failed(verdict) == {13}
    check13 = next(c for c in verdict.checks if c.number == 13)
    assert check13.failures == [f"{RESIDENTS[1].lower()}: the request is signed by another key"]


def test_a_second_credit_fails_check_12_only(city, forge, issuer_keys):
    poll = _poll(city, issuer_keys)
    forged = Forged(city, forge, poll, issue=False)
    forged.issue([(r, 0) for r in REGISTERS[0][:2]])
    forged.credit([REGISTERS[0][0]], poll.points)
    forged.close_and_publish()

    verdict = verify(city, poll.poll_id, forged.deployment)

    assert failed(verdict) == {12}
    check12 = next(c for c in verdict.checks if c.number == 12)
    assert check12.failures == ["credited 60 points; 2 tokens × 20 = 40", f"{REGISTERS[0][0]} credited 2 times"]


def test_a_stratum_over_its_register_size_fails_check_13(city, forge, issuer_keys):
    """A register that commits 2 residents of stratum 1 while 3 are issued there: the third is
    not provable, and the count is over the size."""
    poll = city.create_poll(issuer_keys=issuer_keys, strata=2, register=[REGISTERS[0], REGISTERS[1][:2]])
    forged = Forged(city, forge, poll, issue=False)
    forged.issue([(r, 1) for r in REGISTERS[1][:2]])
    forged.issue([(REGISTERS[1][2], 1)])
    forged.close_and_publish()

    verdict = verify(city, poll.poll_id, forged.deployment)

    assert failed(verdict) == {13}
    check13 = next(c for c in verdict.checks if c.number == 13)
    assert check13.failures[-1] == "stratum 1: 3 issuances for a register of 2"
    assert _figures(verdict)[1] == (1, 2, 3, 0, 3)


def test_a_poll_with_no_register_fails_check_13(city, forge, issuer_keys):
    """A PollCreated with no RegisterCommitted (a v1 poll, or a contract that skipped it)."""
    poll = _poll(city, issuer_keys)
    forged = Forged(city, forge, poll, issue=False)
    stray = poll.poll_id + 500
    created = forge.events.PollCreated().get_logs(
        from_block=city.deployment.start_block, argument_filters={"pollId": poll.poll_id}
    )[0]["args"]
    params = tuple(created[name] for name in PARAMETERS)
    forged.city.admin.transact(forge.functions.createPoll(stray, params))

    verdict = verify(city, stray, forged.deployment)

    check13 = next(c for c in verdict.checks if c.number == 13)
    assert not check13.passed and "committed no register" in check13.detail
    assert [f.register_size for f in verdict.strata] == [None, None]

"""Protocol v2 on anvil, through the real PollBook: the trustees' key ceremony (check 14), the
release share by share (check 15) and HPKE ballots bound to their token (check 16).

Each test runs the ceremony with the testkit's trustees (COCKTAIL-DKG over P-256, every message
signed and relayed to PollBook), breaks one rule and asserts the verifier names it by number.
"""

from __future__ import annotations

import os

from veche_core import dkg, p256
from veche_core.ceremony import ComplaintReason, MessageKind
from veche_testkit.city import City
from veche_verify.checks import Verdict

from .conftest import RESIDENTS, close_and_publish, failed, run_cli, verify

V2_CHECKS = {1, 2, 3, 4, 5, 6, 9, 10, 12, 13, 14, 15, 16}


def check(verdict, number):
    return next(c for c in verdict.checks if c.number == number)


def _flip_share_to(member: int, threshold: int, count: int):
    """Rewrite a round-1 payload so that the share to `member` (1-based) fails its AEAD."""

    def tamper(payload: bytes) -> bytes:
        offset = 33 * threshold + 98 + 56 * (member - 1) + 8  # past the length prefix
        return payload[:offset] + bytes([payload[offset] ^ 1]) + payload[offset + 1 :]

    return tamper


def test_a_v2_poll_passes_every_check(city, new_poll):
    poll = new_poll(voters=6, version=2, option_count=3)
    assert poll.election_public_key[0] in (2, 3) and len(poll.election_public_key) == 33
    ballots = [city.ballot(poll, key, [i % 3]) for i, key in enumerate(poll.tokens)]
    city.cast(poll, ballots)
    city.cast(poll, [city.ballot(poll, poll.tokens[0], [2])])  # a revote
    close_and_publish(city, poll)

    verdict = verify(city, poll.poll_id)

    assert failed(verdict) == set() and verdict.verdict is Verdict.PASS
    assert {c.number for c in verdict.checks} == V2_CHECKS
    assert verdict.recomputed == verdict.published == [1, 2, 3]
    assert check(verdict, 14).counts == {"attempts": 1, "members": 3, "threshold": 2}
    assert verify(city, poll.poll_id, workers=2).to_dict() == verdict.to_dict()


def test_a_trustee_sending_a_bad_share_is_caught_named_and_the_ceremony_restarts_without_it(city, new_poll):
    poll = new_poll(voters=4, version=2, ceremony=False)
    complaints = city.run_ceremony(poll, tamper={1: _flip_share_to(1, 2, 3)})
    assert complaints == [(0, 1, ComplaintReason.ShareDecryption)]  # trustee 0 names trustee 1
    attempt, members, certified, key = city.poll_book.functions.ceremony(poll.poll_id).call()
    assert (attempt, list(members), certified) == (1, [0, 1, 2], False)

    city.restart_ceremony(poll, [1])
    assert city.run_ceremony(poll) == []
    city.advance_to(poll.opens_at)
    city.cast(poll, [city.ballot(poll, key, [1]) for key in poll.tokens])
    close_and_publish(city, poll)

    verdict = verify(city, poll.poll_id)

    assert failed(verdict) == set() and verdict.verdict is Verdict.PASS
    c14 = check(verdict, 14)
    assert c14.counts == {"attempts": 2, "members": 2, "threshold": 2}
    assert f"trustee 1 ({city.trustees[1].address}) was shown at fault by trustee 0's complaint" in c14.detail
    assert verdict.recomputed == [0, 4, 0]


def test_check_14_fails_when_the_city_excludes_a_trustee_a_false_complaint_accused(city, new_poll):
    """Trustee 0 accuses an honest trustee 1 (reason 1, its round 1 is fine). Excluding the
    accused is not justified by that complaint: check 14 fails; excluding the false complainer
    would have been."""
    poll = new_poll(voters=2, version=2, ceremony=False)
    city.run_ceremony(poll, certify=False)
    city.post_ceremony_message(
        poll, 0, MessageKind.Complaint, dkg.Complaint(1, ComplaintReason.MalformedRound1).encode()
    )
    city.restart_ceremony(poll, [1])
    city.run_ceremony(poll)
    city.advance_to(poll.opens_at)
    city.cast(poll, [city.ballot(poll, key, [0]) for key in poll.tokens])
    close_and_publish(city, poll)

    verdict = verify(city, poll.poll_id)

    assert failed(verdict) == {14} and verdict.verdict is Verdict.FAIL
    assert check(verdict, 14).failures == [
        f"attempt 2 excluded trustee 1 ({city.trustees[1].address}), whom attempt 1 does not show at fault"
    ]
    assert verdict.recomputed == verdict.published == [2, 0, 0]  # the certified key still counts


def test_excluding_a_false_complainer_or_a_no_show_is_justified(city, new_poll):
    poll = new_poll(voters=2, version=2, ceremony=False, trustee_count=3, threshold=1)
    city.run_ceremony(poll, absent=[2])  # trustee 2 never posts its round 1
    city.post_ceremony_message(
        poll, 0, MessageKind.Complaint, dkg.Complaint(1, ComplaintReason.MalformedRound1).encode()
    )
    city.advance_to(city.round1_deadline(poll))  # trustee 2 is late only from then
    city.restart_ceremony(poll, [0, 2])
    assert city.run_ceremony(poll) == []
    city.advance_to(poll.opens_at)
    city.cast(poll, [city.ballot(poll, key, [2]) for key in poll.tokens])
    close_and_publish(city, poll)

    verdict = verify(city, poll.poll_id)

    assert failed(verdict) == set()
    detail = check(verdict, 14).detail
    assert "trustee 0" in detail and "filed a complaint the evidence refutes" in detail
    assert "trustee 2" in detail and "posted no round-1 message by the round-1 deadline" in detail


def test_excluding_a_trustee_before_its_round_1_deadline_fails_check_14(city, new_poll):
    """A trustee that has not posted its round 1 yet is not at fault until halfway from the
    attempt's start to the opening: the city cannot drop a slow trustee as soon as the ceremony
    begins."""
    poll = new_poll(voters=2, version=2, ceremony=False, trustee_count=3, threshold=2)
    city.run_ceremony(poll, absent=[2], certify=False)
    deadline = city.round1_deadline(poll)
    assert city.now() < deadline
    city.restart_ceremony(poll, [2])  # too early
    assert city.run_ceremony(poll) == []
    city.advance_to(poll.opens_at)
    city.cast(poll, [city.ballot(poll, key, [1]) for key in poll.tokens])
    close_and_publish(city, poll)

    verdict = verify(city, poll.poll_id)

    assert failed(verdict) == {14}
    assert check(verdict, 14).failures == [
        f"attempt 2 excluded trustee 2 ({city.trustees[2].address}), whom attempt 1 does not show at fault"
    ]


def test_check_14_fails_on_a_certification_that_does_not_verify(city, new_poll):
    """PollBook checks lengths and signers, not Schnorr signatures: a trustee can certify with a
    signature that does not verify, and every verifier names it."""
    poll = new_poll(voters=2, version=2, ceremony=False)
    city.run_ceremony(poll, tamper_certification={2: lambda p: p[:-1] + bytes([p[-1] ^ 1])})
    city.advance_to(poll.opens_at)
    city.cast(poll, [city.ballot(poll, key, [0]) for key in poll.tokens])
    city.advance_to(poll.closes_at)

    verdict = verify(city, poll.poll_id)

    assert 14 in failed(verdict) and verdict.verdict is Verdict.FAIL
    trustee = f"trustee 2 ({city.trustees[2].address})"
    assert check(verdict, 14).failures == [
        f"attempt 1: {trustee}: certification signature does not verify over the transcript"
    ]
    assert "cannot run" in check(verdict, 15).detail  # no key to rebuild from a broken ceremony


def test_a_poll_whose_ceremony_is_unfinished_is_not_yet_and_cannot_take_ballots(city, new_poll):
    poll = new_poll(voters=1, version=2, ceremony=False)
    city.run_ceremony(poll, certify=False)

    verdict = verify(city, poll.poll_id)

    assert verdict.verdict is Verdict.NOT_YET and check(verdict, 14).not_yet
    assert "the trustees' ceremony is under way" in check(verdict, 14).detail


def test_a_wrong_released_share_is_named_and_the_count_succeeds_with_k_others(city, new_poll):
    poll = new_poll(voters=3, version=2, threshold=2)
    city.cast(poll, [city.ballot(poll, key, [2]) for key in poll.tokens])
    city.advance_to(poll.closes_at)
    city.post_share(poll, 0, dkg.encode_release_share(p256.random_scalar(os.urandom)))
    city.release_shares(poll, [1, 2])

    verdict = verify(city, poll.poll_id)

    c15 = check(verdict, 15)
    assert not c15.passed and c15.failures == [
        f"trustee 0 ({city.trustees[0].address}) released a share that does not match its commitments"
    ]
    assert verdict.recomputed == [0, 0, 3]  # rebuilt from trustees 1 and 2
    assert check(verdict, 16).passed


def test_fewer_than_k_shares_cannot_be_counted_yet_and_never_pass(city, new_poll):
    poll = new_poll(voters=2, version=2, threshold=2)
    city.cast(poll, [city.ballot(poll, key, [0]) for key in poll.tokens])
    city.advance_to(poll.closes_at)
    city.release_shares(poll, [1])

    verdict = verify(city, poll.poll_id)

    assert verdict.verdict is Verdict.NOT_YET
    c15 = check(verdict, 15)
    assert c15.not_yet and "1 valid key shares of the 2 needed are on chain" in c15.detail
    assert check(verdict, 16).not_yet and verdict.recomputed is None


def test_a_ciphertext_copied_into_another_tokens_ballot_does_not_open(city, new_poll):
    """A v2 ciphertext is bound to its token (HPKE info): copied into another token's ballot it
    opens under no key, so the copy is the copier's spoiled ballot, never a second vote."""
    poll = new_poll(voters=2, version=2)
    original = city.ballot(poll, poll.tokens[0], [1])
    copy = city.ballot(poll, poll.tokens[1], ciphertext=original.ciphertext)
    city.cast(poll, [original, copy])
    close_and_publish(city, poll)

    verdict = verify(city, poll.poll_id)

    assert failed(verdict) == set()
    assert verdict.recomputed == [0, 1, 0]
    assert [s["token"] for s in verdict.spoiled] == [poll.tokens[1].address]
    assert check(verdict, 16).counts == {"counted": 2, "spoiled": 1}


def test_veche_verify_all_passes_v1_and_v2_polls_alike(anvil, issuer_keys, tmp_path):
    """The CLI over a deployment holding a v1 poll (a dealt key) and a v2 poll (the trustees'):
    each verified by its own rules, both PASS, exit 0; the report names the v2 checks."""
    city = City.deploy_on_dev_chain(anvil.url)  # its own deployment: only this test's polls
    polls = [city.create_poll(issuer_keys=issuer_keys, strata=1, version=v) for v in (1, 2)]
    for poll in polls:
        city.issue_tokens(poll, [(r, 0) for r in RESIDENTS[:3]])
        city.cast(poll, [city.ballot(poll, key, [i % 2]) for i, key in enumerate(poll.tokens)])
    for poll in polls:
        close_and_publish(city, poll)

    code, report = run_cli(anvil.url, city.deployment, "all", tmp_path=tmp_path)

    assert code == 0 and report["verdict"] == "PASS", report
    checks = {p["pollId"]: {c["number"] for c in p["checks"]} for p in report["polls"]}
    assert checks[polls[0].poll_id] >= {7, 8} and not checks[polls[0].poll_id] & {14, 15, 16}
    assert checks[polls[1].poll_id] >= {14, 15, 16} and not checks[polls[1].poll_id] & {7, 8}
    # The report says who could have held each poll's secret before close.
    origin = {p["pollId"]: (p["protocol"], p["electionKey"]) for p in report["polls"]}
    assert origin[polls[0].poll_id][0] == 1 and "dealt by the city's API" in origin[polls[0].poll_id][1]
    assert origin[polls[1].poll_id][0] == 2 and "key ceremony on chain" in origin[polls[1].poll_id][1]

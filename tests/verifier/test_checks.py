"""Each numbered check, broken by chain state that violates exactly that rule.

A clean poll passes every check; each test below then builds a poll that breaks one rule and
asserts that the verifier fails that check by number and passes the others. Checks 3 and 4
cannot be broken through the real PollBook (it refuses such ballots), and check 5 needs a relay
that misbehaves (and its rule, ballots carried twice or equivocated); those polls are mirrored
onto EventForge, a stand-in for a broken or malicious contract.
"""

from __future__ import annotations

import os
from dataclasses import replace

from veche_core import blind_rsa, key_shares
from veche_core.dataset import DatasetRow, dataset_hash
from veche_core.rpc import RpcClient
from veche_testkit.city import call_arguments, new_token_key
from veche_verify.chain import read_snapshot
from veche_verify.checks import Verdict, count_poll, verify_poll

from .conftest import RESIDENTS, Forged, close_and_publish, failed, verify

POLL_CHECKS = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13}


def test_clean_poll_passes_every_check(city, new_poll):
    poll = new_poll(voters=8, option_count=4, max_choices=2)
    ballots = [city.ballot(poll, key, [i % 4, (i + 1) % 4]) for i, key in enumerate(poll.tokens)]
    city.cast(poll, ballots)
    city.cast(poll, [city.ballot(poll, poll.tokens[0], [3])])  # a revote: the last ballot counts
    close_and_publish(city, poll)

    verdict = verify(city, poll.poll_id)

    assert failed(verdict) == set()
    assert {c.number for c in verdict.checks} == POLL_CHECKS
    assert len(verdict.superseded) == 1 and verdict.superseded[0]["token"] == poll.tokens[0].address
    # Token 0 revoted for option 3 alone; tokens 1..7 chose {i % 4, (i + 1) % 4}.
    expected = [0, 0, 0, 0]
    for i in range(1, 8):
        expected[i % 4] += 1
        expected[(i + 1) % 4] += 1
    expected[3] += 1
    assert verdict.recomputed == verdict.published == expected
    assert sum(sum(counts) for counts in verdict.by_stratum.values()) == sum(expected)

    # Read and checked by worker processes over block ranges: the same verdict.
    parallel = verify(city, poll.poll_id, workers=2)
    assert parallel.to_dict() == verdict.to_dict()


def test_check_1_fails_on_an_undecodable_issuer_key(city, issuer_keys):
    good = issuer_keys[0].public_key.encode()
    poll = city.create_poll(issuer_keys=issuer_keys, raw_issuer_keys=[good, b"\x01not an RSA key"], strata=2)
    city.issue_tokens(poll, [(r, 0) for r in RESIDENTS[30:33]])
    city.cast(poll, [city.ballot(poll, key, [1]) for key in poll.tokens])
    close_and_publish(city, poll)

    verdict = verify(city, poll.poll_id)

    assert failed(verdict) == {1}
    assert "stratum 1 does not decode" in verdict.checks[0].detail


def test_check_2_fails_on_a_forged_token_signature(city, new_poll):
    poll = new_poll(voters=4)
    forged_key = city.mint_token(poll, 0, issuer=blind_rsa.generate_private_key())
    city.cast(poll, [city.ballot(poll, key, [0]) for key in poll.tokens] + [city.ballot(poll, forged_key, [2])])
    close_and_publish(city, poll, exclude=frozenset({forged_key.address}))  # an honest count leaves it out

    verdict = verify(city, poll.poll_id)

    assert failed(verdict) == {2}
    check2 = next(c for c in verdict.checks if c.number == 2)
    assert len(check2.failures) == 1 and forged_key.address in check2.failures[0]
    assert verdict.recomputed == [4, 0, 0]


def test_check_3_fails_on_a_ballot_signed_by_another_key(city, forge, new_poll):
    poll = new_poll(voters=4)
    forged = Forged(city, forge, poll)
    intruder, _ = new_token_key()
    good = [forged.city.ballot(poll, key, [1]) for key in poll.tokens[1:]]
    forged.cast(good + [forged.city.ballot(poll, poll.tokens[0], [2], signer=intruder)])
    forged.close_and_publish(exclude=frozenset({poll.tokens[0].address}))

    verdict = verify(city, poll.poll_id, forged.deployment)

    assert failed(verdict) == {3}
    assert verdict.recomputed == [0, 3, 0]


def test_check_4_fails_on_a_ballot_outside_the_window(city, forge, new_poll):
    poll = new_poll(voters=3)
    forged = Forged(city, forge, poll)
    forged.cast([forged.city.ballot(poll, key, [0]) for key in poll.tokens[:2]])
    city.advance_to(poll.closes_at + 5)
    late = poll.tokens[2]
    forged.cast([forged.city.ballot(poll, late, [1])])
    forged.close_and_publish(exclude=frozenset({late.address}))

    verdict = verify(city, poll.poll_id, forged.deployment)

    assert failed(verdict) == {4}
    assert verdict.recomputed == [2, 0, 0]


def test_check_5_fails_when_one_relay_posts_a_ballot_twice(city, forge, new_poll):
    poll = new_poll(voters=3)
    forged = Forged(city, forge, poll)
    twice = forged.city.ballot(poll, poll.tokens[0], [0])
    forged.cast([twice] + [forged.city.ballot(poll, k, [2]) for k in poll.tokens[1:]])
    forged.cast([twice])  # the same relay sent an acknowledged ballot again
    forged.close_and_publish()  # the honest count takes the token's ballot once

    verdict = verify(city, poll.poll_id, forged.deployment)

    assert failed(verdict) == {5}
    [failure] = next(c for c in verdict.checks if c.number == 5).failures
    assert failure == f"{poll.tokens[0].address} #1 was posted 2 times by relay {city.admin.address}"
    assert verdict.recomputed == [1, 0, 2] and verdict.carried == []  # one relay: not "carried by two"


def test_check_5_fails_on_a_ballot_posted_twice_where_the_chain_names_no_relay(city, forge, new_poll):
    """A PollBook from before BallotsRelayed: as under the earlier rule, a ballot twice fails."""
    poll = new_poll(voters=2)
    forged = Forged(city, forge, poll)
    twice = forged.city.ballot(poll, poll.tokens[0], [0])
    forged.cast([twice, forged.city.ballot(poll, poll.tokens[1], [1])], named=False)
    forged.cast([twice], relay=city.relayer, named=False)
    forged.close_and_publish()

    verdict = verify(city, poll.poll_id, forged.deployment)

    assert failed(verdict) == {5} and verdict.recomputed == [1, 1, 0]
    [failure] = next(c for c in verdict.checks if c.number == 5).failures
    assert failure.endswith("was posted 2 times by a relay the chain does not name")
    assert verdict.by_relay == {None: 2} and verdict.carried == []


def test_a_ballot_carried_by_two_relays_counts_once_and_the_poll_passes(city, forge, new_poll):
    """docs/protocol.md §6 check 5: a client that retried on a second relay may have its ballot
    posted by both; it counts once, its first copy on chain gives its dataset row, and both
    relays are listed."""
    poll = new_poll(voters=3)
    forged = Forged(city, forge, poll)
    retried = forged.city.ballot(poll, poll.tokens[0], [0])
    forged.cast([retried] + [forged.city.ballot(poll, k, [2]) for k in poll.tokens[1:]], relay=city.relayer)
    forged.cast([retried], relay=city.admin)
    forged.close_and_publish()

    verdict = verify(city, poll.poll_id, forged.deployment)

    assert failed(verdict) == set() and verdict.recomputed == [1, 0, 2]
    token = poll.tokens[0].address
    [carried] = verdict.carried
    assert carried["token"] == token and carried["relays"] == [city.relayer.address, city.admin.address]
    first, again = carried["blocks"]
    assert first < again
    [row] = [r for r in verdict.counted_rows if r.token == token.lower()]
    assert row.block == first
    assert verdict.counted_by_relay() == [{"relay": city.relayer.address, "name": None, "counted": 3}]
    assert "1 carried by more than one relay" in next(c for c in verdict.checks if c.number == 5).detail


def test_two_ballots_with_a_tokens_last_sequence_are_its_equivocation_and_neither_counts(city, forge, new_poll):
    """docs/protocol.md §6 check 5: only the token's key signs its ballots, so two different ones
    with the same (last) sequence are its holder's doing; the relays' order must not pick one,
    so neither counts, the poll passes, and they are listed. A higher sequence settles it."""
    poll = new_poll(voters=3)
    forged = Forged(city, forge, poll)
    torn, settled = poll.tokens[0], poll.tokens[1]
    forged.cast(
        [
            forged.city.ballot(poll, torn, [0], sequence=1),
            forged.city.ballot(poll, settled, [0], sequence=1),
            forged.city.ballot(poll, poll.tokens[2], [2]),
        ]
    )
    forged.cast(
        [forged.city.ballot(poll, torn, [1], sequence=1), forged.city.ballot(poll, settled, [1], sequence=1)],
        relay=city.relayer,
    )
    forged.cast([forged.city.ballot(poll, settled, [1], sequence=2)])  # its holder settles it
    forged.close_and_publish(exclude=frozenset({torn.address}))  # the honest count leaves it out

    verdict = verify(city, poll.poll_id, forged.deployment)

    assert failed(verdict) == set() and verdict.recomputed == [0, 1, 1]
    [equivocation] = verdict.equivocations
    assert equivocation["token"] == torn.address and equivocation["sequence"] == 1 and equivocation["ballots"] == 2
    assert torn.address.lower() not in {r.token for r in verdict.counted_rows}
    assert sorted(c["sequence"] for c in verdict.superseded if c["token"] == settled.address) == [1, 1]
    assert "1 tokens equivocated" in next(c for c in verdict.checks if c.number == 5).detail


def test_a_revote_counts_wherever_it_stands_on_chain(city, forge, new_poll):
    """The contract does not judge sequences: a revote mined before the ballot it replaces
    (a batch sent again after a dropped transaction) still wins by its sequence."""
    poll = new_poll(voters=3)
    forged = Forged(city, forge, poll)
    key = poll.tokens[0]
    forged.cast(
        [forged.city.ballot(poll, key, [0], sequence=2)] + [forged.city.ballot(poll, k, [2]) for k in poll.tokens[1:]]
    )
    forged.cast([forged.city.ballot(poll, key, [1], sequence=1)])
    city.advance_to(poll.closes_at)
    shares = []
    for index in range(poll.threshold):
        share = key_shares.open_trustee_share(poll.trustee_keys[index].secret_key, poll.sealed_shares[index])
        city.admin.transact(forge.functions.submitKeyShare(poll.poll_id, index, city.trustees[index].address, share))
        shares.append(share)
    counts, rows = forged.city.count(poll, shares, poll_book=forge)

    verdict_before = verify(city, poll.poll_id, forged.deployment)
    assert [c["sequence"] for c in verdict_before.superseded] == [1]
    assert verdict_before.recomputed == [1, 0, 2]
    assert counts == [1, 0, 2] and len(rows) == 3  # the city's own count agrees
    city.admin.transact(forge.functions.publishResult(poll.poll_id, counts, dataset_hash(rows)))

    verdict = verify(city, poll.poll_id, forged.deployment)

    assert failed(verdict) == set()


def test_check_6_fails_when_a_stratum_counts_more_ballots_than_tokens(city, new_poll):
    poll = new_poll(voters=4)  # two tokens in each stratum
    # A token the issuer signed without recording its issuance.
    extra = city.mint_token(poll, 0)
    city.cast(poll, [city.ballot(poll, key, [1]) for key in [*poll.tokens, extra]])
    close_and_publish(city, poll)

    verdict = verify(city, poll.poll_id)

    assert failed(verdict) == {6}
    check6 = next(c for c in verdict.checks if c.number == 6)
    assert check6.failures == ["stratum 0: 3 counted ballots, 2 tokens issued"]


def test_check_7_fails_on_a_wrong_key_share_among_more_than_k(city, new_poll):
    poll = new_poll(voters=3, threshold=2)
    city.cast(poll, [city.ballot(poll, key, [2]) for key in poll.tokens])
    city.advance_to(poll.closes_at)
    city.release_shares(poll, [0, 1])
    # Trustee 2 posts a well-formed share of another secret, with its own member index.
    other = key_shares.split_secret(os.urandom(32), 2, 3)
    city.post_share(poll, 2, other[2])
    city.publish(poll)

    verdict = verify(city, poll.poll_id)

    assert failed(verdict) == {7}
    check7 = next(c for c in verdict.checks if c.number == 7)
    assert check7.failures == ["share 2 does not agree with the shares that rebuild the key"]
    assert verdict.recomputed == [0, 0, 3]


def test_check_7_sets_inconsistent_shares_aside_and_still_counts(city, forge, new_poll):
    """§3.6: a posted share that disagrees (another threshold and identifier, or a member index
    other than its trustee's) never stops the rebuild: check 7 fails and names it, and the key is
    rebuilt from the consistent shares, so the tally is computed and shown."""
    poll = new_poll(voters=3, threshold=2)
    forged = Forged(city, forge, poll)
    forged.cast([forged.city.ballot(poll, key, [1]) for key in poll.tokens])
    city.advance_to(poll.closes_at)
    own = [key_shares.open_trustee_share(poll.trustee_keys[i].secret_key, poll.sealed_shares[i]) for i in range(3)]
    posted = [
        (0, key_shares.split_secret(os.urandom(32), 3, 3)[0]),  # another secret, threshold 3
        (1, own[2]),  # trustee 1 posts member 2's share
        (1, own[1]),  # and then its own
        (2, own[2]),
    ]
    for index, share in posted:
        city.admin.transact(forge.functions.submitKeyShare(poll.poll_id, index, city.trustees[index].address, share))
    counts, rows = forged.city.count(poll, own[1:], poll_book=forge)
    city.admin.transact(forge.functions.publishResult(poll.poll_id, counts, dataset_hash(rows)))

    verdict = verify(city, poll.poll_id, forged.deployment)

    assert failed(verdict) == {7} and verdict.verdict is Verdict.FAIL
    check7 = next(c for c in verdict.checks if c.number == 7)
    assert check7.failures == [
        "share 0 is not a single-group share with the poll's threshold 2",
        "share 1 carries SLIP-39 member index 2",
    ]
    assert verdict.recomputed == verdict.published == [0, 3, 0]


def test_check_7_with_only_k_shares_one_wrong_leaves_nothing_to_count(city, new_poll):
    poll = new_poll(voters=2, threshold=2)
    city.cast(poll, [city.ballot(poll, key, [0]) for key in poll.tokens])
    city.advance_to(poll.closes_at)
    city.release_shares(poll, [0])
    city.post_share(poll, 1, key_shares.split_secret(os.urandom(32), 2, 3)[1])

    verdict = verify(city, poll.poll_id)

    # Without the key nothing can be decrypted: those checks fail closed, they do not pass.
    assert failed(verdict) == {7, 8, 9, 10}
    assert all("cannot run" in c.detail for c in verdict.checks if c.number in {8, 9, 10})


def test_spoiled_ballots_are_listed_not_counted_and_the_poll_passes(city, new_poll):
    """Check 8: a counted ballot that does not open (a blank ciphertext, 50 random bytes) or
    opens to no valid choice is the voter's spoiled ballot: listed with its token, left out of the
    tally and the dataset, and the poll passes. A spoiled revote is its token's last word: the
    token has no valid vote, and its earlier valid ballot stays superseded."""
    poll = new_poll(voters=6)
    t = poll.tokens
    city.cast(
        poll,
        [city.ballot(poll, key, [1]) for key in t[:3]]
        + [
            spoiled_ballot(city, poll, t[3], b""),
            spoiled_ballot(city, poll, t[4], os.urandom(50)),
            city.ballot(poll, t[5], plaintext_bytes=bytes([0x02]) + bytes(1)),  # version 2 does not exist
        ],
    )
    city.cast(poll, [spoiled_ballot(city, poll, t[0], os.urandom(50))])  # token 0 spoils its revote
    close_and_publish(city, poll)

    verdict = verify(city, poll.poll_id)

    assert failed(verdict) == set() and verdict.passed
    assert {s["token"]: s["sequence"] for s in verdict.spoiled} == {t[0].address: 2, **{k.address: 1 for k in t[3:]}}
    check8 = next(c for c in verdict.checks if c.number == 8)
    assert check8.counts == {"counted": 6, "spoiled": 4}
    assert verdict.recomputed == verdict.published == [0, 2, 0]
    assert {row.token for row in verdict.counted_rows} == {t[1].address.lower(), t[2].address.lower()}
    assert [(s["token"], s["sequence"]) for s in verdict.superseded] == [(t[0].address, 1)]


def spoiled_ballot(city, poll, key, ciphertext: bytes):
    """A well-signed ballot of a valid token whose ciphertext is `ciphertext` (as any resident
    can send: the relay cannot see inside a sealed ballot)."""
    return replace(city.ballot(poll, key, [0]), ciphertext=ciphertext).sign(key.private_key, city.domain)


def test_check_8_fails_only_when_it_cannot_run(city, new_poll):
    poll = new_poll(voters=2, threshold=2)
    city.cast(poll, [spoiled_ballot(city, poll, key, b"") for key in poll.tokens])
    city.advance_to(poll.closes_at)
    city.release_shares(poll, [0])
    city.post_share(poll, 1, key_shares.split_secret(os.urandom(32), 2, 3)[1])

    verdict = verify(city, poll.poll_id)

    check8 = next(c for c in verdict.checks if c.number == 8)
    assert not check8.passed and not check8.not_yet and check8.detail.startswith("cannot run: no election secret")
    assert verdict.verdict is Verdict.FAIL and verdict.spoiled == []


def test_check_9_fails_on_a_published_tally_off_by_one(city, new_poll):
    poll = new_poll(voters=3)
    city.cast(poll, [city.ballot(poll, key, [0]) for key in poll.tokens])
    close_and_publish(city, poll, counts=[4, 0, 0])

    verdict = verify(city, poll.poll_id)

    assert failed(verdict) == {9}
    assert verdict.recomputed == [3, 0, 0] and verdict.published == [4, 0, 0]


def test_check_10_fails_on_a_wrong_dataset_hash(city, new_poll):
    poll = new_poll(voters=3)
    city.cast(poll, [city.ballot(poll, key, [0]) for key in poll.tokens])
    close_and_publish(city, poll, data_hash=bytes(32))

    verdict = verify(city, poll.poll_id)

    assert failed(verdict) == {10}


def test_check_10_compares_the_dataset_row_by_row(city, new_poll):
    poll = new_poll(voters=3)
    city.cast(poll, [city.ballot(poll, key, [i % 3]) for i, key in enumerate(poll.tokens)])
    close_and_publish(city, poll)
    rows = verify(city, poll.poll_id).counted_rows

    assert failed(verify(city, poll.poll_id, dataset=rows)) == set()
    changed = [rows[0]._replace(choice=((rows[0].choice[0] + 1) % 3,)), *rows[1:]]
    added = [*rows, DatasetRow("0x" + "ab" * 20, 0, (1,), rows[0].block)]
    missing = rows[1:]
    for broken, expected in ((changed, "row differs"), (added, "not among the counted"), (missing, "missing row")):
        verdict = verify(city, poll.poll_id, dataset=broken)
        assert failed(verdict) == {10}
        check10 = next(c for c in verdict.checks if c.number == 10)
        assert any(expected in f for f in check10.failures), check10.failures


def test_check_12_fails_when_credits_do_not_match_tokens(city, forge, issuer_keys):
    """PollBook credits the poll's points itself; a points contract that credits 15 instead of
    20 is forged."""
    poll = city.create_poll(issuer_keys=issuer_keys, strata=2, points=20)
    forged = Forged(city, forge, poll, issue=False)
    forged.issue([(r, 0) for r in RESIDENTS[20:23]], points=15)
    forged.cast([forged.city.ballot(poll, key, [0]) for key in poll.tokens])
    forged.close_and_publish()

    verdict = verify(city, poll.poll_id, forged.deployment)

    assert failed(verdict) == {12}
    check12 = next(c for c in verdict.checks if c.number == 12)
    assert check12.failures == ["credited 45 points; 3 tokens × 20 = 60"]


def test_ballots_of_a_poll_that_was_never_created_fail_check_1_and_nothing_passes(city, forge, new_poll):
    poll = new_poll()
    forged = Forged(city, forge, poll)
    stray = poll.poll_id + 1000  # no PollCreated on the forge for this id
    forged.city.admin.transact(
        forge.functions.castBallots(
            stray, call_arguments([forged.city.ballot(poll, key, [0]) for key in poll.tokens[:2]])
        ),
        gas=600_000,
    )

    verdict = verify(city, stray, forged.deployment, workers=2)
    assert not verdict.passed and failed(verdict) == POLL_CHECKS
    assert all(check.detail.startswith("cannot run") for check in verdict.checks if check.number != 1)


def test_an_issuance_batch_whose_arrays_differ_in_length_fails_check_1(city, forge, new_poll):
    poll = new_poll()
    forged = Forged(city, forge, poll)
    forged.city.admin.transact(forge.functions.recordPseudonyms(poll.poll_id, [os.urandom(32)], []))

    verdict = verify(city, poll.poll_id, forged.deployment)
    check1 = next(check for check in verdict.checks if check.number == 1)
    assert not check1.passed and any("differ in length" in failure for failure in check1.failures)


def test_count_poll_counts_a_closed_poll_before_its_result_is_published(city, new_poll):
    """The counting the city's publish calls: checks 1–8 and the tally (overall, per stratum, the
    dataset rows) from the chain before any result exists; verify_poll, given the same chain,
    can only fail 9 and 10 (nothing to compare yet), and passes once that count is published."""
    poll = new_poll(voters=5)
    city.cast(poll, [city.ballot(poll, key, [i % 3]) for i, key in enumerate(poll.tokens)])
    city.cast(poll, [city.ballot(poll, poll.tokens[0], [2])])  # a revote
    city.advance_to(poll.closes_at)
    city.release_shares(poll)
    with RpcClient(city.w3.provider.endpoint_uri) as client:
        snapshot = read_snapshot(client, city.deployment, poll.poll_id)

    counted = count_poll(snapshot, poll.poll_id)

    assert [(c.number, c.passed) for c in counted.checks] == [(n, True) for n in range(1, 9)]
    final = {key.address.lower(): ([2] if i == 0 else [i % 3]) for i, key in enumerate(poll.tokens)}
    assert counted.recomputed == [sum(choice == [o] for choice in final.values()) for o in range(3)]
    by_stratum: dict[int, list[int]] = {}
    for key in poll.tokens:
        by_stratum.setdefault(key.stratum, [0, 0, 0])[final[key.address.lower()][0]] += 1
    assert counted.by_stratum == by_stratum
    assert sorted((r.token, r.stratum, list(r.choice)) for r in counted.counted_rows) == sorted(
        (key.address.lower(), key.stratum, final[key.address.lower()]) for key in poll.tokens
    )
    assert failed(verify_poll(snapshot, poll.poll_id)) == {9, 10}

    city.poll_admin.transact(
        city.poll_book.functions.publishResult(poll.poll_id, counted.recomputed, dataset_hash(counted.counted_rows))
    )
    verdict = verify(city, poll.poll_id)
    assert failed(verdict) == set() and verdict.recomputed == counted.recomputed

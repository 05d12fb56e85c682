"""What the city publishes is what `veche-verify` recomputes: one counting rule.

The API's publish counts with the verifier's own code, so the published tally, each stratum's
counts and ballots, the dataset and its hash must equal the verifier's, computed by the
`veche-verify` command as an observer runs it, on a poll built to find where two counts could
part: revotes (one token revotes twice; a ballot and its revote may share a relay batch, which
the relay shuffles), spoiled ballots (a spoiled revote of a valid ballot, a valid revote of a
spoiled one, a spoiled ballot alone), several strata, a multiple-choice question. When the
count cannot run, or a check fails, nothing is published.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from eth_hash.auto import keccak
from web3 import Web3

from veche_api.tally import refusals
from veche_client.sdk import ResidentClient
from veche_core import dataset, plaintext, sealing
from veche_node.contracts import Sender, bind, dev_accounts
from veche_verify.checks import PollVerdict

from .conftest import DATABASES, assert_error, make_api
from .test_flow import release_shares

VERIFY = Path(sys.executable).with_name("veche-verify")
OPTIONS = ("Trees", "Benches", "Lights", "Paths")


@pytest.fixture(scope="module", params=[("sqlite", 1), (DATABASES[-1], 2)], ids=lambda p: f"{p[0]}-{p[1]}-workers")
def api(request, tmp_path_factory):
    """The API counting in the request's thread (the default), and with two worker processes,
    started from a fork server while the API's own threads (the relay, the server) run."""
    database, workers = request.param
    env = make_api(tmp_path_factory, database, count_workers=workers)
    try:
        yield env
    finally:
        env.http.close()
        env.server.stop()
        env.chain.anvil.stop()


def spoil(token) -> bytes:
    """A ciphertext a resident's own client could seal: the right length, but three options
    chosen where two are allowed, so that it opens and does not decode (check 8)."""
    poll = token.poll
    choice = bytes([plaintext.PLAINTEXT_VERSION]) + (0b0111).to_bytes(
        plaintext.plaintext_length(len(poll["options"])) - 1, "big"
    )
    return sealing.seal_ballot(bytes.fromhex(poll["electionKey"][2:]), choice)


def veche_verify(api, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    deployment = tmp_path / "deployment.json"
    api.chain.deployment.save(deployment)
    return subprocess.run(
        [str(VERIFY), "--rpc", api.chain.anvil.url, "--deployment", str(deployment), "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def on_chain_result(api, poll_id: int) -> tuple[bool, list[int], bytes]:
    poll_book, _ = bind(Web3(Web3.HTTPProvider(api.chain.anvil.url)), api.chain.deployment)
    published, counts, data_hash = poll_book.functions.result(poll_id).call()
    return published, list(counts), data_hash


def test_the_published_result_is_the_verifiers_count(api, tmp_path):
    districts = ["Central"] * 12 + ["Northern"] * 11 + ["Eastern"] * 3
    residents = [api.resident(d) for d in districts]
    poll = api.create_poll(options=OPTIONS, max_choices=2)
    api.advance(31)

    final: dict[int, tuple[int, ...] | None] = {}  # resident -> the choice that counts (None: spoiled)
    hashes = []
    tokens: dict[int, str] = {}  # resident -> their token address

    def cast(number: int, resident: ResidentClient, token, choice) -> None:
        reply = (
            resident.cast(token, choice) if choice is not None else resident.cast(token, None, ciphertext=spoil(token))
        )
        assert reply.status_code == 202, reply.text
        hashes.append(reply.json()["ballotHash"])
        final[number] = choice
        tokens[number] = token.account.address

    for number, resident in enumerate(residents):
        token = resident.get_token(api.poll_for(poll["id"], resident))
        first = tuple(sorted({number % 4, (3 * number + 1) % 4}))
        if number == 14:  # Northern: a valid ballot, then a spoiled revote (which is what counts)
            cast(number, resident, token, first)
            cast(number, resident, token, None)
        elif number == 3:  # Central: a spoiled ballot, then a valid revote
            cast(number, resident, token, None)
            cast(number, resident, token, first)
        elif number == 25:  # Eastern: a spoiled ballot alone
            cast(number, resident, token, None)
        else:
            cast(number, resident, token, first)
            if number % 3 == 0:
                cast(number, resident, token, ((number + 1) % 4,))
            if number == 6:
                cast(number, resident, token, ((number + 2) % 4, (number + 3) % 4))
    for ballot_hash in hashes:
        api.wait_ballot(ballot_hash)

    # Only one of the two shares needed: the count cannot run (check 7), nothing is published.
    api.advance(3700)
    release_shares(api, poll, [1])
    assert_error(api.http.post(f"/admin/polls/{poll['id']}/publish", headers=api.admin), 409, "result.check_7_failed")
    assert on_chain_result(api, poll["id"])[0] is False
    assert_error(api.http.get(f"/polls/{poll['id']}/results"), 404, "result.not_published")

    release_shares(api, poll, [2])
    reply = api.http.post(f"/admin/polls/{poll['id']}/publish", headers=api.admin)
    assert reply.status_code == 200, reply.text
    tally = reply.json()
    written = tmp_path / "dataset.csv"
    verified = veche_verify(
        api, tmp_path, "poll", str(poll["id"]), "--write-dataset", str(written), "--city", api.server.url
    )
    report = json.loads(verified.stdout)
    # The names the city serves are those its metadataHash commits, the strata's too: the API
    # writes metadata v2, which commits each stratum's districts (docs/protocol.md §3.10).
    assert report["names"]["status"] == "checked", report["names"]
    assert [o["text"] for o in report["names"]["options"]] == list(OPTIONS)
    assert [s["name"] for s in report["names"]["strata"]] == ["Central", "Northern", "Eastern"]
    assert report["names"]["strataCommitted"] is True

    # The verifier's verdict: every check passes; check 8 lists the two spoiled ballots that are
    # the last word of their tokens (the voters', not the city's fault), left out of the count.
    assert {c["number"] for c in report["checks"] if not c["passed"]} == set(), verified.stdout
    assert verified.returncode == 0 and report["verdict"] == "PASS"
    spoiled = {tokens[n] for n in (14, 25)}
    assert report["spoiledCount"] == 2 and {s["token"] for s in report["spoiled"]} == spoiled
    assert report["supersededCount"] == len(hashes) - len(residents)

    # The tally: the verifier's, the chain's, and the one the test expects.
    expected = Counter(option for choice in final.values() if choice for option in choice)
    assert (
        tally["counts"]
        == report["tally"]["recomputed"]
        == report["tally"]["published"]
        == [expected[i] for i in range(4)]
    )
    published, counts, data_hash = on_chain_result(api, poll["id"])
    assert published and counts == tally["counts"]

    # The dataset: the verifier's file, byte for byte, and its hash on chain.
    csv_bytes = written.read_bytes()
    assert api.http.get(f"/polls/{poll['id']}/dataset.csv").content == csv_bytes
    assert tally["datasetHash"] == "0x" + keccak(csv_bytes).hex() == "0x" + data_hash.hex()
    rows = dataset.parse(csv_bytes.decode())
    assert tally["ballotsCounted"] == len(rows) == len(residents) - 2
    assert not spoiled & {Web3.to_checksum_address(r.token) for r in rows}

    # Strata: every one shown (none is withheld: the dataset lists them all), with the verifier's
    # counts per stratum and the dataset's rows per stratum as ballots (Northern has 10 valid
    # ballots, Eastern 2), and as register sizes those committed on chain (the test's pool of
    # residents enrolled in advance is in the registers too).
    by_stratum = report["tally"]["byStratum"]
    ballots = Counter(r.stratum for r in rows)
    committed = [s["registerSize"] for s in report["strata"]]
    assert [(s["name"], s["registerSize"], s["ballots"]) for s in tally["perStratum"]] == [
        ("Central", committed[0], ballots[0]),
        ("Northern", committed[1], 10),
        ("Eastern", committed[2], 2),
    ]
    assert committed[1] >= 11 and committed[2] >= 3
    for stratum in tally["perStratum"]:
        assert stratum["counts"] == by_stratum.get(str(stratum["stratum"]), [0] * len(OPTIONS))

    # What the API serves afterwards is what it published.
    results = api.http.get(f"/polls/{poll['id']}/results").json()
    assert (results["counts"], results["perStratum"], results["datasetHash"]) == (
        tally["counts"],
        tally["perStratum"],
        tally["datasetHash"],
    )


def test_a_failing_check_publishes_nothing(api):
    """A ballot whose token signature does not verify (check 2) reaches the chain from another
    relayer: the API would never relay it, and no count that includes or ignores it is one an
    observer accepts. The publish is refused with the check's number; nothing goes on chain."""
    admin, relayer = dev_accounts(6)[0], dev_accounts(6)[5]  # the deployer holds the admin role
    w3 = Web3(Web3.HTTPProvider(api.chain.anvil.url))
    poll_book, _ = bind(w3, api.chain.deployment)
    Sender(w3, admin).transact(
        poll_book.functions.grantRole(poll_book.functions.RELAYER_ROLE().call(), relayer.address)
    )

    residents = [api.resident("Central") for _ in range(2)]
    poll = api.create_poll(lasts=600)
    api.advance(31)
    tokens = [r.get_token(api.poll_for(poll["id"], r)) for r in residents]
    reply = residents[0].cast(tokens[0], [0])
    assert reply.status_code == 202, reply.text
    api.wait_ballot(reply.json()["ballotHash"])
    forged = ResidentClient.make_ballot(tokens[1], [1], credential=tokens[0].credential)  # another token's signature
    Sender(w3, relayer).transact(
        poll_book.functions.castBallots(
            poll["id"],
            [
                (
                    forged.token_address,
                    forged.sequence,
                    forged.stratum,
                    forged.ciphertext,
                    forged.token_credential,
                    forged.signature,
                )
            ],
        )
    )

    api.advance(700)
    release_shares(api, poll, [0, 1])
    reply = api.http.post(f"/admin/polls/{poll['id']}/publish", headers=api.admin)
    assert_error(reply, 409, "result.check_2_failed")
    assert "check 2" in reply.json()["error"]["message"]
    assert on_chain_result(api, poll["id"])[0] is False
    assert_error(api.http.get(f"/polls/{poll['id']}/results"), 404, "result.not_published")


def test_a_poll_the_chain_does_not_hold_is_refused_as_check_1():
    """count_poll judges nothing of a poll with no event on chain (CANNOT_VERIFY, no checks):
    the publish must still refuse it by number, not publish an empty count."""
    [refusal] = refusals(PollVerdict(7, [], unverifiable="no poll 7 on PollBook 0x… of chain 1"))
    assert (refusal.number, refusal.passed, refusal.detail) == (
        1,
        False,
        "cannot run: no poll 7 on PollBook 0x… of chain 1",
    )

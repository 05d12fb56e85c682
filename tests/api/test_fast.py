"""Unit tests (no chain): the hot path's byte functions against the protocol core's own, and the
relay's batch cut by count and by encoded calldata size."""

from __future__ import annotations

import random

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import to_checksum_address

from veche_api import fast
from veche_api.core.config import Settings
from veche_api.relay import CREDIT, RECORD_ISSUANCES, ballot_outcomes, plan_batch
from veche_core import events
from veche_core.ballot import Ballot, ballot_hash
from veche_core.typed_data import poll_book_domain, receipt_digest, sign_digest
from veche_node.contracts import contract_type

POLL_BOOK = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DOMAIN = poll_book_domain(31337, POLL_BOOK)


def _ballots(count: int, rng: random.Random, ciphertext: int | None = None, credential: int | None = None):
    out = []
    for _ in range(count):
        account = Account.create()
        out.append(Ballot(
            rng.randrange(1, 2**31), account.address, rng.randrange(1, 2**63), rng.randrange(2**32),
            rng.randbytes(ciphertext if ciphertext is not None else rng.randrange(0, 200)),
            rng.randbytes(credential if credential is not None else rng.randrange(1, 400)),
        ).sign(account.key, DOMAIN))
    return out


def test_fast_functions_match_the_protocol_core():
    rng = random.Random(7)
    relayer = Account.create()
    signer = fast.DigestSigner(relayer.key)
    for ballot in _ballots(20, rng):
        assert fast.encode_ballot(ballot) == ballot.encode()
        assert fast.ballot_hash(ballot) == ballot_hash(ballot)
        assert fast.checksum_address(ballot.token) == to_checksum_address(ballot.token)
        fast.verify_ballot_signature(ballot, DOMAIN)
        digest = receipt_digest(DOMAIN, ballot.poll_id, ballot.token, ballot.sequence, ballot_hash(ballot), 12345)
        assert signer.sign_receipt(DOMAIN, ballot.poll_id, ballot.token, ballot.sequence, ballot_hash(ballot), 12345) \
            == sign_digest(relayer.key, digest)


def test_cast_ballots_calldata_and_its_size():
    rng = random.Random(8)
    ballots = _ballots(30, rng)
    items = [(b.token, b.sequence, b.stratum, b.ciphertext, b.token_credential, b.signature) for b in ballots]
    data = fast.encode_cast_ballots(5, items)
    assert data == fast.CAST_BALLOTS_SELECTOR + abi_encode(
        ["uint256", "(address,uint64,uint32,bytes,bytes,bytes)[]"], [5, items])
    assert len(data) == fast.CAST_BALLOTS_OVERHEAD + sum(
        fast.ballot_calldata_size(len(b.ciphertext), len(b.token_credential), len(b.signature)) for b in ballots)
    # the selectors are the contracts' own
    selectors = {}
    for name in ("PollBook", "CityPoints"):
        for entry in contract_type(name)["abi"]:
            if entry.get("type") == "function":
                def kind(i):
                    if i["type"].startswith("tuple"):
                        return "(" + ",".join(kind(c) for c in i["components"]) + ")" + i["type"][5:]
                    return i["type"]
                signature = f"{entry['name']}({','.join(kind(i) for i in entry['inputs'])})"
                selectors[signature] = fast.keccak(signature.encode())[:4]
    assert selectors["castBallots(uint256,(address,uint64,uint32,bytes,bytes,bytes)[])"] == fast.CAST_BALLOTS_SELECTOR
    assert selectors["recordIssuances(uint256,bytes32[],uint32[])"] == RECORD_ISSUANCES
    assert selectors["credit(uint256,address[],uint256)"] == CREDIT


def test_batches_are_cut_by_calldata_size_and_by_count():
    rng = random.Random(9)
    # 3 options' sealed ballot and a 2048-bit token credential: ~850 bytes of calldata each, so a
    # 500-ballot batch would be ~420 KB, far over geth's 128 KiB transaction limit.
    ballots = _ballots(500, rng, ciphertext=120, credential=290)
    sizes = [(i, fast.ballot_calldata_size(len(b.ciphertext), len(b.token_credential), len(b.signature)))
             for i, b in enumerate(ballots)]
    max_bytes = Settings().max_batch_bytes
    assert max_bytes == 120_000
    position, batches = 0, []
    while position < len(sizes):
        ids, full = plan_batch(sizes[position:], 500, max_bytes)
        batches.append(ids)
        position += len(ids)
        data = fast.encode_cast_ballots(1, [
            (b.token, b.sequence, b.stratum, b.ciphertext, b.token_credential, b.signature)
            for b in (ballots[i] for i in ids)])
        assert len(data) <= max_bytes
        if position < len(sizes):
            assert full  # cut by size: waiting would not make it bigger
            assert len(data) + sizes[position][1] > max_bytes  # the next ballot would not fit
    assert [i for ids in batches for i in ids] == list(range(500))  # nothing lost, order kept
    assert len(batches) > 3
    # by count, when the ballots are small
    ids, full = plan_batch([(i, 100) for i in range(50)], 20, max_bytes)
    assert ids == list(range(20)) and full
    # neither cap reached: not full (the batch waits for batch_interval)
    ids, full = plan_batch([(i, 100) for i in range(5)], 20, max_bytes)
    assert ids == list(range(5)) and not full
    # a single ballot over the cap still goes (alone) rather than blocking the queue
    ids, full = plan_batch([(1, 200_000), (2, 100)], 20, max_bytes)
    assert ids == [1] and full


def test_ballot_outcomes_read_from_receipt_logs():
    token_a, token_b, token_c = (Account.create().address for _ in range(3))
    poll_topic = "0x" + (3).to_bytes(32, "big").hex()

    def log(spec, token, words, poll=poll_topic, address=POLL_BOOK):
        return {"address": address.lower(), "topics": ["0x" + spec.topic0.hex(), poll,
                "0x" + bytes(12).hex() + token[2:].lower()], "data": "0x" + "".join(w.to_bytes(32, "big").hex() for w in words)}

    logs = [
        log(events.BALLOT_CAST, token_a, [1, 0, 0xA0, 0xC0, 0xE0]),
        log(events.BALLOT_REJECTED, token_b, [4, 1]),
        log(events.BALLOT_REJECTED, token_c, [2, 2]),  # retired code (was StaleSequence): as a number
        log(events.BALLOT_CAST, token_b, [9, 0], poll="0x" + (4).to_bytes(32, "big").hex()),  # another poll
        log(events.BALLOT_CAST, token_b, [8, 0], address="0x" + "11" * 20),  # another contract
    ]
    assert ballot_outcomes(logs, POLL_BOOK, 3) == {
        (token_a.lower(), 1): ("confirmed", None),
        (token_b.lower(), 4): ("rejected", "BadSignature"),
        (token_c.lower(), 2): ("rejected", "2"),
    }

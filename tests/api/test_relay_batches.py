"""Unit tests (no chain): the relay's batch cut by count and by encoded calldata size, the
ballots' outcomes read from a castBallots receipt's logs, and one handler per transaction kind.
(The encoders themselves are compared with eth-abi in tests/core/test_calls.py.)"""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from eth_account import Account

from veche_api.core.config import Settings
from veche_api.core.db import Database
from veche_api.models import ChainTx
from veche_api.relay import Relay, ballot_outcomes, plan_batch
from veche_core import abi, calls, events
from veche_core.ballot import Ballot
from veche_core.deployment import Deployment
from veche_core.typed_data import poll_book_domain

POLL_BOOK = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DOMAIN = poll_book_domain(31337, POLL_BOOK)


def _ballots(count: int, rng: random.Random, ciphertext: int | None = None, credential: int | None = None):
    out = []
    for _ in range(count):
        account = Account.create()
        out.append(
            Ballot(
                rng.randrange(1, 2**31),
                account.address,
                rng.randrange(1, 2**63),
                rng.randrange(2**32),
                rng.randbytes(ciphertext if ciphertext is not None else rng.randrange(0, 200)),
                rng.randbytes(credential if credential is not None else rng.randrange(1, 400)),
            ).sign(account.key, DOMAIN)
        )
    return out


def test_batches_are_cut_by_calldata_size_and_by_count():
    rng = random.Random(9)
    # 3 options' sealed ballot and a 2048-bit token credential: ~850 bytes of calldata each, so a
    # 500-ballot batch would be ~420 KB, far over geth's 128 KiB transaction limit.
    ballots = _ballots(500, rng, ciphertext=120, credential=290)
    sizes = [
        (i, calls.ballot_calldata_size(len(b.ciphertext), len(b.token_credential), len(b.signature)))
        for i, b in enumerate(ballots)
    ]
    max_bytes = Settings().max_batch_bytes
    assert max_bytes == 120_000
    position, batches = 0, []
    while position < len(sizes):
        ids, full = plan_batch(sizes[position:], 500, max_bytes)
        batches.append(ids)
        position += len(ids)
        data = calls.encode_cast_ballots(
            1,
            [
                (b.token, b.sequence, b.stratum, b.ciphertext, b.token_credential, b.signature)
                for b in (ballots[i] for i in ids)
            ],
        )
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

    def log(spec, token, values, poll=3, address=POLL_BOOK):
        """A log as a node returns it in a receipt."""
        return {
            "address": address.lower(),
            "topics": [spec.topic, events.uint_topic(poll), events.address_topic(token)],
            "data": "0x" + abi.encode(spec.data_types, values).hex(),
            "blockNumber": "0x7",
            "transactionHash": "0x" + "ab" * 32,
            "logIndex": "0x0",
        }

    logs = [
        log(events.BALLOT_CAST, token_a, [1, 0, b"", b"", b""]),
        log(events.BALLOT_REJECTED, token_b, [4, 1]),
        log(events.BALLOT_REJECTED, token_c, [2, 2]),  # retired code (was StaleSequence): as a number
        log(events.BALLOT_CAST, token_b, [9, 0, b"", b"", b""], poll=4),  # another poll
        log(events.BALLOT_CAST, token_b, [8, 0, b"", b"", b""], address="0x" + "11" * 20),  # another contract
    ]
    assert ballot_outcomes(logs, POLL_BOOK, 3) == {
        (token_a.lower(), 1): ("confirmed", None),
        (token_b.lower(), 4): ("rejected", "BadSignature"),
        (token_c.lower(), 2): ("rejected", "2"),
    }


def test_every_transaction_kind_has_its_own_handler(tmp_path):
    """One handler per ChainTx.Kind, and a logged transaction of a kind the relay does not know
    is refused (its ChainTx is then quarantined with that reason), never taken for another kind."""
    accounts = [Account.create() for _ in range(3)]
    keys = SimpleNamespace(relayer=accounts[0], issuer=accounts[1], admin=accounts[2])
    deployment = Deployment(31337, POLL_BOOK, "0x" + "22" * 20, 0)
    relay = Relay(
        Settings(rpc_url="http://127.0.0.1:9"), Database(f"sqlite:///{tmp_path / 'relay.db'}"), deployment, keys
    )
    handlers = {kind: relay.handler(kind) for kind in ChainTx.Kind}
    assert handlers[ChainTx.Kind.BALLOTS] is relay.ballots
    assert handlers[ChainTx.Kind.ISSUANCES] is handlers[ChainTx.Kind.CREDITS] is relay.issuances
    assert handlers[ChainTx.Kind.REDEEM] is handlers[ChainTx.Kind.DONATE] is relay.points
    assert all(kind in handler.kinds for kind, handler in handlers.items())
    with pytest.raises(ValueError):
        relay.handler("airdrop")

"""The hand-laid encoders (the ballot's own encoding, castBallots, the issuance calls) and the
receipt signer against generic implementations: the core's strict ABI encoder and eth-abi as
the oracles for the bytes, eth-keys for the signatures. (The selectors against the compiled
contracts: tests/contracts/test_wire_formats.py.)"""

from __future__ import annotations

import random

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_keys import keys
from eth_utils import to_checksum_address

from veche_core import abi, calls
from veche_core._keccak import keccak
from veche_core.abi import checksum_address
from veche_core.ballot import BALLOT_ABI_TYPES, Ballot, ballot_hash, encode_ballot
from veche_core.errors import EncodingError
from veche_core.typed_data import DigestSigner, poll_book_domain, receipt_digest, sign_digest

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


def _fields(ballot: Ballot) -> list:
    return [
        ballot.poll_id,
        ballot.token,
        ballot.sequence,
        ballot.stratum,
        ballot.ciphertext,
        ballot.token_credential,
        ballot.signature,
    ]


def test_ballot_encoding_hash_signature_and_receipt_match_generic_implementations():
    rng = random.Random(7)
    relayer = Account.create()
    signer = DigestSigner(relayer.key)
    for ballot in _ballots(20, rng):
        generic = abi.encode(list(BALLOT_ABI_TYPES), _fields(ballot))
        assert encode_ballot(ballot) == ballot.encode() == generic
        assert generic == abi_encode(list(BALLOT_ABI_TYPES), _fields(ballot))
        assert ballot_hash(ballot) == ballot.hash == keccak(generic)
        assert checksum_address(ballot.token) == to_checksum_address(ballot.token)
        ballot.verify_signature(DOMAIN)
        digest = receipt_digest(DOMAIN, ballot.poll_id, ballot.token, ballot.sequence, ballot_hash(ballot), 12345)
        by_eth_keys = keys.PrivateKey(relayer.key).sign_msg_hash(digest).to_bytes()
        expected = by_eth_keys[:64] + bytes([by_eth_keys[64] + 27])
        assert signer.sign(digest) == sign_digest(relayer.key, digest) == expected


def test_cast_ballots_calldata_and_its_size():
    rng = random.Random(8)
    ballots = _ballots(30, rng)
    items = [(b.token, b.sequence, b.stratum, b.ciphertext, b.token_credential, b.signature) for b in ballots]
    data = calls.encode_cast_ballots(5, items)
    assert data == calls.CAST_BALLOTS_SELECTOR + abi_encode(
        ["uint256", "(address,uint64,uint32,bytes,bytes,bytes)[]"], [5, items]
    )
    assert len(data) == calls.CAST_BALLOTS_OVERHEAD + sum(
        calls.ballot_calldata_size(len(b.ciphertext), len(b.token_credential), len(b.signature)) for b in ballots
    )
    assert calls.encode_cast_ballots(5, []) == calls.CAST_BALLOTS_SELECTOR + abi_encode(
        ["uint256", "(address,uint64,uint32,bytes,bytes,bytes)[]"], [5, []]
    )


def test_issuance_calldata():
    rng = random.Random(9)
    records = [
        calls.IssuanceRecord(
            Account.create().address,
            rng.randrange(2**32),
            rng.randbytes(32),
            rng.randrange(2**64),
            rng.randbytes(65),
            rng.randrange(2**32),
            [rng.randbytes(32) for _ in range(rng.randrange(6))],
        )
        for _ in range(30)
    ]
    expected = calls.RECORD_ISSUANCES_SELECTOR + abi_encode(
        ["uint256", "(address,uint32,bytes32,uint64,bytes,uint32,bytes32[])[]"], [3, [tuple(r) for r in records]]
    )
    assert calls.encode_record_issuances(3, records) == expected
    raw = [r._replace(resident=bytes.fromhex(str(r.resident)[2:])) for r in records]
    assert calls.encode_record_issuances(3, raw) == expected
    assert calls.encode_record_issuances(3, []) == calls.RECORD_ISSUANCES_SELECTOR + abi_encode(
        ["uint256", "(address,uint32,bytes32,uint64,bytes,uint32,bytes32[])[]"], [3, []]
    )


def test_key_ceremony_calls():
    rng = random.Random(10)
    trustee = Account.create().address
    key, signature = b"\x03" + rng.randbytes(32), rng.randbytes(65)
    assert calls.encode_register_trustee_key(trustee, key, 7, signature) == calls.selector(
        "registerTrusteeKey(address,bytes,uint64,bytes)"
    ) + abi_encode(["address", "bytes", "uint64", "bytes"], [trustee, key, 7, signature])
    assert calls.encode_register_trustee_key(
        bytes.fromhex(trustee[2:]), key, 7, signature
    ) == calls.encode_register_trustee_key(trustee, key, 7, signature)
    for length in (0, 2, 132, 98, 622, 22_793):
        payload = rng.randbytes(length)
        assert calls.encode_post_ceremony_message(2**256 - 1, 255, 254, 3, payload, signature) == calls.selector(
            "postCeremonyMessage(uint256,uint8,uint8,uint8,bytes,bytes)"
        ) + abi_encode(
            ["uint256", "uint8", "uint8", "uint8", "bytes", "bytes"], [2**256 - 1, 255, 254, 3, payload, signature]
        )
    for excluded in ([], [3], [0, 9, 254]):
        assert calls.encode_restart_ceremony(5, excluded) == calls.selector(
            "restartCeremony(uint256,uint8[])"
        ) + abi_encode(["uint256", "uint8[]"], [5, excluded])
    with pytest.raises(EncodingError):
        calls.encode_restart_ceremony(5, [256])
    with pytest.raises(EncodingError):
        calls.encode_post_ceremony_message(1, 256, 0, 1, b"", b"")


def test_role_id_and_balance_call():
    account = Account.create().address
    assert calls.role_id("RELAYER_ROLE") == keccak(b"RELAYER_ROLE")
    assert calls.encode_balance_of(account) == calls.selector("balanceOf(address)") + abi_encode(["address"], [account])


def test_abi_signature_spells_structs_as_tuples():
    entry = {
        "type": "function",
        "name": "castBallots",
        "inputs": [
            {"type": "uint256", "name": "pollId"},
            {
                "type": "tuple[]",
                "name": "ballots",
                "components": [
                    {"type": "address"},
                    {"type": "uint64"},
                    {"type": "uint32"},
                    {"type": "bytes"},
                    {"type": "bytes"},
                    {"type": "bytes"},
                ],
            },
        ],
    }
    assert calls.abi_signature(entry) == calls.CAST_BALLOTS
    assert calls.abi_signature({"type": "error", "name": "PollBookNotOpen", "inputs": []}) == "PollBookNotOpen()"

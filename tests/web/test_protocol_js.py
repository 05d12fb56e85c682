"""The browser's protocol module (web/src/protocol.js, run under Node) against the Python core,
byte for byte: token message, plaintexts, EIP-712 digests and signatures, ballot hash, sealed
boxes, receipts, and a whole token issuance (JS blinds, Python signs, JS unblinds and builds a
ballot that the Python core accepts). No browser needed: this runs wherever node does."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from eth_account import Account
from eth_hash.auto import keccak

from veche_core import blind_rsa, plaintext, sealing, token
from veche_core.ballot import Ballot
from veche_core.receipt import sign_receipt
from veche_core.typed_data import (
    city_points_domain, donation_digest, issuance_request_digest, poll_book_domain, recover_signer,
    redemption_digest,
)

ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).parent / "protocol_js.mjs"
CHAIN_ID = 31337
POLL_BOOK = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CITY_POINTS = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"


def js(request: dict) -> dict:
    node = shutil.which("node")
    assert node, "node is needed"
    assert (ROOT / "node_modules" / "ethers").is_dir(), "npm install first (make install)"
    proc = subprocess.run([node, str(HELPER)], input=json.dumps(request), capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert "error" not in answer, answer["error"]
    return answer


def h(data: bytes) -> str:
    return "0x" + bytes(data).hex()


@pytest.fixture(scope="module")
def issuer():
    return blind_rsa.generate_private_key()


def test_encodings_digests_and_signatures_match_the_core():
    identity = Account.create()
    token_account = Account.create()
    election = sealing.generate_keypair()
    relayer = Account.create()
    ballot = Ballot(7, token_account.address, 3, 2, bytes(range(50)), b"\x01" + bytes(288), bytes(65))
    receipt = sign_receipt(relayer.key, relayer.address, CHAIN_ID, POLL_BOOK, 7, token_account.address, 3,
                           keccak(b"ballot"), 1_790_000_000).to_dict()
    choices = [([0], 10, 1), ([9], 10, 1), ([1, 8], 10, 2), ([2], 3, 1), ([0, 7, 8, 254], 255, 4)]
    blinded = bytes(range(256))
    answer = js({
        "op": "encode", "chainId": CHAIN_ID, "pollBook": POLL_BOOK, "cityPoints": CITY_POINTS, "pollId": 7,
        "stratum": 2, "token": token_account.address, "choices": choices, "blinded": h(blinded),
        "deadline": 1_800_000_000, "electionKey": h(election.public_key), "receipt": receipt,
        "identity": {"address": identity.address, "privateKey": h(identity.key)},
        "ballot": {"pollId": 7, "token": token_account.address, "sequence": 3, "stratum": 2,
                   "ciphertext": h(ballot.ciphertext), "tokenSignature": h(ballot.token_credential),
                   "signature": h(ballot.signature)},
    })
    domain = poll_book_domain(CHAIN_ID, POLL_BOOK)
    assert answer["tokenMessage"] == h(token.token_message(CHAIN_ID, POLL_BOOK, 7, 2, token_account.address))
    assert answer["choices"] == [h(plaintext.encode_choice(c, n, m)) for c, n, m in choices]
    assert answer["choices"][:3] == ["0x010001", "0x010200", "0x010102"]  # protocol.md §3.4's examples
    assert answer["ballotHash"] == h(ballot.hash)
    assert answer["ballotDigest"] == h(ballot.digest(domain))
    assert answer["issuanceDigest"] == h(issuance_request_digest(domain, 7, 2, blinded, 1_800_000_000))
    points = city_points_domain(CHAIN_ID, CITY_POINTS)
    redemption, donation = answer["redemption"], answer["donation"]
    assert recover_signer(redemption_digest(points, identity.address, 3, 5, 1_800_000_000),
                          bytes.fromhex(redemption["signature"][2:])) == identity.address
    assert recover_signer(donation_digest(points, identity.address, 2, 7, 5, 1_800_000_000),
                          bytes.fromhex(donation["signature"][2:])) == identity.address
    assert answer["identityAddress"] == identity.address
    sealed = bytes.fromhex(answer["sealed"][2:])
    assert len(sealed) == 48 + 2
    assert plaintext.decode_choice(sealing.open_ballot(election.secret_key, sealed), 3, 1) == (1,)
    assert answer["receiptProblems"] == []
    assert answer["tamperedReceiptProblems"] == ["the relay signature does not match"]
    assert answer["shortCode"] == "-".join([receipt["ballotHash"][2:6], receipt["ballotHash"][6:10], receipt["ballotHash"][10:14]])


def test_a_token_issued_to_the_browser_code_makes_a_ballot_the_core_accepts(issuer):
    identity = Account.create()
    election = sealing.generate_keypair()
    poll = {"id": 4, "chainId": CHAIN_ID, "pollBook": POLL_BOOK, "options": ["a", "b", "c"], "maxChoices": 1,
            "electionKey": h(election.public_key), "issuerKeys": [h(bytes(264)), h(issuer.public_key.encode())]}
    identity_json = {"address": identity.address, "privateKey": h(identity.key)}
    request = js({"op": "request", "poll": poll, "stratum": 1, "identity": identity_json, "deadline": 1_800_000_000})
    body = request["body"]
    blinded = bytes.fromhex(body["blindedMessage"][2:])
    digest = issuance_request_digest(poll_book_domain(CHAIN_ID, POLL_BOOK), 4, 1, blinded, 1_800_000_000)
    assert recover_signer(digest, bytes.fromhex(body["signature"][2:])) == identity.address
    assert body["resident"] == identity.address and body["pollId"] == 4 and body["stratum"] == 1
    message = token.token_message(CHAIN_ID, POLL_BOOK, 4, 1, request["token"]["address"])
    assert bytes.fromhex(request["inputMsg"][2:]).endswith(message)

    blind_signature = blind_rsa.blind_sign(issuer, blinded)
    done = js({"op": "finish", "poll": poll, "stratum": 1, "token": request["token"], "inputMsg": request["inputMsg"],
               "inv": request["inv"], "blindSignature": h(blind_signature), "choices": [2]})
    credential = bytes.fromhex(done["credential"][2:])
    assert len(credential) == 289
    token.verify_token_signature(issuer.public_key, CHAIN_ID, POLL_BOOK, 4, 1, request["token"]["address"], credential)
    b = done["ballot"]
    ballot = Ballot(b["pollId"], b["token"], b["sequence"], b["stratum"], bytes.fromhex(b["ciphertext"][2:]),
                    bytes.fromhex(b["tokenSignature"][2:]), bytes.fromhex(b["signature"][2:]))
    ballot.verify_signature(poll_book_domain(CHAIN_ID, POLL_BOOK))
    assert done["ballotHash"] == h(ballot.hash)
    assert plaintext.decode_choice(sealing.open_ballot(election.secret_key, ballot.ciphertext), 3, 1) == (2,)


def test_issuer_keys_are_decoded_strictly(issuer):
    good = issuer.public_key.encode()
    bad = [
        b"\x02" + good[1:],  # version
        good[:1] + b"\x05" + good[2:],  # variant
        good + b"\x00",  # trailing byte
        good[:-4] + (3).to_bytes(4, "big"),  # e
        good[:4] + b"\x00" + good[5:],  # leading zero byte of n
        good[:4 + 255] + bytes([good[4 + 255] & 0xFE]) + good[4 + 256:],  # even n
    ]
    errors = js({"op": "badkeys", "keys": [h(good)] + [h(k) for k in bad]})["errors"]
    assert errors[0] is None
    assert all(errors[1:]), errors

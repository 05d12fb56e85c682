"""v2 ballot sealing across implementations: the browser's web/src/hpke.js (@hpke/core over
WebCrypto, @noble/curves to decompress the joint key) against RFC 9180's vectors and against the
Python core (veche_core.hpke, cryptography over OpenSSL), byte for byte and ballot for ballot.

Under Node (tests/web/hpke_js.mjs) and once inside Debian's chromium (tests/web/hpke_browser.mjs),
so the browser's own WebCrypto seals too."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from veche_core import hpke, plaintext
from veche_core.errors import SealingError

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
CHROMIUM = Path("/usr/bin/chromium")
RFC = json.loads((ROOT / "tests" / "vectors" / "rfc9180-p256-sha256-aes128gcm.json").read_text())["vectors"][0]
CHAIN_ID = 31337
POLL_BOOK = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
TOKENS = ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"]


def node(script: str, request: dict, timeout: float = 60) -> dict:
    binary = shutil.which("node")
    assert binary, "node is needed"
    for package in ("@hpke/core", "@noble/curves"):
        assert (ROOT / "node_modules" / package).is_dir(), f"{package} is missing: npm install first (make install)"
    proc = subprocess.run(
        [binary, str(HERE / script)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert "error" not in answer, answer["error"]
    return answer


def h(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def b(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def election() -> tuple[hpke.Opener, bytes]:
    secret = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value.to_bytes(32, "big")
    return hpke.Opener(secret), secret


def info(token: str = TOKENS[0], stratum: int = 2, poll_id: int = 7) -> bytes:
    return hpke.ballot_info(CHAIN_ID, POLL_BOOK, poll_id, stratum, token)


def test_hpke_core_passes_the_rfc_vectors():
    answer = node("hpke_js.mjs", {"op": "rfc", "vector": RFC})
    for field in ("skRm", "pkRm", "skEm", "pkEm", "enc"):
        assert answer[field] == "0x" + RFC[field], field
    assert [e["sequence_number"] for e in answer["encryptions"]] == [0, 1, 2, 4, 255, 256]
    for got, want in zip(answer["encryptions"], RFC["encryptions"], strict=True):
        assert got["ct"] == "0x" + want["ct"], got["sequence_number"]
        assert got["opened"] == "0x" + want["pt"], got["sequence_number"]
    assert answer["exports"] == answer["receiverExports"] == ["0x" + x["exported_value"] for x in RFC["exports"]]


def test_the_info_layout_is_the_cores():
    ballots = [
        {"chainId": CHAIN_ID, "pollBook": POLL_BOOK, "pollId": 7, "stratum": 2, "token": TOKENS[0]},
        {
            "chainId": 1,
            "pollBook": POLL_BOOK.lower(),
            "pollId": str(2**256 - 1),
            "stratum": 2**32 - 1,
            "token": TOKENS[1],
        },
        {"chainId": 0, "pollBook": "0x" + "00" * 20, "pollId": 0, "stratum": 0, "token": "0x" + "ff" * 20},
    ]
    infos = node("hpke_js.mjs", {"op": "info", "ballots": ballots})["infos"]  # a uint256 travels as a decimal string
    want = [hpke.ballot_info(x["chainId"], x["pollBook"], int(x["pollId"]), x["stratum"], x["token"]) for x in ballots]
    assert infos == [h(i) for i in want]
    assert {len(b(i)) for i in infos} == {123}


def test_ballots_sealed_in_js_open_in_python():
    opener, _ = election()
    choices = [([i], 10, 1) for i in range(10)] + [([0, 9], 10, 2), ([1, 2, 3], 10, 3)]
    ballots = [
        {"info": h(info(TOKENS[k % 2], stratum=k % 3)), "plaintext": h(plaintext.encode_choice(c, n, m))}
        for k, (c, n, m) in enumerate(choices)
    ]
    answer = node("hpke_js.mjs", {"op": "seal", "jointKey": h(opener.joint_key), "ballots": ballots})
    uncompressed = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), opener.joint_key).public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert answer["uncompressed"] == h(uncompressed)
    ciphertexts = [b(c) for c in answer["ciphertexts"]]
    assert {len(c) for c in ciphertexts} == {hpke.sealed_length(plaintext.plaintext_length(10))}
    assert all(c[0] == 0x02 and c[1] == 0x04 for c in ciphertexts)
    assert len({c[1:66] for c in ciphertexts}) == len(ciphertexts)  # a fresh ephemeral key each
    for ballot, ciphertext in zip(ballots, ciphertexts, strict=True):
        assert h(opener.open(ciphertext, b(ballot["info"]))) == ballot["plaintext"]


def test_ballots_sealed_in_python_open_in_js():
    opener, secret = election()
    ballots = []
    for k in range(6):
        ballot_info = info(TOKENS[k % 2], stratum=k)
        choice = plaintext.encode_choice([k], 8, 1)
        ballots.append(
            {
                "info": h(ballot_info),
                "ciphertext": h(hpke.seal_ballot(opener.joint_key, ballot_info, choice)),
                "want": h(choice),
            }
        )
    sealed = b(ballots[0]["ciphertext"])
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    refused = [
        {"info": h(info(TOKENS[1])), "ciphertext": h(sealed)},  # copied to another token
        {"info": h(info(poll_id=8)), "ciphertext": h(sealed)},  # to another poll
        {"info": ballots[0]["info"], "ciphertext": h(bytes(tampered))},
        {"info": ballots[0]["info"], "ciphertext": h(b"\x01" + sealed[1:])},
        {"info": ballots[0]["info"], "ciphertext": h(sealed[:81])},
    ]
    results = node("hpke_js.mjs", {"op": "open", "secret": h(secret), "ballots": ballots + refused})["results"]
    assert [r.get("plaintext") for r in results[: len(ballots)]] == [x["want"] for x in ballots]
    assert [r.get("error") for r in results[len(ballots) :]] == [
        "ballot does not open under this key and info",
        "ballot does not open under this key and info",
        "ballot does not open under this key and info",
        "unknown ballot ciphertext version 0x01 (v2 is 0x02)",
        "v2 ballot ciphertext is 81 bytes, shorter than its 82-byte overhead",
    ]
    short = node("hpke_js.mjs", {"op": "open", "secret": h(secret[:31]), "ballots": ballots[:1]})["results"]
    assert short == [{"error": "the election secret is a 32-byte scalar"}]


def test_a_js_ballot_copied_to_another_tokens_info_does_not_open_in_python():
    opener, _ = election()
    mine = info(TOKENS[0])
    choice = plaintext.encode_choice([1], 3, 1)
    sealed = b(
        node(
            "hpke_js.mjs",
            {"op": "seal", "jointKey": h(opener.joint_key), "ballots": [{"info": h(mine), "plaintext": h(choice)}]},
        )["ciphertexts"][0]
    )
    assert opener.open(sealed, mine) == choice
    for other in (
        info(TOKENS[1]),
        info(stratum=3),
        info(poll_id=8),
        hpke.ballot_info(CHAIN_ID + 1, POLL_BOOK, 7, 2, TOKENS[0]),
    ):
        with pytest.raises(SealingError, match="does not open under this key and info"):
            opener.open(sealed, other)


def test_joint_keys_are_checked_in_js():
    opener, _ = election()
    key = opener.joint_key
    uncompressed = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key).public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    off_curve = b"\x02" + (2**256 - 1).to_bytes(32, "big")  # x ≥ p
    errors = node(
        "hpke_js.mjs",
        {"op": "badkeys", "keys": [h(k) for k in (key, uncompressed, b"\x04" + key[1:], key[:32], off_curve)]},
    )["errors"]
    assert errors[0] is None
    assert errors[1:] == [
        "the joint key must be a 33-byte compressed P-256 point (0x02/0x03 ‖ x)",
        "the joint key must be a 33-byte compressed P-256 point (0x02/0x03 ‖ x)",
        "the joint key must be a 33-byte compressed P-256 point (0x02/0x03 ‖ x)",
        "the joint key is not a point on P-256",
    ]


def test_the_browser_bundle_seals_ballots_python_opens():
    """No browser is a failure, not a skip: `make test` installs it (`make browser`)."""
    assert CHROMIUM.exists(), f"the browser tests need {CHROMIUM}: run `make browser`"
    opener, _ = election()
    ballots = [
        {"info": h(info(TOKENS[k % 2], stratum=k)), "plaintext": h(plaintext.encode_choice([k], 5, 1))}
        for k in range(5)
    ]
    answer = node(
        "hpke_browser.mjs",
        {"chromiumPath": str(CHROMIUM), "jointKey": h(opener.joint_key), "ballots": ballots, "benchCount": 50},
        timeout=120,
    )
    assert answer["secure"], "WebCrypto needs a secure context"
    assert "Chrome" in answer["userAgent"]
    for ballot, ciphertext in zip(ballots, answer["ciphertexts"], strict=True):
        assert h(opener.open(b(ciphertext), b(ballot["info"]))) == ballot["plaintext"]
    with pytest.raises(SealingError, match="does not open"):
        opener.open(b(answer["ciphertexts"][0]), b(ballots[1]["info"]))
    assert answer["sealsPerSecond"] > 0

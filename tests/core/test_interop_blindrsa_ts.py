"""Interop with @cloudflare/blindrsa-ts (an independent RFC 9474 implementation), both ways:
(a) the TS library prepares, blinds and finalises; ours blind-signs and verifies;
(b) ours prepares, blinds and finalises; the TS library blind-signs and verifies."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from veche_core import blind_rsa, token
from veche_core.blind_rsa import PrivateKey, Variant
from veche_core.errors import SignatureError

HELPER = Path(__file__).parent / "interop" / "blindrsa_ts.mjs"
PACKAGE = Path(__file__).resolve().parents[2] / "node_modules" / "@cloudflare" / "blindrsa-ts"


def ts(request: dict) -> dict:
    node = shutil.which("node")
    assert node, "node is needed for the interop tests"
    assert PACKAGE.is_dir(), f"{PACKAGE} is missing (npm install)"
    result = subprocess.run(
        [node, str(HELPER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def _key_fields(key: PrivateKey) -> dict:
    public = key.public_key
    return {
        "variant": public.variant.rfc_name,
        "n": public.n.to_bytes(public.modulus_length, "big").hex(),
        "e": public.e.to_bytes(3, "big").hex(),
    }


@pytest.fixture(params=[Variant.PSS_RANDOMIZED, Variant.PSSZERO_RANDOMIZED, Variant.PSS_DETERMINISTIC])
def key(request, issuer_key):
    return PrivateKey(issuer_key.n, issuer_key.e, issuer_key.d, issuer_key.p, issuer_key.q, request.param)


def test_ts_client_with_our_signer(key):
    message = token.token_message(31337, bytes(20), 7, 3, bytes(range(20)))
    blinded = ts({"op": "blind", "msg": message.hex(), **_key_fields(key)})
    input_msg = bytes.fromhex(blinded["input_msg"])
    assert input_msg.endswith(message)
    assert len(input_msg) == len(message) + key.variant.prefix_length

    blind_sig = blind_rsa.blind_sign(key, bytes.fromhex(blinded["blinded_msg"]))
    final = ts(
        {
            "op": "finalize",
            "input_msg": blinded["input_msg"],
            "blind_sig": blind_sig.hex(),
            "inv": blinded["inv"],
            **_key_fields(key),
        }
    )
    assert "error" not in final, final
    blind_rsa.verify(key.public_key, input_msg, bytes.fromhex(final["sig"]))
    with pytest.raises(SignatureError):
        blind_rsa.verify(key.public_key, input_msg + b"x", bytes.fromhex(final["sig"]))


def test_our_client_with_ts_signer(key):
    public = key.public_key
    input_msg = blind_rsa.prepare(public, b"veche ballot token")
    blinding = blind_rsa.blind(public, input_msg)
    signed = ts(
        {
            "op": "blind_sign",
            "pkcs8": key.to_pkcs8().hex(),
            "blinded_msg": blinding.blinded_msg.hex(),
            **_key_fields(key),
        }
    )
    assert "error" not in signed, signed
    signature = blind_rsa.finalize(public, input_msg, bytes.fromhex(signed["blind_sig"]), blinding.inv)
    assert ts({"op": "verify", "input_msg": input_msg.hex(), "sig": signature.hex(), **_key_fields(key)}) == {
        "valid": True
    }
    tampered = bytes([signature[0] ^ 1]) + signature[1:]
    assert ts({"op": "verify", "input_msg": input_msg.hex(), "sig": tampered.hex(), **_key_fields(key)}) == {
        "valid": False
    }


def test_ts_rejects_our_signature_under_the_other_salt_length(issuer_key):
    """Variants are not interchangeable across implementations either (exact sLen)."""
    public = issuer_key.public_key
    input_msg = blind_rsa.prepare(public, b"m")
    blinding = blind_rsa.blind(public, input_msg)
    signature = blind_rsa.finalize(
        public, input_msg, blind_rsa.blind_sign(issuer_key, blinding.blinded_msg), blinding.inv
    )
    fields = _key_fields(issuer_key) | {"variant": Variant.PSSZERO_RANDOMIZED.rfc_name}
    assert ts({"op": "verify", "input_msg": input_msg.hex(), "sig": signature.hex(), **fields}) == {"valid": False}

"""The v2 key ceremony (COCKTAIL-DKG, P-256): every part of C2SP's P-256 vectors, then Veche's
own scenarios (a full 4-of-7 ceremony, each way a sender can cheat and the complaint that names
it, false complaints, forged proofs, malformed messages, release and rebuild).

The vectors' secrets are derived from their seed as Appendix B says (static keys by labeled
hash mod q; each participant's coefficients a_0..a_{t−1} and then e_i read from a counter-mode
SHA-256 stream, 32 bytes per candidate, rejected while ≥ q). With that stream `dkg.round1`
reproduces every round-1 byte, so the encryption, the PoPs and the signatures are checked by
reproduction, not only by verification.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import struct
from dataclasses import replace
from functools import cache

import pytest
from core_vectors import load_vectors
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from veche_core import ceremony, dkg, p256, xaes
from veche_core.ceremony import ComplaintReason
from veche_core.dkg import Party
from veche_core.errors import CeremonyError, CeremonyFaultError, EncodingError, KeyShareError

COCKTAIL = load_vectors("cocktail-dkg-p256-sha256.json")
VECTORS = COCKTAIL["vectors"]
VECTOR_IDS = [f"{v['t']}-of-{v['n']}" + ("-payload" if "payloads" in v else "") for v in VECTORS]
SEED = bytes.fromhex(COCKTAIL["seed"])
q = p256.ORDER


# --- the vectors' seed expansion (Appendix B) --------------------------------------------------


def _labeled(vector, label: str) -> bytes:
    prefix = SEED + dkg.CIPHERSUITE_ID + struct.pack("<II", vector["t"], vector["n"])
    return hashlib.sha256(prefix + label.encode()).digest()


def _static_key(vector, i: int) -> dkg.StaticKey:
    return dkg.StaticKey(int.from_bytes(_labeled(vector, f"static_secret_key_{i}"), "big") % q)


def _stream(prefix: bytes):
    """SHA-256(prefix ‖ u64le(counter)) blocks, read as one byte stream."""
    state = {"counter": 0, "buffer": b""}

    def read(length: int) -> bytes:
        while len(state["buffer"]) < length:
            block = hashlib.sha256(prefix + struct.pack("<Q", state["counter"])).digest()
            state["counter"] += 1
            state["buffer"] += block
        out, state["buffer"] = state["buffer"][:length], state["buffer"][length:]
        return out

    return read


def _round1_rng(vector, i: int):
    prefix = SEED + dkg.CIPHERSUITE_ID + struct.pack("<II", vector["t"], vector["n"])
    return _stream(prefix + f"round1_participant_{i}".encode())


def _keys(vector) -> list[bytes]:
    return [bytes.fromhex(k) for k in vector["config"]["static_public_keys"]]


def _payloads(vector) -> list[bytes] | None:
    return [bytes.fromhex(p) for p in vector["payloads"]] if "payloads" in vector else None


def _vector_message(vector, i: int) -> dkg.Round1Message:
    entry = vector["round1"][i - 1]
    return dkg.Round1Message(
        tuple(p256.decode_point(bytes.fromhex(c)) for c in entry["vss_commitment"]),
        bytes.fromhex(entry["pop"]),
        p256.decode_point(bytes.fromhex(entry["ephemeral_public_key"])),
        tuple(bytes.fromhex(c) for c in entry["encrypted_shares"]),
    )


def _vector_messages(vector) -> list[dkg.Round1Message]:
    return [_vector_message(vector, i) for i in range(1, vector["n"] + 1)]


def _context(vector) -> bytes:
    return bytes.fromhex(vector["context"])


# --- C2SP vectors ------------------------------------------------------------------------------


def test_vector_file_covers_the_configurations():
    assert COCKTAIL["ciphersuite"] == dkg.CIPHERSUITE_ID.decode()
    assert SEED == hashlib.sha256(b"Daniel Bourdrez,Soatok Dreamseeker,Tjaden Hess").digest()
    assert VECTOR_IDS == ["2-of-3", "3-of-5", "7-of-14", "2-of-3-payload"]


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_context_is_the_recommended_construction(vector):
    """The vectors' context is COCKTAIL's RECOMMENDED construction over session_tag."""
    session_tag = bytes.fromhex(vector["session_tag"])
    assert session_tag == f"COCKTAIL-DKG-TEST-VECTOR-{vector['t']}-OF-{vector['n']}".encode()
    assert dkg.derive_context(session_tag, _keys(vector)) == _context(vector)
    # Order, membership and the session all enter the context.
    keys = _keys(vector)
    assert dkg.derive_context(session_tag, keys[::-1]) != _context(vector)
    assert dkg.derive_context(session_tag + b"x", keys) != _context(vector)


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_static_keys(vector):
    for i in range(1, vector["n"] + 1):
        key = _static_key(vector, i)
        assert key.to_bytes().hex() == vector["config"]["static_secret_keys"][i - 1]
        assert key.public_key.hex() == vector["config"]["static_public_keys"][i - 1]


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_round1_reproduced(vector):
    """Commitments, E_i, the PoP (and its intermediates) and every encrypted share, byte for byte."""
    context, keys, payloads = _context(vector), _keys(vector), _payloads(vector)
    for i in range(1, vector["n"] + 1):
        entry = vector["round1"][i - 1]
        message = dkg.round1(
            context,
            vector["t"],
            keys,
            i,
            _static_key(vector, i),
            random_bytes=_round1_rng(vector, i),
            payloads=None if payloads is None else [payloads[i - 1]] * vector["n"],
        )
        assert [c.encode().hex() for c in message.commitments] == entry["vss_commitment"]
        assert message.ephemeral_key.encode().hex() == entry["ephemeral_public_key"]
        assert message.pop.hex() == entry["pop"]
        assert [c.hex() for c in message.ciphertexts] == entry["encrypted_shares"]
        assert message == _vector_message(vector, i)
        # PoP intermediates: the signed message, the nonce and challenge inputs and outputs.
        steps = entry["pop_intermediate"]
        assert message.pop_message(context).hex() == steps["message"]
        nonce_input = bytes.fromhex(steps["nonce_input"])
        assert nonce_input.startswith(b"COCKTAIL-DKG-P256-SHA256-NONCE")
        assert nonce_input.endswith(bytes.fromhex(steps["message"]))
        assert p256.hash_to_scalar(nonce_input) == int(steps["nonce"], 16)
        assert p256.mul_base(int(steps["nonce"], 16)).encode().hex() == steps["nonce_commitment"]
        challenge_input = bytes.fromhex(steps["challenge_input"])
        assert challenge_input == (
            b"COCKTAIL-DKG-P256-SHA256-H7"
            + bytes.fromhex(steps["nonce_commitment"])
            + message.commitments[0].encode()
            + bytes.fromhex(steps["message"])
        )
        assert p256.hash_to_scalar(challenge_input) == int(steps["challenge"], 16)


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_messages_parse_and_pops_verify(vector):
    context, t, n = _context(vector), vector["t"], vector["n"]
    has_payloads = "payloads" in vector
    for message in _vector_messages(vector):
        encoded = message.encode()
        if not has_payloads:
            assert len(encoded) == ceremony.round1_length(t, n)
            assert dkg.Round1Message.decode(encoded, t, n) == message
        else:
            # Veche refuses payloads; COCKTAIL's general framing accepts them.
            with pytest.raises(EncodingError, match="exactly 48 bytes"):
                dkg.Round1Message.decode(encoded, t, n)
        assert dkg.Round1Message.decode(encoded, t, n, allow_payloads=True) == message
        assert message.verify_pop(context)
        assert not message.verify_pop(context[:-1] + bytes([context[-1] ^ 1]))


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_round2_decrypts_to_the_secret_shares(vector):
    context, t, n, keys = _context(vector), vector["t"], vector["n"], _keys(vector)
    payloads = [m.encode() for m in _vector_messages(vector)]
    expected_payloads = _payloads(vector)
    for i in range(1, n + 1):
        share = dkg.round2(context, t, keys, i, _static_key(vector, i), payloads, allow_payloads=True)
        assert share.member == i
        assert p256.encode_scalar(share.secret_share).hex() == vector["round2"][i - 1]["secret_share"]
        assert share.verification_share.hex() == vector["round2"][i - 1]["verification_share"]
        assert share.group_key.hex() == vector["group_public_key"]
        assert share.payloads == (tuple(expected_payloads) if expected_payloads else (b"",) * n)


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_public_outputs(vector):
    messages = _vector_messages(vector)
    assert dkg.group_key(messages).hex() == vector["group_public_key"]
    assert [y.hex() for y in dkg.verification_shares(messages)] == [r["verification_share"] for r in vector["round2"]]
    assert dkg.verification_share(messages, 2).hex() == vector["round2"][1]["verification_share"]


def _vector_transcript(vector) -> bytes:
    extension = bytes.fromhex(vector["extension"])
    return dkg.transcript(_context(vector), vector["t"], _keys(vector), _vector_messages(vector), extension)


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_transcript_hash(vector):
    transcript = _vector_transcript(vector)
    assert hashlib.sha256(transcript).hexdigest() == vector["round3"]["transcript_hash"]
    parsed = dkg.Transcript.decode(transcript)
    assert parsed.encode() == transcript
    assert parsed.context == _context(vector) and parsed.threshold == vector["t"]
    assert len(parsed.static_keys) == vector["n"]
    with pytest.raises(EncodingError):
        dkg.Transcript.decode(transcript + b"\x00")
    with pytest.raises(EncodingError):
        dkg.Transcript.decode(transcript[:-1])
    with pytest.raises(EncodingError, match="another ciphersuite"):
        dkg.Transcript.decode(transcript.replace(b"P-256", b"P-384", 1))


def test_vector_payload_extension_is_the_recommended_hash():
    vector = VECTORS[3]
    payloads = _payloads(vector)
    assert payloads == [_labeled(vector, f"payload_{i}") for i in (1, 2, 3)]
    extension = hashlib.sha256(
        struct.pack("<Q", len(payloads)) + b"".join(struct.pack("<Q", len(p)) + p for p in payloads)
    ).digest()
    assert extension.hex() == vector["extension"]


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_signatures_reproduced_and_verified(vector):
    transcript = _vector_transcript(vector)
    for i, entry in enumerate(vector["round3"]["signatures"], start=1):
        assert entry["signer_id"] == i
        signature = bytes.fromhex(entry["signature"])
        assert dkg.certify(_static_key(vector, i), transcript) == signature
        assert dkg.verify_certification(_keys(vector)[i - 1], signature, transcript)
        assert not dkg.verify_certification(_keys(vector)[i % vector["n"]], signature, transcript)
        assert not dkg.verify_certification(_keys(vector)[i - 1], signature, transcript + b"\x00")


@pytest.mark.parametrize("vector", [v for v in VECTORS if "recovery" in v], ids=["2-of-3", "2-of-3-payload"])
def test_vector_recovery(vector):
    """COCKTAIL's recovery from d_1, T, the certificate and the bundle C^rec_1 alone."""
    recovery = vector["recovery"]
    member = recovery["participant_id"]
    ciphertexts = [bytes.fromhex(c) for c in recovery["ciphertexts"]]
    messages = _vector_messages(vector)
    assert ciphertexts == [m.ciphertexts[member - 1] for m in messages]
    bundle = b"".join(struct.pack(">Q", len(c)) + c for c in ciphertexts)
    assert dkg.recovery_bundle(messages, member) == bundle
    signatures = [bytes.fromhex(s["signature"]) for s in vector["round3"]["signatures"]]
    transcript = _vector_transcript(vector)
    share = dkg.recover(_static_key(vector, member), transcript, signatures, bundle)
    assert share.member == member
    assert p256.encode_scalar(share.secret_share).hex() == recovery["recovered_secret_share"]
    assert share.verification_share.hex() == recovery["recovered_verification_share"]
    assert share.group_key.hex() == vector["group_public_key"]
    # Recovery refuses a bad certificate, a truncated or padded bundle, a key not in T.
    bad = list(signatures)
    bad[1] = bad[0]
    with pytest.raises(CeremonyError, match="member 2 does not verify"):
        dkg.recover(_static_key(vector, member), transcript, bad, bundle)
    with pytest.raises(EncodingError):
        dkg.recover(_static_key(vector, member), transcript, signatures, bundle[:-1])
    with pytest.raises(EncodingError):
        dkg.recover(_static_key(vector, member), transcript, signatures, bundle + b"\x00")
    with pytest.raises(CeremonyError, match="not exactly one member"):
        dkg.recover(dkg.StaticKey(12345), transcript, signatures, bundle)
    swapped = ciphertexts[1:2] + ciphertexts[:1] + ciphertexts[2:]
    with pytest.raises(CeremonyFaultError) as fault:
        dkg.recover(
            _static_key(vector, member),
            transcript,
            signatures,
            b"".join(struct.pack(">Q", len(c)) + c for c in swapped),
        )
    assert fault.value.faults == ((1, ComplaintReason.ShareDecryption),)


# --- the group (p256) --------------------------------------------------------------------------


def _openssl_point(k: int) -> bytes:
    public = ec.derive_private_key(k, ec.SECP256R1()).public_key()
    return public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)


def test_group_constants():
    assert p256.GENERATOR.encode() == _openssl_point(1)
    assert (p256.GENERATOR * q).is_identity
    assert p256.GENERATOR * (q - 1) == -p256.GENERATOR
    assert p256.IDENTITY.encode() == bytes(33)
    with pytest.raises(ValueError):
        ec.derive_private_key(q, ec.SECP256R1())


@given(st.integers(min_value=1, max_value=q - 1), st.integers(min_value=1, max_value=q - 1))
def test_secret_multiplication_matches_public_arithmetic(k, m):
    """OpenSSL k·B and k·P (ECDH plus the (k+1) parity exchange) agree with pycryptodome."""
    point = p256.GENERATOR * m
    assert p256.mul_base(k).encode() == (p256.GENERATOR * k).encode() == _openssl_point(k)
    product = p256.mul_secret(k, point)
    assert product == point * k
    assert product.encode() == (point * k).encode() == _openssl_point(k * m % q)


def test_secret_multiplication_edges():
    point = p256.GENERATOR * 7
    assert p256.mul_secret(1, point) == point
    assert p256.mul_secret(q - 1, point) == -point
    assert p256.mul_secret(2, point) == point * 2
    # Both y-parities of the result occur (the parity is chosen, not assumed).
    prefixes = {p256.mul_secret(k, point).encode()[0] for k in range(2, 12)}
    assert prefixes == {2, 3}
    with pytest.raises(EncodingError):
        p256.mul_secret(0, point)
    with pytest.raises(EncodingError):
        p256.mul_secret(q, point)
    with pytest.raises(EncodingError):
        p256.mul_secret(5, p256.IDENTITY)
    assert p256.mul_base(0).is_identity


def test_point_decoding_validates():
    good = _openssl_point(5)
    assert p256.decode_point(good).encode() == good
    with pytest.raises(EncodingError, match="identity"):
        p256.decode_point(bytes(33))
    assert p256.decode_point(bytes(33), allow_identity=True).is_identity
    with pytest.raises(EncodingError, match="33 bytes"):
        p256.decode_point(good[:-1])
    with pytest.raises(EncodingError, match="0x02 or 0x03"):
        p256.decode_point(b"\x04" + good[1:])
    # x = 5 is on P-256 and x + p < 2²⁵⁶: pycryptodome would accept the alias; we refuse it.
    x = 5
    alias = b"\x02" + (x + p256.FIELD_PRIME).to_bytes(32, "big")
    p256.decode_point(b"\x02" + x.to_bytes(32, "big"))
    with pytest.raises(EncodingError, match="not reduced modulo p"):
        p256.decode_point(alias)
    not_on_curve = next(
        b"\x02" + x.to_bytes(32, "big")
        for x in range(1, 100)
        if not p256.is_valid_public_key(b"\x02" + x.to_bytes(32, "big"))
    )
    with pytest.raises(EncodingError, match="not a point"):
        p256.decode_point(not_on_curve)


def test_scalar_encoding():
    assert p256.decode_scalar(p256.encode_scalar(q - 1)) == q - 1
    with pytest.raises(EncodingError):
        p256.decode_scalar(q.to_bytes(32, "big"))
    with pytest.raises(EncodingError):
        p256.decode_scalar(bytes(31))
    with pytest.raises(EncodingError):
        p256.encode_scalar(q)


def test_hash_to_scalar_is_the_48_byte_expansion():
    data = b"veche"
    wide = hashlib.sha256(b"\x01" + data).digest() + hashlib.sha256(b"\x02" + data).digest()[:16]
    assert p256.hash_to_scalar(data) == int.from_bytes(wide, "big") % q
    assert p256.hash_to_scalar(data) != int.from_bytes(hashlib.sha256(data).digest(), "big") % q


def test_schnorr_rejects():
    key = dkg.StaticKey(987654321)
    public = p256.decode_point(key.public_key)
    signature = dkg.schnorr_sign(key.secret, b"m")
    assert dkg.schnorr_sign(key.secret, b"m") == signature  # deterministic nonce
    assert dkg.schnorr_verify(public, signature, b"m")
    assert not dkg.schnorr_verify(public, signature, b"n")
    assert not dkg.schnorr_verify(public, signature[:-1], b"m")
    assert not dkg.schnorr_verify(public, signature[:33] + q.to_bytes(32, "big"), b"m")
    assert not dkg.schnorr_verify(public, signature[:33] + b"\xff" * 32, b"m")
    assert not dkg.schnorr_verify(public, bytes(33) + signature[33:], b"m")
    assert not dkg.schnorr_verify(p256.IDENTITY, signature, b"m")


# --- Veche's ceremony ------------------------------------------------------------------------

CHAIN_ID, POLL_BOOK, POLL_ID = 31337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"), 7
N, T = 7, 4


def _rng(label: str):
    return _stream(b"veche-test/" + label.encode())


@cache
def _members() -> tuple[dkg.StaticKey, ...]:
    return tuple(dkg.StaticKey.generate(_rng(f"static-{m}")) for m in range(1, N + 1))


def _public_keys() -> list[bytes]:
    return [k.public_key for k in _members()]


def _veche_context(attempt: int = 1) -> bytes:
    return dkg.ceremony_context(CHAIN_ID, POLL_BOOK, POLL_ID, attempt, _public_keys())


@cache
def _honest_payloads() -> tuple[bytes, ...]:
    context, keys = _veche_context(), _public_keys()
    return tuple(
        dkg.round1(context, T, keys, m, _members()[m - 1], random_bytes=_rng(f"round1-{m}")).encode()
        for m in range(1, N + 1)
    )


@cache
def _key_shares() -> tuple[dkg.KeyShare, ...]:
    context, keys, payloads = _veche_context(), _public_keys(), list(_honest_payloads())
    return tuple(dkg.round2(context, T, keys, m, _members()[m - 1], payloads) for m in range(1, N + 1))


def test_the_context_is_over_the_ceremony_session_id():
    """The session id is ceremony.session_id (its layout is tested in test_ceremony.py)."""
    keys = _public_keys()
    sid = ceremony.session_id(CHAIN_ID, POLL_BOOK, POLL_ID, 3)
    assert dkg.ceremony_context(CHAIN_ID, POLL_BOOK, POLL_ID, 3, keys) == dkg.derive_context(sid, keys)
    assert _veche_context(1) != _veche_context(2)
    with pytest.raises(EncodingError):
        dkg.ceremony_context(CHAIN_ID, POLL_BOOK, POLL_ID, 0, keys)
    with pytest.raises(EncodingError):
        dkg.ceremony_context(CHAIN_ID, POLL_BOOK[:19], POLL_ID, 1, keys)
    with pytest.raises(CeremonyError, match="same static key"):
        dkg.derive_context(sid, [keys[0], keys[0]])
    with pytest.raises(CeremonyError, match="not a valid"):
        dkg.derive_context(sid, [keys[0], bytes(33)])


def test_full_ceremony_in_memory():
    context, keys, payloads = _veche_context(), _public_keys(), list(_honest_payloads())
    assert {len(p) for p in payloads} == {ceremony.round1_length(T, N)} == {33 * T + 98 + 56 * N}
    shares = _key_shares()
    group = shares[0].group_key
    assert {s.group_key for s in shares} == {group}
    messages = dkg.decode_round1_payloads(payloads, T)
    assert dkg.group_key(messages) == group
    assert [s.verification_share for s in shares] == list(dkg.verification_shares(messages))
    for share in shares:
        assert dkg.check_released_share(share.secret_share, share.verification_share)
    # Round 2 is deterministic: after close a trustee recomputes its share from the chain alone.
    again = dkg.round2(context, T, keys, 3, _members()[2], payloads)
    assert again.secret_share == shares[2].secret_share
    # Certification: every member signs the same T; the verifier's check passes.
    transcript = dkg.transcript(context, T, keys, messages)
    certifications = [
        dkg.Certification(s.group_key, dkg.certify(_members()[s.member - 1], transcript)).encode() for s in shares
    ]
    assert {len(c) for c in certifications} == {98}
    check = dkg.check_ceremony(context, T, keys, payloads, certifications, group)
    assert check.ok, check.problems
    assert check.group_key == group and check.transcript == transcript
    # COCKTAIL's own recovery (T, certificate, bundle) gives the same share.
    signatures = [dkg.Certification.decode(c).signature for c in certifications]
    recovered = dkg.recover(_members()[4], transcript, signatures, dkg.recovery_bundle(messages, 5))
    assert recovered.secret_share == shares[4].secret_share
    # Release: all seven valid; any four rebuild the same secret, whose public key is Y.
    released = {s.member: s.release_payload() for s in shares}
    assert {len(r) for r in released.values()} == {33} and {r[0] for r in released.values()} == {2}
    result = dkg.check_release(check.verification_shares, T, group, released)
    assert result.valid == tuple(range(1, N + 1)) and result.invalid == ()
    assert result.secret is not None and p256.mul_base(result.secret).encode() == group
    for subset in itertools.combinations(range(1, N + 1), T):
        chosen = {m: shares[m - 1].secret_share for m in subset}
        assert dkg.combine_shares(chosen, T, group) == result.secret


def test_check_ceremony_reports_every_problem():
    context, keys, payloads = _veche_context(), _public_keys(), list(_honest_payloads())
    messages = dkg.decode_round1_payloads(payloads, T)
    transcript = dkg.transcript(context, T, keys, messages)
    group = dkg.group_key(messages)
    good = [dkg.Certification(group, dkg.certify(k, transcript)).encode() for k in _members()]
    bad = list(good)
    bad[1] = good[2]  # member 3's signature posted as member 2's
    other_key = p256.mul_base(5).encode()
    bad[4] = dkg.Certification(other_key, dkg.certify(_members()[4], transcript)).encode()
    check = dkg.check_ceremony(context, T, keys, payloads, bad[:-1], other_key)
    assert not check.ok
    assert check.problems == (
        "6 certifications for 7 members",
        "member 2: certification signature does not verify over the transcript",
        "member 5: certifies another key than Σ C_j,0",
        "the certified election key is not Σ C_j,0",
    )
    # A signature over another attempt's transcript does not count.
    other = dkg.transcript(_veche_context(2), T, keys, messages)
    replayed = [dkg.Certification(group, dkg.certify(k, other)).encode() for k in _members()]
    assert len(dkg.check_ceremony(context, T, keys, payloads, replayed).problems) == N


def test_secrets_stay_out_of_repr_and_errors():
    share = _key_shares()[0]
    key = _members()[0]
    for secret, text in ((share.secret_share, repr(share)), (key.secret, repr(key))):
        assert str(secret) not in text
        assert f"{secret:064x}" not in text
    assert "secret hidden" in repr(share) and share.verification_share.hex() in repr(share)
    assert repr(key) == f"StaticKey(public_key={key.public_key.hex()})"
    error = CeremonyFaultError(((2, ComplaintReason.ShareVerification),))
    assert str(error) == "member 2 at fault (reason 4)"


# --- a cheating sender --------------------------------------------------------------------------


def _scalars(label: str, count: int) -> list[int]:
    read = _rng(label)
    return [p256.random_scalar(read) for _ in range(count)]


def _cheat(sender: int, recipient: int, how: str) -> list[bytes]:
    """All honest payloads except `sender`'s share to `recipient`, replaced per `how`. The test
    knows the sender's coefficients and e (its RNG stream is deterministic), so it can encrypt
    a wrong plaintext under the right key; the PoP still verifies (it does not cover shares)."""
    context, keys = _veche_context(), _public_keys()
    message = dkg.Round1Message.decode(_honest_payloads()[sender - 1], T, N)
    scalars = _scalars(f"round1-{sender}", T + 1)
    coefficients, ephemeral_secret = scalars[:T], scalars[T]
    assert p256.mul_base(ephemeral_secret) == message.ephemeral_key
    recipient_key = p256.decode_point(keys[recipient - 1])
    sender_key = _members()[sender - 1]
    ecdh = (
        p256.mul_secret(ephemeral_secret, recipient_key).encode()
        + p256.mul_secret(sender_key.secret, recipient_key).encode()
    )
    key, nonce = dkg.share_key_and_nonce(
        ecdh, message.ephemeral_key.encode(), sender_key.public_key, keys[recipient - 1], context
    )
    share = sum(a * recipient**k for k, a in enumerate(coefficients)) % q
    assert xaes.decrypt(key, nonce, message.ciphertexts[recipient - 1]) == p256.encode_scalar(share)
    if how == "aead":
        ciphertext = bytearray(message.ciphertexts[recipient - 1])
        ciphertext[5] ^= 0x40
        forged = bytes(ciphertext)
    elif how == "non-canonical":
        forged = xaes.encrypt(key, nonce, b"\xff" * 32)
    elif how == "mismatch":
        forged = xaes.encrypt(key, nonce, p256.encode_scalar((share + 1) % q))
    else:
        raise AssertionError(how)
    ciphertexts = list(message.ciphertexts)
    ciphertexts[recipient - 1] = forged
    payloads = list(_honest_payloads())
    payloads[sender - 1] = replace(message, ciphertexts=tuple(ciphertexts)).encode()
    assert len(payloads[sender - 1]) == ceremony.round1_length(T, N)
    return payloads


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("aead", ComplaintReason.ShareDecryption),
        ("non-canonical", ComplaintReason.ShareNotCanonical),
        ("mismatch", ComplaintReason.ShareVerification),
    ],
)
def test_bad_share_is_judged_against_the_sender(how, reason):
    sender, recipient = 3, 6
    context, keys = _veche_context(), _public_keys()
    payloads = _cheat(sender, recipient, how)
    with pytest.raises(CeremonyFaultError) as raised:
        dkg.round2(context, T, keys, recipient, _members()[recipient - 1], payloads)
    assert raised.value.faults == ((sender, reason),)
    # Only the recipient sees it: the others finish round 2.
    assert dkg.round2(context, T, keys, 1, _members()[0], payloads).group_key == _key_shares()[0].group_key
    # The complaint the recipient files, as posted (accused = poll trustee index, here m + 10).
    (fault,) = raised.value.faults
    evidence = dkg.make_complaint(
        context, T, keys, _members()[recipient - 1], fault, payloads[sender - 1], random_bytes=_rng("dleq")
    )
    complaint = dkg.Complaint(sender + 10, fault.reason, evidence)
    posted = complaint.encode()
    assert len(posted) == 132 and posted[:2] == bytes([sender + 10, reason])
    decoded = dkg.Complaint.decode(posted)
    assert decoded == complaint
    verdict = dkg.judge_complaint(
        context, T, keys, recipient, decoded.accused - 10, decoded.reason, decoded.evidence, payloads[sender - 1]
    )
    assert verdict.at_fault is Party.ACCUSED and verdict.finding is reason
    # A complainer who names another of 2–4 still convicts a bad share; the finding says what it was.
    other = (
        ComplaintReason.ShareVerification
        if reason != ComplaintReason.ShareVerification
        else ComplaintReason.ShareDecryption
    )
    mislabelled = dkg.judge_complaint(context, T, keys, recipient, sender, other, evidence, payloads[sender - 1])
    assert mislabelled.at_fault is Party.ACCUSED and mislabelled.finding is reason
    # The same evidence presented by another member proves nothing.
    assert (
        dkg.judge_complaint(context, T, keys, 1, sender, reason, evidence, payloads[sender - 1]).at_fault
        is Party.COMPLAINER
    )
    # The proof is bound to the attempt's context.
    ephemeral = dkg.Round1Message.decode(payloads[sender - 1], T, N).ephemeral_key.encode()
    proof = dkg.ComplaintEvidence.decode(evidence)
    proof_args = (keys[recipient - 1], keys[sender - 1], ephemeral, proof)
    assert dkg.verify_complaint_evidence(context, *proof_args)
    assert not dkg.verify_complaint_evidence(_veche_context(2), *proof_args)


def test_false_complaint_puts_the_complainer_at_fault():
    context, keys, payloads = _veche_context(), _public_keys(), list(_honest_payloads())
    complainer, accused = 2, 5
    for reason in (
        ComplaintReason.ShareDecryption,
        ComplaintReason.ShareNotCanonical,
        ComplaintReason.ShareVerification,
    ):
        evidence = dkg.make_complaint(
            context, T, keys, _members()[complainer - 1], dkg.Fault(accused, reason), payloads[accused - 1]
        )
        verdict = dkg.judge_complaint(context, T, keys, complainer, accused, reason, evidence, payloads[accused - 1])
        assert verdict.at_fault is Party.COMPLAINER and verdict.finding is None
        assert "decrypts and matches" in verdict.detail
    verdict = dkg.judge_complaint(
        context, T, keys, complainer, accused, ComplaintReason.MalformedRound1, b"", payloads[accused - 1]
    )
    assert verdict.at_fault is Party.COMPLAINER and "well-formed" in verdict.detail
    for reason, evidence in (
        (0, b""),
        (5, b""),
        (ComplaintReason.ShareVerification, b""),
        (ComplaintReason.ShareVerification, bytes(130)),
    ):
        verdict = dkg.judge_complaint(context, T, keys, complainer, accused, reason, evidence, payloads[accused - 1])
        assert verdict.at_fault is Party.COMPLAINER
    assert dkg.judge_complaint(context, T, keys, 2, 2, 4, b"", payloads[1]).at_fault is Party.COMPLAINER


def _forged_evidence(context: bytes, complainer: int, accused: int, claimed_secret: int) -> dkg.ComplaintEvidence:
    """A cheating complainer's evidence: S^e and S^d computed with `claimed_secret` (not its d),
    with a 'proof' made the honest way over those values (it cannot know a matching witness)."""
    keys = _public_keys()
    sender = p256.decode_point(keys[accused - 1])
    payload = _honest_payloads()[accused - 1]
    ephemeral = dkg.Round1Message.decode(payload, T, N).ephemeral_key
    complainer_key = p256.decode_point(keys[complainer - 1])
    shared_ephemeral = p256.mul_secret(claimed_secret, ephemeral)
    shared_static = p256.mul_secret(claimed_secret, sender)
    nonce = 424242
    commitments = (p256.mul_base(nonce), p256.mul_secret(nonce, ephemeral), p256.mul_secret(nonce, sender))
    challenge = p256.hash_to_scalar(
        b"VECHE-DKG-P256-SHA256-DLEQ"
        + b"".join(p.encode() for p in (complainer_key, ephemeral, sender, shared_ephemeral, shared_static))
        + b"".join(a.encode() for a in commitments)
        + context
    )
    return dkg.ComplaintEvidence(
        shared_ephemeral.encode(), shared_static.encode(), challenge, (nonce + challenge * claimed_secret) % q
    )


def test_forged_dleq_proof_fails():
    context, keys, payloads = _veche_context(), _public_keys(), list(_honest_payloads())
    complainer, accused = 2, 5
    accused_message = dkg.Round1Message.decode(payloads[accused - 1], T, N)
    args = (context, keys[complainer - 1], keys[accused - 1], accused_message.ephemeral_key.encode())
    honest = dkg.prove_complaint_evidence(context, _members()[complainer - 1], *args[2:])
    assert dkg.verify_complaint_evidence(*args, honest)
    # The forger's proof is internally consistent for its own key, not for P_i.
    forged = _forged_evidence(context, complainer, accused, claimed_secret=_members()[complainer - 1].secret + 1)
    assert not dkg.verify_complaint_evidence(*args, forged)
    verdict = dkg.judge_complaint(
        context, T, keys, complainer, accused, ComplaintReason.ShareDecryption, forged.encode(), payloads[accused - 1]
    )
    assert verdict.at_fault is Party.COMPLAINER and "DLEQ" in verdict.detail
    # Any altered field of honest evidence breaks the proof.
    point = p256.mul_base(99).encode()
    for altered in (
        replace(honest, challenge=(honest.challenge + 1) % q),
        replace(honest, response=(honest.response + 1) % q),
        replace(honest, shared_ephemeral=point),
        replace(honest, shared_static=point),
        replace(honest, shared_ephemeral=honest.shared_static, shared_static=honest.shared_ephemeral),
    ):
        assert not dkg.verify_complaint_evidence(*args, altered)
    # Decoding refuses non-canonical scalars and invalid points.
    encoded = honest.encode()
    assert dkg.ComplaintEvidence.decode(encoded) == honest
    with pytest.raises(EncodingError):
        dkg.ComplaintEvidence.decode(encoded[:66] + q.to_bytes(32, "big") + encoded[98:])
    with pytest.raises(EncodingError):
        dkg.ComplaintEvidence.decode(bytes(33) + encoded[33:])
    with pytest.raises(EncodingError):
        dkg.Complaint.decode(b"\x01")


# --- the payloads' structures, and what PollBook checks of them ------------------------------


def test_the_ceremony_lengths_are_the_groups():
    """ceremony.py has no cryptography; its lengths are the group's and XAES's."""
    assert ceremony.POINT_LENGTH == p256.POINT_SIZE and ceremony.SCALAR_LENGTH == p256.SCALAR_SIZE
    assert ceremony.SHARE_CIPHERTEXT_LENGTH == p256.SCALAR_SIZE + xaes.TAG_SIZE
    assert len(dkg.schnorr_sign(5, b"m")) == ceremony.SIGNATURE_LENGTH
    assert len(_honest_payloads()[0]) == ceremony.round1_length(T, N)


def _random_point() -> bytes:
    return p256.mul_base(p256.random_scalar()).encode()


def _random_round1(t: int, n: int) -> dkg.Round1Message:
    """Valid points, and random bytes of the right lengths for the PoP and the ciphertexts."""
    commitments = tuple(p256.decode_point(_random_point()) for _ in range(t))
    ephemeral = p256.decode_point(_random_point())
    return dkg.Round1Message(commitments, os.urandom(65), ephemeral, tuple(os.urandom(48) for _ in range(n)))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_round1_round_trips_at_its_length(tn):
    t, n = tn
    message = _random_round1(t, n)
    payload = message.encode()
    assert len(payload) == ceremony.round1_length(t, n)
    assert ceremony.payload_length_error(ceremony.MessageKind.Round1, payload, t, n) is None
    assert dkg.Round1Message.decode(payload, t, n) == message
    # the layout: C (33t) ‖ PoP (65) ‖ E (33) ‖ (uint64_be(48) ‖ c) per member
    at = 33 * t + 65 + 33
    assert payload[: 33 * t] == b"".join(c.encode() for c in message.commitments)
    assert payload[at : at + 8] == (48).to_bytes(8, "big")
    assert payload[at + 8 : at + 56] == message.ciphertexts[0]


def test_round1_framing_is_checked():
    payload = bytearray(_random_round1(2, 3).encode())
    with pytest.raises(EncodingError, match="ends inside member 3's share ciphertext"):
        dkg.Round1Message.decode(bytes(payload[:-1]), 2, 3)
    with pytest.raises(EncodingError, match="8 trailing bytes"):
        dkg.Round1Message.decode(bytes(payload) + bytes(8), 2, 3)
    with pytest.raises(EncodingError, match="length prefix of member 4's share"):
        dkg.Round1Message.decode(bytes(payload), 2, 4)
    at = 33 * 2 + 98 + 56  # the second member's length prefix
    payload[at + 7] = 47
    with pytest.raises(EncodingError, match="member 2 is framed as 47 bytes"):
        dkg.Round1Message.decode(bytes(payload), 2, 3)
    # The contract accepts that payload (only its length is the contract's): the sender's
    # message is malformed.
    assert ceremony.payload_length_error(ceremony.MessageKind.Round1, bytes(payload), 2, 3) is None
    point = p256.decode_point(_random_point())
    for bad in (
        dkg.Round1Message((), os.urandom(65), point, (os.urandom(48),)),  # t = 0
        dkg.Round1Message((point, point), os.urandom(65), point, (os.urandom(48),)),  # t > n
        dkg.Round1Message((point,), os.urandom(64), point, (os.urandom(48),)),
        dkg.Round1Message((point,), os.urandom(65), p256.IDENTITY, (os.urandom(48),)),
        dkg.Round1Message((p256.IDENTITY,), os.urandom(65), point, (os.urandom(48),)),
        dkg.Round1Message((point,), os.urandom(65), point, (os.urandom(47),)),
    ):
        with pytest.raises(EncodingError):
            bad.encode()


def _random_evidence() -> dkg.ComplaintEvidence:
    return dkg.ComplaintEvidence(_random_point(), _random_point(), p256.random_scalar(), p256.random_scalar())


def test_complaints_round_trip():
    public = dkg.Complaint(7, ComplaintReason.MalformedRound1)
    assert public.encode() == bytes([7, 1])
    assert dkg.Complaint.decode(bytes([7, 1])) == public
    evidence = _random_evidence()
    for reason in sorted(set(ComplaintReason) - ceremony.PUBLIC_REASONS - {ComplaintReason.Reserved}):
        complaint = dkg.Complaint(254, reason, evidence.encode())
        payload = complaint.encode()
        assert payload == bytes([254, reason]) + evidence.shared_ephemeral + evidence.shared_static + (
            p256.encode_scalar(evidence.challenge) + p256.encode_scalar(evidence.response)
        )
        assert len(payload) == ceremony.complaint_length(reason) == 132
        assert ceremony.payload_length_error(ceremony.MessageKind.Complaint, payload, 2, 3) is None
        decoded = dkg.Complaint.decode(payload)
        assert decoded == complaint and decoded.reason is reason
        assert dkg.ComplaintEvidence.decode(decoded.evidence) == evidence


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x01", b"\x01\x00", b"\x01\x05", b"\x01\x01\x00", b"\x01\x02" + bytes(129), b"\x01\x04" + bytes(131)],
)
def test_complaints_the_contract_refuses_do_not_decode(payload):
    with pytest.raises(EncodingError):
        dkg.Complaint.decode(payload)
    assert ceremony.payload_length_error(ceremony.MessageKind.Complaint, payload, 2, 3) is not None


def test_a_complaint_has_evidence_exactly_when_its_reason_needs_it():
    evidence = _random_evidence()
    for bad in (
        dkg.Complaint(1, ComplaintReason.MalformedRound1, evidence.encode()),
        dkg.Complaint(1, ComplaintReason.ShareVerification),
        dkg.Complaint(1, ComplaintReason.ShareVerification, evidence.encode()[:-1]),
        dkg.Complaint(1, ComplaintReason.Reserved),
        dkg.Complaint(1, 5),  # an unknown reason
        dkg.Complaint(256, ComplaintReason.MalformedRound1),
    ):
        with pytest.raises(EncodingError):
            bad.encode()
    for bad_evidence in (
        replace(evidence, challenge=q),
        replace(evidence, response=-1),
        replace(evidence, shared_ephemeral=evidence.shared_ephemeral[:32]),
        replace(evidence, shared_static=bytes(33)),
    ):
        with pytest.raises(EncodingError):
            bad_evidence.encode()
    # The contract takes any 130 bytes as evidence; whether they decode is for the judge.
    assert dkg.Complaint.decode(bytes([1, 4]) + bytes(130)).evidence == bytes(130)
    with pytest.raises(EncodingError, match="130 bytes, not 129"):
        dkg.ComplaintEvidence.decode(bytes(129))


def test_certifications():
    key, signature = _random_point(), os.urandom(65)
    payload = dkg.Certification(key, signature).encode()
    assert payload == key + signature and len(payload) == ceremony.CERTIFY_LENGTH == 98
    assert dkg.Certification.decode(payload) == dkg.Certification(key, signature)
    assert ceremony.payload_length_error(ceremony.MessageKind.Certify, payload, 2, 3) is None
    for bad in (payload[:-1], payload + b"\x00", b"\x04" + payload[1:], b"\x00" + payload[1:]):
        with pytest.raises(EncodingError):
            dkg.Certification.decode(bad)
        assert ceremony.payload_length_error(ceremony.MessageKind.Certify, bad, 2, 3) is not None
    # A Y of the right shape that is not on the curve: the contract takes it, the DKG does not.
    off_curve = next(
        b"\x02" + x.to_bytes(32, "big")
        for x in range(1, 100)
        if not p256.is_valid_public_key(b"\x02" + x.to_bytes(32, "big"))
    )
    assert ceremony.payload_length_error(ceremony.MessageKind.Certify, off_curve + signature, 2, 3) is None
    with pytest.raises(EncodingError):
        dkg.Certification.decode(off_curve + signature)
    for bad_certification in (
        dkg.Certification(b"\x04" + key[1:], signature),
        dkg.Certification(off_curve, signature),
        dkg.Certification(key, signature[:64]),
    ):
        with pytest.raises(EncodingError):
            bad_certification.encode()


# --- malformed round-1 messages (reason 1) -----------------------------------------------------


def _malformed_variants(payload: bytes) -> dict[str, bytes]:
    message = dkg.Round1Message.decode(payload, T, N)
    frames_at = 33 * T + 98
    pop_at = 33 * T
    reframed = bytearray(payload)
    # First ciphertext 47 bytes, second 49: same total length, still refused.
    reframed[frames_at : frames_at + 8] = struct.pack(">Q", 47)
    reframed[frames_at + 55 : frames_at + 63] = struct.pack(">Q", 49)
    x5 = (5 + p256.FIELD_PRIME).to_bytes(32, "big")
    flipped_pop = bytearray(payload)
    flipped_pop[pop_at + 40] ^= 1
    return {
        "truncated": payload[:-1],
        "padded": payload + b"\x00",
        "identity commitment": bytes(33) + payload[33:],
        "identity ephemeral": payload[: pop_at + 65] + bytes(33) + payload[pop_at + 98 :],
        "aliased point": payload[:33] + b"\x02" + x5 + payload[67:],
        "reframed ciphertexts": bytes(reframed),
        "oversized frame": payload[:frames_at] + struct.pack(">Q", 2**40) + payload[frames_at + 8 :],
        "bad pop": bytes(flipped_pop),
        "commitments swapped": message.commitments[1].encode() + message.commitments[0].encode() + payload[66:],
        "other ephemeral": replace(message, ephemeral_key=p256.mul_base(77)).encode(),
    }


def test_malformed_round1_is_reason_1():
    context, keys = _veche_context(), _public_keys()
    accused, complainer = 4, 1
    for name, bad in _malformed_variants(_honest_payloads()[accused - 1]).items():
        try:
            message = dkg.Round1Message.decode(bad, T, N)
        except EncodingError:
            pass
        else:
            assert not message.verify_pop(context), name
        payloads = list(_honest_payloads())
        payloads[accused - 1] = bad
        with pytest.raises(CeremonyFaultError) as raised:
            dkg.round2(context, T, keys, complainer, _members()[complainer - 1], payloads)
        assert raised.value.faults == ((accused, ComplaintReason.MalformedRound1),), name
        evidence = dkg.make_complaint(context, T, keys, _members()[0], raised.value.faults[0], bad)
        assert evidence == b""
        verdict = dkg.judge_complaint(context, T, keys, complainer, accused, ComplaintReason.MalformedRound1, b"", bad)
        assert verdict.at_fault is Party.ACCUSED and verdict.finding is ComplaintReason.MalformedRound1, name
        # Whatever reason was given, a public fault of the accused is the accused's.
        other = dkg.judge_complaint(
            context, T, keys, complainer, accused, ComplaintReason.ShareVerification, bytes(130), bad
        )
        assert other.at_fault is Party.ACCUSED, name
        check = dkg.check_ceremony(context, T, keys, payloads, [])
        assert not check.ok and check.problems[0].startswith(f"member {accused}: round-1"), name


def test_round2_names_every_member_at_fault():
    context, keys = _veche_context(), _public_keys()
    payloads = _cheat(2, 5, "mismatch")
    payloads[6] = payloads[6][:-1]
    with pytest.raises(CeremonyFaultError) as raised:
        dkg.round2(context, T, keys, 5, _members()[4], payloads)
    assert raised.value.faults == ((7, ComplaintReason.MalformedRound1), (2, ComplaintReason.ShareVerification))


def test_round_inputs_are_checked():
    context, keys = _veche_context(), _public_keys()
    with pytest.raises(CeremonyError, match="not the member's registered key"):
        dkg.round1(context, T, keys, 1, _members()[1])
    with pytest.raises(CeremonyError, match="threshold"):
        dkg.round1(context, N + 1, keys, 1, _members()[0])
    with pytest.raises(CeremonyError, match="member id"):
        dkg.round2(context, T, keys, 0, _members()[0], list(_honest_payloads()))
    with pytest.raises(CeremonyError, match="one round-1 message per member"):
        dkg.round2(context, T, keys, 1, _members()[0], list(_honest_payloads())[:-1])


# --- release after close ---------------------------------------------------------------------


def test_wrong_released_share_is_named_and_others_rebuild():
    shares = _key_shares()
    group = shares[0].group_key
    y = dkg.verification_shares(dkg.decode_round1_payloads(list(_honest_payloads()), T))
    released = {s.member: s.release_payload() for s in shares}
    released[3] = dkg.encode_release_share((shares[2].secret_share + 1) % q)
    released[6] = b"\x01" + released[6][1:]  # a v1 tag
    released[7] = b"\x02" + q.to_bytes(32, "big")  # not reduced
    result = dkg.check_release(y, T, group, released)
    assert result.invalid == (3, 6, 7) and result.valid == (1, 2, 4, 5)
    assert result.secret is not None and p256.mul_base(result.secret).encode() == group
    # Exactly t valid is enough; t − 1 is not yet.
    for subset in itertools.combinations((1, 2, 4, 5), T - 1):
        partial = dkg.check_release(y, T, group, {m: released[m] for m in subset + (3,)})
        assert partial.secret is None and partial.invalid == (3,)
    with pytest.raises(KeyShareError, match="fewer key shares than the threshold: 3 of 4"):
        dkg.combine_shares({m: shares[m - 1].secret_share for m in (1, 2, 4)}, T, group)
    # Without the per-share check, a wrong share makes the rebuilt key fail against Y.
    wrong = {m: shares[m - 1].secret_share for m in (1, 2, 4)} | {3: (shares[2].secret_share + 1) % q}
    with pytest.raises(KeyShareError, match="does not match the election key"):
        dkg.combine_shares(wrong, T, group)


def test_fewer_than_t_shares_reveal_nothing_consistent():
    """Any t − 1 shares plus any guess for a t-th interpolate to a different secret per guess."""
    shares = _key_shares()
    group = shares[0].group_key
    rng = random.Random(5)
    chosen = {m: shares[m - 1].secret_share for m in rng.sample(range(1, N + 1), T - 1)}
    missing = next(m for m in range(1, N + 1) if m not in chosen)
    for _ in range(3):
        guess = chosen | {missing: rng.randrange(q)}
        with pytest.raises(KeyShareError):
            dkg.combine_shares(guess, T, group)


def test_lagrange_and_release_encoding():
    assert sum(dkg.lagrange_at_zero([1, 2, 3, 4]).values()) % q == 1
    with pytest.raises(KeyShareError):
        dkg.lagrange_at_zero([1, 1])
    assert dkg.decode_release_share(dkg.encode_release_share(12345)) == 12345
    with pytest.raises(KeyShareError):
        dkg.decode_release_share(bytes(32))

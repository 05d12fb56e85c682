"""Ballot ciphertext v2 (veche_core.hpke): RFC 9180 first, then Veche's layout and bindings.

cryptography's single-shot HPKE takes no aad and draws its own ephemeral key, so the RFC's
vectors (fixed ephemeral keys, aad per sequence number) cannot be fed to it directly. A small
oracle here, built from cryptography's ECDH, HMAC, HKDF-Expand and AESGCM primitives, reproduces
the vectors of DHKEM(P-256, HKDF-SHA256)/HKDF-SHA256/AES-128-GCM byte for byte (DeriveKeyPair, the
KEM, the key schedule, every encryption, the exporter); then the oracle and cryptography's Suite
open each other's single-shot ciphertexts. The oracle is a test instrument, never the product.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from core_vectors import load_vectors, unhex
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from veche_core import hpke, plaintext
from veche_core.errors import EncodingError, SealingError

RFC = load_vectors("rfc9180-p256-sha256-aes128gcm.json")["vectors"][0]
CURVE = ec.SECP256R1()
ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
CHAIN_ID = 31337
POLL_BOOK = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
TOKEN = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OTHER_TOKEN = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
OTHER_POLL_BOOK = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"


# --- the oracle: RFC 9180 §4, §5.1, §5.2, §5.3, §7.1 for this one suite ------------------------


def i2osp(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


KEM_SUITE_ID = b"KEM" + i2osp(0x0010, 2)
HPKE_SUITE_ID = b"HPKE" + i2osp(0x0010, 2) + i2osp(0x0001, 2) + i2osp(0x0001, 2)


def extract(salt: bytes, ikm: bytes) -> bytes:
    mac = hmac.HMAC(salt or bytes(32), hashes.SHA256())
    mac.update(ikm)
    return mac.finalize()


def expand(prk: bytes, info: bytes, length: int) -> bytes:
    return HKDFExpand(hashes.SHA256(), length, info).derive(prk)


def labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return extract(salt, b"HPKE-v1" + suite_id + label + ikm)


def labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return expand(prk, i2osp(length, 2) + b"HPKE-v1" + suite_id + label + info, length)


def serialize(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def derive_key_pair(ikm: bytes) -> ec.EllipticCurvePrivateKey:
    """RFC 9180 §7.1.3 for P-256 (bitmask 0xff): rejection sampling from LabeledExpand."""
    dkp_prk = labeled_extract(KEM_SUITE_ID, b"", b"dkp_prk", ikm)
    for counter in range(256):
        candidate = int.from_bytes(labeled_expand(KEM_SUITE_ID, dkp_prk, b"candidate", i2osp(counter, 1), 32), "big")
        if 0 < candidate < ORDER:
            return ec.derive_private_key(candidate, CURVE)
    raise AssertionError("DeriveKeyPairError")


def extract_and_expand(dh: bytes, kem_context: bytes) -> bytes:
    eae_prk = labeled_extract(KEM_SUITE_ID, b"", b"eae_prk", dh)
    return labeled_expand(KEM_SUITE_ID, eae_prk, b"shared_secret", kem_context, 32)


@dataclass
class Context:
    """What KeySchedule produces, its intermediates, and the sequence number."""

    shared_secret: bytes
    key_schedule_context: bytes
    secret: bytes
    key: bytes
    base_nonce: bytes
    exporter_secret: bytes
    seq: int = 0

    def nonce(self) -> bytes:
        return bytes(a ^ b for a, b in zip(self.base_nonce, i2osp(self.seq, 12)))

    def seal(self, aad: bytes, pt: bytes) -> bytes:
        ct = AESGCM(self.key).encrypt(self.nonce(), pt, aad)
        self.seq += 1
        return ct

    def open(self, aad: bytes, ct: bytes) -> bytes:
        pt = AESGCM(self.key).decrypt(self.nonce(), ct, aad)
        self.seq += 1
        return pt

    def export(self, exporter_context: bytes, length: int) -> bytes:
        return labeled_expand(HPKE_SUITE_ID, self.exporter_secret, b"sec", exporter_context, length)


def key_schedule(shared_secret: bytes, info: bytes) -> Context:
    """Base mode (psk and psk_id empty)."""
    psk_id_hash = labeled_extract(HPKE_SUITE_ID, b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(HPKE_SUITE_ID, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash
    secret = labeled_extract(HPKE_SUITE_ID, shared_secret, b"secret", b"")
    return Context(
        shared_secret,
        context,
        secret,
        labeled_expand(HPKE_SUITE_ID, secret, b"key", context, 16),
        labeled_expand(HPKE_SUITE_ID, secret, b"base_nonce", context, 12),
        labeled_expand(HPKE_SUITE_ID, secret, b"exp", context, 32),
    )


def setup_base_s(
    pk_r: ec.EllipticCurvePublicKey, info: bytes, sk_e: ec.EllipticCurvePrivateKey | None = None
) -> tuple[bytes, Context]:
    sk_e = sk_e or ec.generate_private_key(CURVE)
    enc = serialize(sk_e.public_key())
    shared_secret = extract_and_expand(sk_e.exchange(ec.ECDH(), pk_r), enc + serialize(pk_r))
    return enc, key_schedule(shared_secret, info)


def setup_base_r(enc: bytes, sk_r: ec.EllipticCurvePrivateKey, info: bytes) -> Context:
    pk_e = ec.EllipticCurvePublicKey.from_encoded_point(CURVE, enc)
    dh = sk_r.exchange(ec.ECDH(), pk_e)
    return key_schedule(extract_and_expand(dh, enc + serialize(sk_r.public_key())), info)


def oracle_seal(pk_r: ec.EllipticCurvePublicKey, info: bytes, pt: bytes) -> bytes:
    """The single-shot Seal of RFC 9180 §6.1 with aad empty: enc ‖ ct."""
    enc, context = setup_base_s(pk_r, info)
    return enc + context.seal(b"", pt)


def oracle_open(sk_r: ec.EllipticCurvePrivateKey, info: bytes, sealed: bytes) -> bytes:
    return setup_base_r(sealed[:65], sk_r, info).open(b"", sealed[65:])


# --- the oracle against RFC 9180 Appendix A.3.1 -------------------------------------------------


def test_the_vectors_are_the_suite_in_base_mode():
    assert (RFC["mode"], RFC["kem_id"], RFC["kdf_id"], RFC["aead_id"]) == (0, hpke.KEM_ID, hpke.KDF_ID, hpke.AEAD_ID)
    assert len(RFC["encryptions"]) == 6 and len(RFC["exports"]) == 3


def test_oracle_derives_the_rfc_key_pairs():
    for role in ("E", "R"):
        sk = derive_key_pair(unhex(RFC[f"ikm{role}"]))
        assert i2osp(sk.private_numbers().private_value, 32) == unhex(RFC[f"sk{role}m"])
        assert serialize(sk.public_key()) == unhex(RFC[f"pk{role}m"])


def rfc_keys() -> tuple[ec.EllipticCurvePrivateKey, ec.EllipticCurvePrivateKey]:
    sk_e = ec.derive_private_key(int(RFC["skEm"], 16), CURVE)
    sk_r = ec.derive_private_key(int(RFC["skRm"], 16), CURVE)
    return sk_e, sk_r


def assert_rfc_context(context: Context) -> None:
    for field in ("shared_secret", "key_schedule_context", "secret", "key", "base_nonce", "exporter_secret"):
        assert getattr(context, field) == unhex(RFC[field]), field


def test_oracle_reproduces_the_rfc_sender_context_encryptions_and_exports():
    sk_e, sk_r = rfc_keys()
    enc, context = setup_base_s(sk_r.public_key(), unhex(RFC["info"]), sk_e)
    assert enc == unhex(RFC["enc"]) == unhex(RFC["pkEm"])
    assert_rfc_context(context)
    for case in RFC["encryptions"]:
        context.seq = case["sequence_number"]
        assert context.nonce() == unhex(case["nonce"])
        assert context.seal(unhex(case["aad"]), unhex(case["pt"])) == unhex(case["ct"])
    for case in RFC["exports"]:
        assert context.export(unhex(case["exporter_context"]), case["L"]) == unhex(case["exported_value"])


def test_oracle_opens_the_rfc_encryptions_as_the_recipient():
    _, sk_r = rfc_keys()
    context = setup_base_r(unhex(RFC["enc"]), sk_r, unhex(RFC["info"]))
    assert_rfc_context(context)
    for case in RFC["encryptions"]:
        context.seq = case["sequence_number"]
        assert context.open(unhex(case["aad"]), unhex(case["ct"])) == unhex(case["pt"])
    context.seq = 0
    with pytest.raises(Exception):  # noqa: B017 - InvalidTag: the aad is bound
        context.open(b"Count-1", unhex(RFC["encryptions"][0]["ct"]))


def test_cryptography_opens_the_rfc_context_single_shot():
    """The RFC's own context (fixed enc, its info) at sequence 0 with aad empty: what Suite.decrypt
    must open if its KEM and key schedule are RFC 9180's."""
    sk_e, sk_r = rfc_keys()
    info = unhex(RFC["info"])
    enc, context = setup_base_s(sk_r.public_key(), info, sk_e)
    pt = unhex(RFC["encryptions"][0]["pt"])
    assert hpke.SUITE.decrypt(enc + context.seal(b"", pt), sk_r, info) == pt


def test_oracle_and_cryptography_open_each_other_for_a_fresh_key():
    sk_r = ec.generate_private_key(CURVE)
    info = hpke.ballot_info(CHAIN_ID, POLL_BOOK, 7, 2, TOKEN)
    for pt in (b"", b"\x01\x04", bytes(range(33))):
        theirs = hpke.SUITE.encrypt(pt, sk_r.public_key(), info)
        assert len(theirs) == 65 + len(pt) + 16 and theirs[0] == 0x04
        assert oracle_open(sk_r, info, theirs) == pt
        ours = oracle_seal(sk_r.public_key(), info, pt)
        assert hpke.SUITE.decrypt(ours, sk_r, info) == pt
    with pytest.raises(Exception):  # noqa: B017 - InvalidTag: info is bound on both sides
        oracle_open(sk_r, info[:-1] + b"\x00", hpke.SUITE.encrypt(b"x", sk_r.public_key(), info))


# --- Veche's layout ---------------------------------------------------------------------------


def fresh_opener() -> hpke.Opener:
    return hpke.Opener(i2osp(ec.generate_private_key(CURVE).private_numbers().private_value, 32))


OPENER = fresh_opener()
INFO = hpke.ballot_info(CHAIN_ID, POLL_BOOK, 7, 2, TOKEN)
CHOICE = plaintext.encode_choice([3], 10, 1)


def test_ballot_info_layout():
    info = hpke.ballot_info(CHAIN_ID, POLL_BOOK, 7, 2, TOKEN)
    assert len(info) == hpke.INFO_LENGTH == 123
    assert info == (
        b"veche/ballot/v2"
        + CHAIN_ID.to_bytes(32, "big")
        + bytes.fromhex(POLL_BOOK[2:])
        + (7).to_bytes(32, "big")
        + (2).to_bytes(4, "big")
        + bytes.fromhex(TOKEN[2:])
    )
    assert hpke.ballot_info(CHAIN_ID, bytes.fromhex(POLL_BOOK[2:]), 7, 2, bytes.fromhex(TOKEN[2:])) == info
    for bad in (
        dict(chain_id=-1),
        dict(poll_id=1 << 256),
        dict(stratum=1 << 32),
        dict(token=b"\x01" * 19),
        dict(poll_book="0x1234"),
    ):
        args = dict(chain_id=CHAIN_ID, poll_book=POLL_BOOK, poll_id=7, stratum=2, token=TOKEN) | bad
        with pytest.raises(EncodingError):
            hpke.ballot_info(**args)


def test_a_ballot_opens_under_its_info():
    ciphertext = hpke.seal_ballot(OPENER.joint_key, INFO, CHOICE)
    assert len(ciphertext) == hpke.sealed_length(len(CHOICE)) == len(CHOICE) + 82
    assert ciphertext[0] == 0x02 and ciphertext[1] == 0x04  # version, then uncompressed enc
    assert OPENER.open(ciphertext, INFO) == CHOICE
    assert hpke.seal_ballot(OPENER.joint_key, INFO, CHOICE) != ciphertext  # a fresh enc each time
    assert plaintext.decode_choice(OPENER.open(ciphertext, INFO), 10, 1) == (3,)


def test_the_opener_checks_and_hides_its_secret():
    secret = ec.generate_private_key(CURVE)
    opener = hpke.Opener(i2osp(secret.private_numbers().private_value, 32))
    assert opener.joint_key == secret.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    assert i2osp(secret.private_numbers().private_value, 32).hex() not in repr(opener)
    for bad in (bytes(31), bytes(32), i2osp(ORDER, 32), b"\xff" * 32, bytes(33)):
        with pytest.raises(SealingError, match="secret"):
            hpke.Opener(bad)
    assert hpke.Opener(i2osp(ORDER - 1, 32)).joint_key[0] in (2, 3)


def test_joint_keys_are_compressed_points_on_the_curve():
    uncompressed = (
        ec.generate_private_key(CURVE)
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    off_curve = next(b"\x02" + i2osp(x, 32) for x in range(1, 100) if not on_curve(b"\x02" + i2osp(x, 32)))
    for bad in (uncompressed, b"\x04" + OPENER.joint_key[1:], OPENER.joint_key[:32], bytes(33), off_curve):
        with pytest.raises(SealingError, match="joint key"):
            hpke.seal_ballot(bad, INFO, CHOICE)


def on_curve(point: bytes) -> bool:
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(CURVE, point)
    except ValueError:
        return False
    return True


def test_a_malformed_info_is_the_callers_mistake_not_a_spoiled_ballot():
    ciphertext = hpke.seal_ballot(OPENER.joint_key, INFO, CHOICE)
    for bad in (INFO[:-1], INFO + b"\x00", b"veche/ballot/v1" + INFO[15:]):
        with pytest.raises(EncodingError):
            OPENER.open(ciphertext, bad)
        with pytest.raises(EncodingError):
            hpke.seal_ballot(OPENER.joint_key, bad, CHOICE)


@pytest.mark.parametrize(
    "other",
    [
        dict(token=OTHER_TOKEN),
        dict(poll_id=8),
        dict(stratum=3),
        dict(chain_id=CHAIN_ID + 1),
        dict(poll_book=OTHER_POLL_BOOK),
    ],
    ids=["token", "poll", "stratum", "chain", "PollBook"],
)
def test_a_ballot_copied_to_another_context_does_not_open(other):
    ciphertext = hpke.seal_ballot(OPENER.joint_key, INFO, CHOICE)
    fields = dict(chain_id=CHAIN_ID, poll_book=POLL_BOOK, poll_id=7, stratum=2, token=TOKEN) | other
    with pytest.raises(SealingError, match="does not open under this key and info"):
        OPENER.open(ciphertext, hpke.ballot_info(**fields))


def test_another_key_does_not_open_it():
    ciphertext = hpke.seal_ballot(OPENER.joint_key, INFO, CHOICE)
    with pytest.raises(SealingError, match="does not open"):
        fresh_opener().open(ciphertext, INFO)


def test_every_bit_flip_is_refused_with_the_reason():
    ciphertext = hpke.seal_ballot(OPENER.joint_key, INFO, CHOICE)
    for bit in range(len(ciphertext) * 8):
        tampered = bytearray(ciphertext)
        tampered[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(SealingError) as refused:
            OPENER.open(bytes(tampered), INFO)
        message = str(refused.value)
        if bit < 8:
            assert "version" in message
        elif bit < 16:
            assert "not an uncompressed P-256 point" in message
        elif bit < 8 * 66:
            assert "not a point on P-256" in message or "does not open" in message
        else:
            assert "does not open" in message


def test_wrong_version_byte():
    ciphertext = hpke.seal_ballot(OPENER.joint_key, INFO, CHOICE)
    for version in (0x00, 0x01, 0x03, 0x04, 0xFF):
        with pytest.raises(SealingError, match=f"unknown ballot ciphertext version 0x{version:02x}"):
            OPENER.open(bytes([version]) + ciphertext[1:], INFO)


def test_truncated_or_extended():
    ciphertext = hpke.seal_ballot(OPENER.joint_key, INFO, CHOICE)
    for length in range(82):
        with pytest.raises(SealingError, match="shorter than its 82-byte overhead"):
            OPENER.open(ciphertext[:length], INFO)
    for length in range(82, len(ciphertext)):
        with pytest.raises(SealingError, match="does not open"):
            OPENER.open(ciphertext[:length], INFO)
    with pytest.raises(SealingError, match="does not open"):
        OPENER.open(ciphertext + b"\x00", INFO)


def test_an_identity_or_off_curve_enc_is_refused():
    ciphertext = hpke.seal_ballot(OPENER.joint_key, INFO, CHOICE)
    body = ciphertext[66:]
    with pytest.raises(SealingError, match="not an uncompressed P-256 point"):
        OPENER.open(b"\x02\x00" + bytes(64) + body, INFO)
    with pytest.raises(SealingError, match="not a point on P-256"):
        OPENER.open(b"\x02\x04" + bytes(64) + body, INFO)
    compressed = b"\x02" + OPENER.joint_key + bytes(32) + body  # a 33-byte enc padded to 65
    with pytest.raises(SealingError, match="not an uncompressed"):
        OPENER.open(compressed, INFO)


@pytest.mark.parametrize("option_count,max_choices", [(2, 1), (10, 1), (10, 3), (255, 4)])
def test_the_ciphertext_length_does_not_depend_on_the_choice(option_count, max_choices):
    choices = [[i] for i in range(option_count)] + [list(range(max_choices)), list(range(option_count))[-max_choices:]]
    lengths = {
        len(hpke.seal_ballot(OPENER.joint_key, INFO, plaintext.encode_choice(c, option_count, max_choices)))
        for c in choices
    }
    assert lengths == {hpke.sealed_length(plaintext.plaintext_length(option_count))}

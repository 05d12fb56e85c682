"""Ballot ciphertext v2: RFC 9180 HPKE to the trustees' joint P-256 key (docs/protocol.md, v2 ballots).

The suite is fixed: Base mode, DHKEM(P-256, HKDF-SHA256) (kem_id 0x0010), HKDF-SHA256 (kdf_id 0x0001),
AES-128-GCM (aead_id 0x0001), the single-shot API with an empty aad. All of HPKE is
`cryptography.hazmat.primitives.hpke` (OpenSSL underneath); this module only lays out the bytes.

- The joint key Y is 33 bytes on chain (SEC1 compressed); the KEM takes and gives points uncompressed
  (65 bytes, 0x04 ‖ x ‖ y), so `enc` is 65 bytes.
- info = "veche/ballot/v2" (15 ASCII bytes) ‖ chainId (32) ‖ PollBook (20) ‖ pollId (32) ‖ stratum (4)
  ‖ token address (20): 123 bytes. The context goes in info, not aad, as RFC 9180 §8.1 advises for
  the single-shot API: info enters the key schedule, so a ballot copied to another token, stratum,
  poll, PollBook or chain derives another key and fails AES-GCM's tag check.
- ciphertext = 0x02 ‖ enc (65) ‖ AES-128-GCM(plaintext) (len + 16): 82 bytes longer than the
  plaintext, which is the fixed-length choice encoding of `veche_core.plaintext`, so every ballot
  of a poll has the same length whatever it chose.

"Does not open" (SealingError) means any of: not the 0x02 version, too short, an `enc` that is not
an uncompressed P-256 point, or an AES-GCM tag that fails under the key derived from this secret
and this info (another key, another info, or any altered byte). The verifier lists such ballots
as spoiled and does not count them.
"""

from __future__ import annotations

import functools

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from ._encoding import address_bytes, uint_bytes
from .errors import EncodingError, SealingError

CIPHERTEXT_VERSION = 0x02
INFO_TAG = b"veche/ballot/v2"
INFO_LENGTH = len(INFO_TAG) + 32 + 20 + 32 + 4 + 20  # 123
JOINT_KEY_LENGTH = 33  # SEC1 compressed P-256 point
SECRET_LENGTH = 32
ENC_LENGTH = 65  # SEC1 uncompressed P-256 point (RFC 9180 §7.1.1 SerializePublicKey)
TAG_LENGTH = 16
SEAL_OVERHEAD = 1 + ENC_LENGTH + TAG_LENGTH  # 82

# RFC 9180 identifiers of the suite (the Suite below is built from the same three choices).
KEM_ID, KDF_ID, AEAD_ID = 0x0010, 0x0001, 0x0001
SUITE = Suite(KEM.P256, KDF.HKDF_SHA256, AEAD.AES_128_GCM)

_CURVE = ec.SECP256R1()
_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def ballot_info(chain_id: int, poll_book: str | bytes, poll_id: int, stratum: int, token: str | bytes) -> bytes:
    """The 123-byte info: "veche/ballot/v2" ‖ chainId (32) ‖ PollBook (20) ‖ pollId (32) ‖ stratum (4) ‖ token."""
    return (
        INFO_TAG
        + uint_bytes(chain_id, 32, "chain id")
        + address_bytes(poll_book, "PollBook address")
        + uint_bytes(poll_id, 32, "poll id")
        + uint_bytes(stratum, 4, "stratum")
        + address_bytes(token, "token address")
    )


def sealed_length(plaintext_length: int) -> int:
    return plaintext_length + SEAL_OVERHEAD


def _check_info(info: bytes) -> None:
    # A malformed info is the caller's mistake, not the ballot's: EncodingError, never SealingError,
    # so that it cannot pass for a spoiled ballot.
    if len(info) != INFO_LENGTH or not info.startswith(INFO_TAG):
        raise EncodingError("not a v2 ballot info (123 bytes starting with 'veche/ballot/v2')")


@functools.lru_cache(maxsize=16)
def _joint_public_key(joint_key: bytes) -> ec.EllipticCurvePublicKey:
    # Decoded (and checked on the curve by OpenSSL) once per key, not once per ballot.
    if len(joint_key) != JOINT_KEY_LENGTH or joint_key[0] not in (0x02, 0x03):
        raise SealingError("the joint key must be a 33-byte compressed P-256 point (0x02/0x03 ‖ x)")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, joint_key)
    except ValueError:
        raise SealingError("the joint key is not a point on P-256") from None


def seal_ballot(joint_key: bytes, info: bytes, plaintext: bytes) -> bytes:
    """0x02 ‖ enc ‖ AES-128-GCM(plaintext): `plaintext` sealed to the joint key under `info`."""
    info = bytes(info)
    _check_info(info)
    sealed = SUITE.encrypt(bytes(plaintext), _joint_public_key(bytes(joint_key)), info)
    return bytes([CIPHERTEXT_VERSION]) + sealed


class Opener:
    """Opens many v2 ballots under the rebuilt election secret.

    The secret is the joint key's discrete log x as 32 big-endian bytes (1 ≤ x < n), as rebuilt
    from the trustees' released shares. The OpenSSL key object is built once here; each `open`
    then costs one HPKE decryption (one P-256 ECDH, the HKDF key schedule, AES-GCM).
    """

    def __init__(self, secret: bytes) -> None:
        secret = bytes(secret)
        if len(secret) != SECRET_LENGTH:
            raise SealingError("the election secret is a 32-byte scalar")
        scalar = int.from_bytes(secret, "big")
        if not 0 < scalar < _ORDER:
            raise SealingError("the election secret must be a scalar in 1..n-1 of P-256")
        self._key = ec.derive_private_key(scalar, _CURVE)
        self._joint_key = self._key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )

    def __repr__(self) -> str:
        return f"Opener(joint_key={self._joint_key.hex()}, secret hidden)"

    @property
    def joint_key(self) -> bytes:
        """x·B, 33 bytes compressed: compare it with the certified key before opening anything."""
        return self._joint_key

    def open(self, ciphertext: bytes, info: bytes) -> bytes:
        """The plaintext; SealingError if the ballot does not open under this secret and `info`."""
        ciphertext, info = bytes(ciphertext), bytes(info)
        _check_info(info)
        if len(ciphertext) < SEAL_OVERHEAD:
            raise SealingError(
                f"v2 ballot ciphertext is {len(ciphertext)} bytes, shorter than its {SEAL_OVERHEAD}-byte overhead"
            )
        if ciphertext[0] != CIPHERTEXT_VERSION:
            raise SealingError(f"unknown ballot ciphertext version 0x{ciphertext[0]:02x} (v2 is 0x02)")
        try:
            return SUITE.decrypt(ciphertext[1:], self._key, info)
        except (InvalidTag, ValueError):
            raise SealingError(_why_not(ciphertext[1 : 1 + ENC_LENGTH])) from None


def _why_not(enc: bytes) -> str:
    # Only on the failure path: decoding enc again costs a point check that `open` need not pay.
    if enc[0] != 0x04:
        return "the ballot's encapsulated key is not an uncompressed P-256 point (0x04 ‖ x ‖ y)"
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, enc)
    except ValueError:
        return "the ballot's encapsulated key is not a point on P-256"
    return (
        "ballot does not open under this key and info "
        "(sealed for another token, stratum, poll, PollBook, chain or key, or altered)"
    )

"""The P-256 group of the key ceremony (COCKTAIL(P-256, SHA-256)): encodings and arithmetic.

Why two libraries, and no curve formulas of our own (docs/protocol.md §"Key ceremony"):
- Every multiplication by a secret scalar goes through OpenSSL (`cryptography`), whose P-256 code
  is constant-time and widely reviewed. k·B is `derive_private_key(k).public_key()`. OpenSSL's
  only k·P for a point P of our choosing is ECDH, which returns x(k·P) alone; the y-parity is
  decided by one more exchange with k+1: of the two points with that x, S = k·P is the one for
  which x(S + P) = x((k+1)·P). (The other candidate, −k·P, gives x((1−k)·P), which differs for
  every k ∉ {0, −1}; both candidates and the addition are public; OpenSSL decompresses the
  even one, pycryptodome checks it is on the curve.) This is how the value is computed, not a
  protocol rule: any implementation that gets k·P gets the same bytes.
- Public arithmetic (additions, multiplication of a public point by a public scalar, decoding
  and validating SEC1 points) goes through pycryptodome's `EccPoint`.

Encodings follow RFC 9591's FROST(P-256, SHA-256), as COCKTAIL prescribes: a scalar is 32 bytes
big-endian and must be < q; a point is 33 bytes SEC1 compressed (0x02/0x03 ‖ x); the identity is
33 zero bytes, refused wherever COCKTAIL says so (commitments, ephemeral and static keys, Schnorr
R). pycryptodome accepts an x ≥ p (it reduces it); that is refused here, so each point has one
encoding.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable

from Crypto.PublicKey import ECC
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec

from .errors import EncodingError

# SEC 2 / FIPS 186-4 domain parameters of P-256 (secp256r1).
FIELD_PRIME = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
_GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

SCALAR_SIZE = 32
POINT_SIZE = 33
IDENTITY_ENCODING = bytes(POINT_SIZE)

_CURVE = "p256"
_OPENSSL_CURVE = ec.SECP256R1()

RandomBytes = Callable[[int], bytes]


class Point:
    """An immutable P-256 point (pycryptodome inside); its SEC1 encoding is computed once.

    `*` takes a public scalar only: a secret one goes through `mul_base` or `mul_secret`.
    """

    __slots__ = ("_ecc", "_encoding")

    def __init__(self, ecc: ECC.EccPoint, encoding: bytes | None = None) -> None:
        self._ecc = ecc
        self._encoding = encoding

    def encode(self) -> bytes:
        """33 bytes: SEC1 compressed, or 33 zero bytes for the identity."""
        if self._encoding is None:
            if self._ecc.is_point_at_infinity():
                self._encoding = IDENTITY_ENCODING
            else:
                x, y = self._ecc.xy
                self._encoding = _sec1(int(x), int(y))
        return self._encoding

    @property
    def is_identity(self) -> bool:
        return self._ecc.is_point_at_infinity()

    def x_bytes(self) -> bytes:
        """The 32-byte x coordinate (what ECDH returns); the identity has none."""
        if self.is_identity:
            raise EncodingError("the identity has no x coordinate")
        return self.encode()[1:]

    def __add__(self, other: Point) -> Point:
        return Point(self._ecc + other._ecc)

    def __neg__(self) -> Point:
        # Negation flips the y-parity: the encoding follows without leaving Montgomery form.
        encoding = self._encoding
        if encoding is not None and encoding != IDENTITY_ENCODING:
            encoding = bytes([encoding[0] ^ 1]) + encoding[1:]
        return Point(-self._ecc, encoding)

    def __sub__(self, other: Point) -> Point:
        return Point(self._ecc + (-other._ecc))

    def __mul__(self, scalar: int) -> Point:
        return Point(self._ecc * (scalar % ORDER))

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Point):
            return NotImplemented
        return self._ecc == other._ecc

    def __hash__(self) -> int:
        return hash(self.encode())

    def __repr__(self) -> str:
        return f"Point({self.encode().hex()})"


def _sec1(x: int, y: int) -> bytes:
    return bytes([2 | (y & 1)]) + x.to_bytes(SCALAR_SIZE, "big")


def _from_openssl(public_key: ec.EllipticCurvePublicKey) -> Point:
    numbers = public_key.public_numbers()
    # EccPoint checks that (x, y) is on the curve (P-256 has cofactor 1: on the curve = in the group).
    return Point(ECC.EccPoint(numbers.x, numbers.y, curve=_CURVE), _sec1(numbers.x, numbers.y))


GENERATOR = Point(ECC.EccPoint(_GX, _GY, curve=_CURVE))
IDENTITY = Point(GENERATOR._ecc.point_at_infinity(), IDENTITY_ENCODING)


# --- scalars ---------------------------------------------------------------------------------


def encode_scalar(value: int) -> bytes:
    """32 bytes big-endian; the value must already be reduced (COCKTAIL: reduce before encoding)."""
    if not 0 <= value < ORDER:
        raise EncodingError("a scalar must be in [0, q)")
    return value.to_bytes(SCALAR_SIZE, "big")


def decode_scalar(data: bytes) -> int:
    """A canonical 32-byte scalar; EncodingError for a wrong length or a value ≥ q."""
    if len(data) != SCALAR_SIZE:
        raise EncodingError("a scalar is 32 bytes")
    value = int.from_bytes(data, "big")
    if value >= ORDER:
        raise EncodingError("scalar is not reduced modulo q")
    return value


def random_scalar(random_bytes: RandomBytes = secrets.token_bytes) -> int:
    """A uniform scalar in [1, q): 32 bytes big-endian, drawn again while ≥ q or 0 (rejection).

    `random_bytes` is the operating system's CSPRNG; tests pass a deterministic stream (the
    COCKTAIL vectors draw their scalars exactly this way).
    """
    while True:
        value = int.from_bytes(random_bytes(SCALAR_SIZE), "big")
        if 0 < value < ORDER:
            return value


def hash_to_scalar(data: bytes) -> int:
    """COCKTAIL's P-256 HashToScalar: OS2IP(SHA256(0x01 ‖ m) ‖ SHA256(0x02 ‖ m)[:16]) mod q.

    48 bytes are reduced so that the bias is ≤ 2⁻¹²⁸ (32 bytes would give ≈ 2⁻³²).
    """
    wide = hashlib.sha256(b"\x01" + data).digest() + hashlib.sha256(b"\x02" + data).digest()[:16]
    return int.from_bytes(wide, "big") % ORDER


# --- points ----------------------------------------------------------------------------------


def decode_point(data: bytes, *, allow_identity: bool = False) -> Point:
    """A validated point from 33 bytes; EncodingError if it is not one (or is the identity and
    `allow_identity` is false)."""
    data = bytes(data)
    if len(data) != POINT_SIZE:
        raise EncodingError("a point is 33 bytes (SEC1 compressed)")
    if data == IDENTITY_ENCODING:
        if allow_identity:
            return IDENTITY
        raise EncodingError("the identity point is not allowed here")
    if data[0] not in (2, 3):
        raise EncodingError("a point starts with 0x02 or 0x03")
    if int.from_bytes(data[1:], "big") >= FIELD_PRIME:
        raise EncodingError("point x coordinate is not reduced modulo p")
    try:
        ecc = ECC.import_key(data, curve_name=_CURVE).pointQ
    except ValueError:
        raise EncodingError("not a point of P-256") from None
    return Point(ecc, data)


def sum_points(points: Iterable[Point]) -> Point:
    total = IDENTITY
    for point in points:
        total = total + point
    return total


def mul_base(scalar: int) -> Point:
    """scalar·B through OpenSSL (for a secret scalar, or one that may be); 0 gives the identity."""
    if not 0 <= scalar < ORDER:
        raise EncodingError("a scalar must be in [0, q)")
    if scalar == 0:
        return IDENTITY
    return _from_openssl(ec.derive_private_key(scalar, _OPENSSL_CURVE).public_key())


def _openssl_public(point: Point) -> ec.EllipticCurvePublicKey:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_OPENSSL_CURVE, point.encode())
    except (ValueError, UnsupportedAlgorithm):
        raise EncodingError("not a point of P-256") from None


def mul_secret(scalar: int, point: Point) -> Point:
    """scalar·point for a secret scalar in [1, q) and a public non-identity point, through OpenSSL
    ECDH (the x coordinate) and the (k+1) exchange for the y-parity (module docstring)."""
    if not 0 < scalar < ORDER:
        raise EncodingError("a secret scalar must be in [1, q)")
    if point.is_identity:
        raise EncodingError("cannot multiply the identity")
    peer = _openssl_public(point)
    x = ec.derive_private_key(scalar, _OPENSSL_CURVE).exchange(ec.ECDH(), peer)
    following = (scalar + 1) % ORDER
    if following == 0:  # scalar = −1
        return -point
    x_following = ec.derive_private_key(following, _OPENSSL_CURVE).exchange(ec.ECDH(), peer)
    even = _from_openssl(ec.EllipticCurvePublicKey.from_encoded_point(_OPENSSL_CURVE, b"\x02" + x))
    candidate_sum = even + point
    if not candidate_sum.is_identity and candidate_sum.x_bytes() == x_following:
        return even
    return -even


def is_valid_public_key(data: bytes) -> bool:
    """True when `data` is a non-identity P-256 point in SEC1 compressed form."""
    try:
        decode_point(data)
    except EncodingError:
        return False
    return True

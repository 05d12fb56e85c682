"""RFC 9474 RSA blind signatures (RSABSSA-SHA384-PSS[ZERO]-{Randomized,Deterministic}).

Why this shape:
- The protocol steps (prepare, blind, blind_sign, finalize, verify) follow RFC 9474 §4 step by
  step, with EMSA-PSS from RFC 8017 §9.1 (SHA-384, MGF1-SHA-384). They are written out here
  rather than borrowed from a signing library because no vetted Python library exposes the
  *blind* half of the protocol, and the verifier must not depend on a heavy one.
- Verification is plain RSASSA-PSS, so it is OpenSSL's (through `cryptography`): vetted, and
  2-3x faster than modular exponentiation in Python — a verifier checks one per ballot. It
  always uses the variant's exact salt length (48 for PSS, 0 for PSSZERO): an "auto" salt
  length would accept signatures the variant does not allow.
- The signer uses the CRT with `gmpy2.powmod_sec` (constant-time exponentiation) on p and q,
  and checks s^e mod n == m before returning, as RFC 9474 §4.3 requires: a faulty CRT half
  would otherwise hand the client a factor of n (the Bellcore attack).
- Key generation and PKCS#8 use pycryptodome (vetted prime generation; already a dependency
  of eth-hash[pycryptodome]), imported lazily: a verifier never needs private keys.
- The issuer public key encoding carries the variant, so a verifier learns sLen and the
  prefix length from chain state alone (docs/protocol.md §"Issuer public key").
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass, field

import gmpy2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .errors import EncodingError, SignatureError

HASH_LENGTH = 48  # SHA-384
PREFIX_LENGTH = 32  # RFC 9474 §4.1: Randomized variants prepend 32 random bytes
MIN_MODULUS_BITS = 2048
MAX_MODULUS_BITS = 4096
PUBLIC_EXPONENT = 65537

PUBLIC_KEY_VERSION = 0x01
PRIVATE_KEY_VERSION = 0x01


class Variant(enum.IntEnum):
    """The four RFC 9474 §5 variants; the value is the byte stored in encoded keys."""

    PSS_RANDOMIZED = 0x01
    PSSZERO_RANDOMIZED = 0x02
    PSS_DETERMINISTIC = 0x03
    PSSZERO_DETERMINISTIC = 0x04

    @property
    def salt_length(self) -> int:
        return HASH_LENGTH if self in (Variant.PSS_RANDOMIZED, Variant.PSS_DETERMINISTIC) else 0

    @property
    def prefix_length(self) -> int:
        randomized = self in (Variant.PSS_RANDOMIZED, Variant.PSSZERO_RANDOMIZED)
        return PREFIX_LENGTH if randomized else 0

    @property
    def rfc_name(self) -> str:
        pss = "PSS" if self.salt_length else "PSSZERO"
        prepare = "Randomized" if self.prefix_length else "Deterministic"
        return f"RSABSSA-SHA384-{pss}-{prepare}"

    @classmethod
    def from_rfc_name(cls, name: str) -> Variant:
        for variant in cls:
            if variant.rfc_name == name:
                return variant
        raise EncodingError(f"unknown RFC 9474 variant {name!r}")


#: The variant Veche uses for ballot tokens (RFC 9474 §5 recommends a Randomized variant).
DEFAULT_VARIANT = Variant.PSS_RANDOMIZED


def _i2osp(value: int, length: int) -> bytes:
    return int(value).to_bytes(length, "big")


def _os2ip(data: bytes) -> int:
    return int.from_bytes(data, "big")


@dataclass(frozen=True)
class PublicKey:
    """An issuer public key bound to one RFC 9474 variant."""

    n: int
    e: int
    variant: Variant = DEFAULT_VARIANT
    _n: gmpy2.mpz = field(init=False, repr=False, compare=False)
    _openssl: rsa.RSAPublicKey = field(init=False, repr=False, compare=False)
    _pss: padding.PSS = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.variant, Variant):
            raise EncodingError("unknown blind-RSA variant")
        bits = int(self.n).bit_length()
        if not MIN_MODULUS_BITS <= bits <= MAX_MODULUS_BITS:
            raise EncodingError(f"RSA modulus must have {MIN_MODULUS_BITS}..{MAX_MODULUS_BITS} bits")
        if self.n % 2 == 0:
            raise EncodingError("RSA modulus must be odd")
        if self.e != PUBLIC_EXPONENT:
            raise EncodingError(f"RSA public exponent must be {PUBLIC_EXPONENT}")
        object.__setattr__(self, "_n", gmpy2.mpz(self.n))
        object.__setattr__(self, "_openssl", rsa.RSAPublicNumbers(self.e, self.n).public_key())
        object.__setattr__(self, "_pss", padding.PSS(padding.MGF1(hashes.SHA384()), self.variant.salt_length))

    def __reduce__(self) -> tuple[type[PublicKey], tuple[int, int, Variant]]:
        """Pickled as (n, e, variant): the OpenSSL key object is rebuilt, not copied (worker
        processes receive issuer keys)."""
        return (PublicKey, (self.n, self.e, self.variant))

    @property
    def modulus_bits(self) -> int:
        return int(self.n).bit_length()

    @property
    def modulus_length(self) -> int:
        """k in RFC 9474: the length in bytes of n, of blinded messages and of signatures."""
        return (self.modulus_bits + 7) // 8

    def encode(self) -> bytes:
        """version 0x01 ‖ variant (1) ‖ k (2, BE) ‖ n (k, BE) ‖ e (4, BE)."""
        k = self.modulus_length
        return bytes([PUBLIC_KEY_VERSION, self.variant]) + k.to_bytes(2, "big") + _i2osp(self.n, k) + _i2osp(self.e, 4)

    @classmethod
    def decode(cls, data: bytes) -> PublicKey:
        """Strict inverse of `encode`: one key has exactly one encoding."""
        data = bytes(data)
        if len(data) < 4:
            raise EncodingError("issuer public key is too short")
        if data[0] != PUBLIC_KEY_VERSION:
            raise EncodingError(f"unknown issuer public key version {data[0]}")
        try:
            variant = Variant(data[1])
        except ValueError:
            raise EncodingError(f"unknown blind-RSA variant {data[1]}") from None
        k = int.from_bytes(data[2:4], "big")
        if len(data) != 4 + k + 4:
            raise EncodingError("issuer public key length does not match its modulus length")
        n_bytes = data[4 : 4 + k]
        if k == 0 or n_bytes[0] == 0:
            raise EncodingError("RSA modulus has a leading zero byte")
        return cls(_os2ip(n_bytes), _os2ip(data[4 + k :]), variant)


@dataclass(frozen=True, repr=False)
class PrivateKey:
    """An issuer private key; `repr` never shows a secret."""

    n: int
    e: int
    d: int
    p: int
    q: int
    variant: Variant = DEFAULT_VARIANT
    # (p, q, d mod p-1, d mod q-1, q^-1 mod p, the public key): what blind_sign needs
    _crt: tuple[gmpy2.mpz, gmpy2.mpz, gmpy2.mpz, gmpy2.mpz, gmpy2.mpz, PublicKey] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        public = PublicKey(self.n, self.e, self.variant)  # validates n, e, variant
        p, q = gmpy2.mpz(self.p), gmpy2.mpz(self.q)
        if p * q != public._n or p < 3 or q < 3:
            raise EncodingError("RSA private key: p * q != n")
        lam = gmpy2.lcm(p - 1, q - 1)
        if (gmpy2.mpz(self.e) * self.d) % lam != 1:
            raise EncodingError("RSA private key: d is not the inverse of e")
        dp, dq = gmpy2.mpz(self.d) % (p - 1), gmpy2.mpz(self.d) % (q - 1)
        q_inv = gmpy2.invert(q, p)
        object.__setattr__(self, "_crt", (p, q, dp, dq, q_inv, public))

    def __repr__(self) -> str:
        return f"PrivateKey(variant={self.variant.name}, bits={self.public_key.modulus_bits})"

    @property
    def public_key(self) -> PublicKey:
        return self._crt[5]

    def to_pkcs8(self) -> bytes:
        """PKCS#8 DER (PrivateKeyInfo, rsaEncryption): what WebCrypto and OpenSSL import."""
        from Crypto.PublicKey import RSA

        return RSA.construct((self.n, self.e, self.d, self.p, self.q)).export_key(format="DER", pkcs=8)

    @classmethod
    def from_pkcs8(cls, der: bytes, variant: Variant = DEFAULT_VARIANT) -> PrivateKey:
        from Crypto.PublicKey import RSA

        try:
            key = RSA.import_key(der)
        except (ValueError, IndexError, TypeError):
            raise EncodingError("not a PKCS#8 RSA private key") from None
        if not key.has_private():
            raise EncodingError("not a PKCS#8 RSA private key")
        return cls(int(key.n), int(key.e), int(key.d), int(key.p), int(key.q), variant)

    def encode(self) -> bytes:
        """version 0x01 ‖ variant (1) ‖ PKCS#8 DER. Stored by the API, never on chain."""
        return bytes([PRIVATE_KEY_VERSION, self.variant]) + self.to_pkcs8()

    @classmethod
    def decode(cls, data: bytes) -> PrivateKey:
        data = bytes(data)
        if len(data) < 3 or data[0] != PRIVATE_KEY_VERSION:
            raise EncodingError("unknown issuer private key version")
        try:
            variant = Variant(data[1])
        except ValueError:
            raise EncodingError("unknown blind-RSA variant") from None
        return cls.from_pkcs8(data[2:], variant)


def generate_private_key(variant: Variant = DEFAULT_VARIANT, bits: int = MIN_MODULUS_BITS) -> PrivateKey:
    """A fresh issuer key (e = 65537) from pycryptodome's vetted prime generation."""
    if not MIN_MODULUS_BITS <= bits <= MAX_MODULUS_BITS:
        raise ValueError(f"RSA key size must be {MIN_MODULUS_BITS}..{MAX_MODULUS_BITS} bits")
    from Crypto.PublicKey import RSA

    key = RSA.generate(bits, e=PUBLIC_EXPONENT)
    return PrivateKey(int(key.n), int(key.e), int(key.d), int(key.p), int(key.q), variant)


# --- EMSA-PSS (RFC 8017 §9.1) with SHA-384 and MGF1-SHA-384 ---------------------------------


def _mgf1(seed: bytes, length: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha384(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return bytes(out[:length])


def emsa_pss_encode(message: bytes, em_bits: int, salt: bytes) -> bytes:
    """EMSA-PSS-ENCODE; the caller chooses the salt (random, or fixed by a test vector)."""
    em_len = (em_bits + 7) // 8
    s_len = len(salt)
    if em_len < HASH_LENGTH + s_len + 2:
        raise EncodingError("encoding error: modulus too short for the salt length")
    m_hash = hashlib.sha384(message).digest()
    h = hashlib.sha384(bytes(8) + m_hash + salt).digest()
    db = bytes(em_len - s_len - HASH_LENGTH - 2) + b"\x01" + salt
    masked = bytearray(a ^ b for a, b in zip(db, _mgf1(h, em_len - HASH_LENGTH - 1)))
    masked[0] &= 0xFF >> (8 * em_len - em_bits)
    return bytes(masked) + h + b"\xbc"


# --- RFC 9474 §4 ----------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Blinding:
    """What `blind` returns: the blinded message to send, and the secret `inv` to keep."""

    blinded_msg: bytes
    inv: bytes

    def __repr__(self) -> str:
        return f"Blinding(blinded_msg={self.blinded_msg.hex()[:16]}…, inv=<secret>)"


def prepare(public_key: PublicKey, msg: bytes, msg_prefix: bytes | None = None) -> bytes:
    """RFC 9474 §4.1: input_msg = msg_prefix ‖ msg (32 random bytes for Randomized variants).

    `msg_prefix` is a test hook (and lets a client rebuild input_msg from a stored prefix).
    """
    length = public_key.variant.prefix_length
    if msg_prefix is None:
        msg_prefix = secrets.token_bytes(length)
    if len(msg_prefix) != length:
        raise EncodingError(f"{public_key.variant.rfc_name} takes a {length}-byte prefix")
    return bytes(msg_prefix) + bytes(msg)


def blind(
    public_key: PublicKey,
    input_msg: bytes,
    *,
    salt: bytes | None = None,
    r: int | None = None,
) -> Blinding:
    """RFC 9474 §4.2. `salt` and `r` are deterministic test hooks; leave them out otherwise."""
    s_len = public_key.variant.salt_length
    if salt is None:
        salt = secrets.token_bytes(s_len)
    if len(salt) != s_len:
        raise EncodingError(f"{public_key.variant.rfc_name} takes a {s_len}-byte salt")
    n = public_key._n
    k = public_key.modulus_length
    encoded = emsa_pss_encode(input_msg, public_key.modulus_bits - 1, salt)
    m = gmpy2.mpz(_os2ip(encoded))
    if gmpy2.gcd(m, n) != 1:
        raise SignatureError("invalid input: message representative not coprime with n")
    if r is None:
        r = gmpy2.mpz(secrets.randbelow(int(n) - 1) + 1)
    r = gmpy2.mpz(r)
    if not 0 < r < n:
        raise SignatureError("blinding error: r out of range")
    try:
        inv = gmpy2.invert(r, n)
    except ZeroDivisionError:
        raise SignatureError("blinding error: r is not invertible") from None
    z = (m * gmpy2.powmod(r, public_key.e, n)) % n
    return Blinding(_i2osp(z, k), _i2osp(inv, k))


def blind_sign(private_key: PrivateKey, blinded_msg: bytes) -> bytes:
    """RFC 9474 §4.3: s = m^d mod n via CRT + powmod_sec, checked before it is returned."""
    p, q, dp, dq, q_inv, public = private_key._crt
    k = public.modulus_length
    if len(blinded_msg) != k:
        raise EncodingError(f"blinded message must be {k} bytes")
    m = gmpy2.mpz(_os2ip(blinded_msg))
    if m >= public._n:
        raise SignatureError("message representative out of range")
    s_p = gmpy2.powmod_sec(m % p, dp, p)
    s_q = gmpy2.powmod_sec(m % q, dq, q)
    s = s_q + ((q_inv * (s_p - s_q)) % p) * q
    if gmpy2.powmod(s, public.e, public._n) != m:
        raise SignatureError("signing failure")
    return _i2osp(s, k)


def finalize(public_key: PublicKey, input_msg: bytes, blind_sig: bytes, inv: bytes) -> bytes:
    """RFC 9474 §4.4: unblind and verify; returns the signature on input_msg."""
    k = public_key.modulus_length
    if len(blind_sig) != k or len(inv) != k:
        raise SignatureError("unexpected input size")
    z = gmpy2.mpz(_os2ip(blind_sig))
    s = (z * gmpy2.mpz(_os2ip(inv))) % public_key._n
    signature = _i2osp(s, k)
    verify(public_key, input_msg, signature)
    return signature


def verify(public_key: PublicKey, input_msg: bytes, signature: bytes) -> None:
    """RSASSA-PSS-VERIFY (RFC 8017 §8.1.2) with the variant's exact salt length.

    Returns None or raises SignatureError.
    """
    if len(signature) != public_key.modulus_length:
        raise SignatureError("invalid signature: wrong length")
    try:
        public_key._openssl.verify(bytes(signature), bytes(input_msg), public_key._pss, _SHA384)
    except InvalidSignature:
        raise SignatureError("invalid signature") from None


_SHA384 = hashes.SHA384()

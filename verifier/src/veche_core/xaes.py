"""XAES-256-GCM (C2SP, c2sp.org/XAES-256-GCM): AES-256-GCM with a 192-bit nonce.

Why: it is the AEAD of COCKTAIL(P-256, SHA-256), which encrypts each key-ceremony share under a
key and a 24-byte nonce both derived by H6. Built from `cryptography` only: the AES-256 block
cipher (two ECB blocks) for the NIST SP 800-108r1 counter KDF with CMAC-AES-256, and AESGCM.

Key derivation (the spec's "detailed key derivation algorithm"): L = AES-256_K(0¹²⁸); K1 = L ≪ 1,
xor 0x87 into the last byte when the top bit of L is set; Kx = AES-256_K(M1 ⊕ K1) ‖
AES-256_K(M2 ⊕ K1) with Mi = 0x00 ‖ i ‖ "X" ‖ 0x00 ‖ N[:12]; then AES-256-GCM with key Kx and
nonce N[12:]. Output: ciphertext ‖ 16-byte tag.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import SealingError

KEY_SIZE = 32
NONCE_SIZE = 24
TAG_SIZE = 16
_BLOCK_MASK = (1 << 128) - 1


def derive_key_and_nonce(key: bytes, nonce: bytes) -> tuple[bytes, bytes]:
    """The AES-256-GCM key Kx (32 bytes) and nonce Nx (12 bytes) for an XAES key and nonce."""
    if len(key) != KEY_SIZE:
        raise SealingError("an XAES-256-GCM key is 32 bytes")
    if len(nonce) != NONCE_SIZE:
        raise SealingError("an XAES-256-GCM nonce is 24 bytes")
    block = Cipher(algorithms.AES256(bytes(key)), modes.ECB()).encryptor()
    lvalue = int.from_bytes(block.update(bytes(16)), "big")
    k1 = ((lvalue << 1) & _BLOCK_MASK) ^ (0x87 * (lvalue >> 127))
    half = bytes(nonce[:12])
    m1 = int.from_bytes(b"\x00\x01X\x00" + half, "big") ^ k1
    m2 = int.from_bytes(b"\x00\x02X\x00" + half, "big") ^ k1
    derived = block.update(m1.to_bytes(16, "big") + m2.to_bytes(16, "big")) + block.finalize()
    return derived, bytes(nonce[12:])


def encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """ciphertext ‖ tag (len(plaintext) + 16 bytes)."""
    derived_key, derived_nonce = derive_key_and_nonce(key, nonce)
    return AESGCM(derived_key).encrypt(derived_nonce, bytes(plaintext), bytes(aad))


def decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes = b"") -> bytes:
    """The plaintext; SealingError if the ciphertext (or aad) was altered or the key is wrong."""
    if len(ciphertext) < TAG_SIZE:
        raise SealingError("an XAES-256-GCM ciphertext is at least its 16-byte tag")
    derived_key, derived_nonce = derive_key_and_nonce(key, nonce)
    try:
        return AESGCM(derived_key).decrypt(derived_nonce, bytes(ciphertext), bytes(aad))
    except InvalidTag:
        raise SealingError("XAES-256-GCM ciphertext does not open under this key") from None

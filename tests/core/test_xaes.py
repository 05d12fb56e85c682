"""XAES-256-GCM against C2SP's vectors: both spelled-out vectors (every intermediate of the key
derivation, so both branches of the CMAC subkey shift are exercised), and the 10,000-iteration
accumulated test. The 1,000,000-iteration one takes about half a minute in Python and is not run
here; its hash is kept in the vector file."""

from __future__ import annotations

import pytest
from core_vectors import load_vectors
from Crypto.Hash import SHAKE128
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from veche_core import xaes
from veche_core.errors import SealingError

XAES_VECTORS = load_vectors("xaes-256-gcm-vectors.json")


@pytest.mark.parametrize("vector", XAES_VECTORS["vectors"], ids=["msb0", "msb1"])
def test_spelled_out_vector(vector):
    key = bytes.fromhex(vector["key"])
    nonce = vector["nonce_ascii"].encode()
    plaintext = vector["plaintext_ascii"].encode()
    aad = vector["aad_ascii"].encode()
    # L is AES-256_K(0¹²⁸): checked on its own so a wrong K1 is told apart from a wrong L.
    block = Cipher(algorithms.AES256(key), modes.ECB()).encryptor()
    assert block.update(bytes(16)).hex() == vector["L"]
    derived_key, derived_nonce = xaes.derive_key_and_nonce(key, nonce)
    assert derived_key.hex() == vector["Kx"]
    assert derived_nonce.hex() == vector["Nx"]
    ciphertext = xaes.encrypt(key, nonce, plaintext, aad)
    assert ciphertext.hex() == vector["ciphertext"]
    assert xaes.decrypt(key, nonce, ciphertext, aad) == plaintext


def test_accumulated_10000():
    rng, digest = SHAKE128.new(), SHAKE128.new()
    assert rng.read(0) == b""
    assert SHAKE128.new().read(16).hex() == XAES_VECTORS["accumulated"]["rng_starts_with"]
    for _ in range(10_000):
        key = rng.read(32)
        nonce = rng.read(24)
        plaintext = rng.read(rng.read(1)[0])
        aad = rng.read(rng.read(1)[0])
        ciphertext = xaes.encrypt(key, nonce, plaintext, aad)
        assert xaes.decrypt(key, nonce, ciphertext, aad) == plaintext
        digest.update(ciphertext)
    assert digest.read(32).hex() == XAES_VECTORS["accumulated"]["iterations_10000"]


def test_tampering_fails():
    key, nonce = bytes(range(32)), bytes(range(24))
    ciphertext = xaes.encrypt(key, nonce, b"share", b"aad")
    for i in range(len(ciphertext)):
        altered = bytearray(ciphertext)
        altered[i] ^= 1
        with pytest.raises(SealingError):
            xaes.decrypt(key, nonce, bytes(altered), b"aad")
    with pytest.raises(SealingError):
        xaes.decrypt(key, nonce, ciphertext, b"other aad")
    with pytest.raises(SealingError):
        xaes.decrypt(key, bytes(24), ciphertext, b"aad")
    # The nonce's first half enters the key derivation, the second half GCM: both matter.
    with pytest.raises(SealingError):
        xaes.decrypt(key, nonce[:12] + bytes(12), ciphertext, b"aad")
    with pytest.raises(SealingError):
        xaes.decrypt(key, bytes(12) + nonce[12:], ciphertext, b"aad")
    with pytest.raises(SealingError, match="16-byte tag"):
        xaes.decrypt(key, nonce, ciphertext[:15])


def test_sizes_are_checked():
    with pytest.raises(SealingError, match="key is 32 bytes"):
        xaes.encrypt(bytes(31), bytes(24), b"")
    with pytest.raises(SealingError, match="nonce is 24 bytes"):
        xaes.encrypt(bytes(32), bytes(12), b"")

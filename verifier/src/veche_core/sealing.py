"""Sealing to an X25519 key with libsodium's sealed box (crypto_box_seal).

Used twice with the same primitive: a ballot plaintext sealed to the poll's election key, and a
trustee's key share sealed to that trustee's own X25519 key. A sealed box is anonymous (a fresh
ephemeral key per message), authenticated (Poly1305: any change makes it fail to open) and
randomised (sealing the same plaintext twice gives different ciphertexts).

Layout: ephemeral public key (32) ‖ XSalsa20-Poly1305 box (16-byte tag ‖ ciphertext), with nonce
= BLAKE2b-192(ephemeral public key ‖ recipient public key); 48 bytes longer than the plaintext.
"""

from __future__ import annotations

from dataclasses import dataclass

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey as _X25519PrivateKey
from nacl.public import PublicKey as _X25519PublicKey
from nacl.public import SealedBox

from .errors import SealingError

KEY_LENGTH = 32
SEAL_OVERHEAD = 48  # crypto_box_SEALBYTES


@dataclass(frozen=True, repr=False)
class X25519KeyPair:
    """An X25519 key pair (election key or trustee key); `repr` hides the secret."""

    secret_key: bytes
    public_key: bytes

    def __repr__(self) -> str:
        return f"X25519KeyPair(public_key={self.public_key.hex()})"


def generate_keypair() -> X25519KeyPair:
    secret = _X25519PrivateKey.generate()
    return X25519KeyPair(bytes(secret), bytes(secret.public_key))


def public_key_from_secret(secret_key: bytes) -> bytes:
    """The X25519 public key of a 32-byte secret (used to check a rebuilt election key)."""
    if len(secret_key) != KEY_LENGTH:
        raise SealingError("an X25519 secret key is 32 bytes")
    return bytes(_X25519PrivateKey(bytes(secret_key)).public_key)


def sealed_length(plaintext_length: int) -> int:
    return plaintext_length + SEAL_OVERHEAD


def seal(public_key: bytes, plaintext: bytes) -> bytes:
    """Seal `plaintext` to an X25519 public key."""
    if len(public_key) != KEY_LENGTH:
        raise SealingError("an X25519 public key is 32 bytes")
    try:
        return SealedBox(_X25519PublicKey(bytes(public_key))).encrypt(bytes(plaintext))
    except CryptoError:
        raise SealingError("cannot seal to this public key") from None


class Opener:
    """Opens many sealed boxes under one secret key.

    The key (and its public half, which the sealed-box nonce needs) is set up once: a verifier
    opening every ballot of a poll would otherwise pay an extra X25519 multiplication per ballot.
    """

    def __init__(self, secret_key: bytes) -> None:
        if len(secret_key) != KEY_LENGTH:
            raise SealingError("an X25519 secret key is 32 bytes")
        self._box = SealedBox(_X25519PrivateKey(bytes(secret_key)))

    def __repr__(self) -> str:
        return "Opener(secret hidden)"

    def open(self, ciphertext: bytes) -> bytes:
        """SealingError if the box was not sealed to this key or was altered."""
        if len(ciphertext) < SEAL_OVERHEAD:
            raise SealingError("sealed box is shorter than its 48-byte overhead")
        try:
            return self._box.decrypt(bytes(ciphertext))
        except CryptoError:
            raise SealingError("sealed box does not open under this key") from None


def open_sealed(secret_key: bytes, ciphertext: bytes) -> bytes:
    """Open one sealed box; SealingError if it was not sealed to this key or was altered."""
    return Opener(secret_key).open(ciphertext)


# The election key and the trustee keys are both X25519 key pairs; these names say which.
generate_election_keypair = generate_keypair
generate_trustee_keypair = generate_keypair


def seal_ballot(election_public_key: bytes, plaintext: bytes) -> bytes:
    return seal(election_public_key, plaintext)


def open_ballot(election_secret_key: bytes, ciphertext: bytes) -> bytes:
    return open_sealed(election_secret_key, ciphertext)


def seal_share(trustee_public_key: bytes, encoded_share: bytes) -> bytes:
    """Seal an encoded key share (key_shares.encode_share) to its trustee."""
    return seal(trustee_public_key, encoded_share)


def open_share(trustee_secret_key: bytes, sealed_share: bytes) -> bytes:
    return open_sealed(trustee_secret_key, sealed_share)

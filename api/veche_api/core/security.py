"""Key material: chain keys from encrypted keystores, and secrets derived from the master key.

- Chain keys (relayer, issuer, poll admin, points admin) are Web3 Secret Storage keystores,
  decrypted once at start-up by the node tooling's loader (`veche_node.keys.load_keystore`);
  the decrypted keys live only in memory and are never logged (LocalAccount's repr shows no key).
- RSA issuer private keys are stored in the database as `blind_rsa.PrivateKey.encode()` sealed
  with XSalsa20-Poly1305 (PyNaCl SecretBox) under a key derived from VECHE_SECRET_KEY; a copy
  of the database alone does not let anyone issue tokens. The poll id and stratum are bound as
  associated context by deriving a per-key subkey, so a sealed key cannot be moved to another
  poll's row unnoticed.
- (Protocol v1 recorded HMAC pseudonyms on chain; v2 records name the resident, whose signed
  request they carry, so no pseudonym key is derived any more.)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

from veche_core import blind_rsa
from veche_node.keys import load_keystore

from .config import Settings


class KeyError_(RuntimeError):
    """A sealed issuer key does not open (a keystore that does not is veche_node's KeystoreError)."""


def _derive(master: bytes, purpose: bytes) -> bytes:
    return hashlib.blake2b(purpose, key=master, digest_size=32, person=b"veche-api-v1").digest()


@dataclass(frozen=True, repr=False)
class Keys:
    relayer: LocalAccount
    issuer: LocalAccount
    admin: LocalAccount
    points_admin: LocalAccount
    _seal_key: bytes

    def __repr__(self) -> str:
        return f"Keys(relayer={self.relayer.address}, issuer={self.issuer.address}, admin={self.admin.address})"

    @classmethod
    def load(cls, settings: Settings) -> Keys:
        password = settings.keystore_password.get_secret_value()
        admin = load_keystore(settings.admin_keystore, password)
        points_admin = (
            load_keystore(settings.points_admin_keystore, password) if settings.points_admin_keystore else admin
        )
        master = settings.secret_key_bytes
        return cls(
            relayer=load_keystore(settings.relayer_keystore, password),
            issuer=load_keystore(settings.issuer_keystore, password),
            admin=admin,
            points_admin=points_admin,
            _seal_key=_derive(master, b"issuer-key-seal"),
        )

    def _box(self, poll_id: int, stratum: int) -> SecretBox:
        context = poll_id.to_bytes(32, "big") + stratum.to_bytes(4, "big")
        return SecretBox(_derive(self._seal_key, b"issuer-key/" + context))

    def seal_issuer_key(self, poll_id: int, stratum: int, key: blind_rsa.PrivateKey) -> bytes:
        return bytes(self._box(poll_id, stratum).encrypt(key.encode()))

    def open_issuer_key(self, poll_id: int, stratum: int, sealed: bytes) -> blind_rsa.PrivateKey:
        try:
            return blind_rsa.PrivateKey.decode(self._box(poll_id, stratum).decrypt(bytes(sealed)))
        except CryptoError:
            raise KeyError_(f"issuer key of poll {poll_id} stratum {stratum} does not open") from None


@dataclass(frozen=True, repr=False)
class RelayKeys:
    """A relay's one chain key (`veche-relay`): it posts ballot batches and signs receipts. It
    holds none of the city's keys, so its worker has ballots to move and nothing else."""

    relayer: LocalAccount
    issuer: None = None
    admin: None = None

    def __repr__(self) -> str:
        return f"RelayKeys(relayer={self.relayer.address})"

    @classmethod
    def load(cls, settings: Settings) -> RelayKeys:
        return cls(relayer=load_keystore(settings.relayer_keystore, settings.keystore_password.get_secret_value()))

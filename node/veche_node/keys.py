"""Operator and validator keys in standard encrypted keystores (Web Secret Storage, scrypt).

The same JSON format geth writes with `geth account new`, so a validator's key can be made here
or by its operator with geth, and geth unlocks it with the password file. Keys are never written
in the clear; `light_kdf` (scrypt n=4096, as geth's `--lightkdf`) is for tests and demos only.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from .errors import KeystoreError, NetworkConfigError

LIGHT_SCRYPT_N = 4096


def new_password() -> str:
    return secrets.token_urlsafe(24)


def write_private(path: Path, text: str) -> None:
    """Write a secret file readable by its owner only (created 0600, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def read_password(path: Path) -> str:
    """The first line of a password file, as geth's `--password` reads it."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise NetworkConfigError(f"cannot read the password file {path}: {exc}") from exc
    if not lines or not lines[0]:
        raise NetworkConfigError(f"the password file {path} is empty")
    return lines[0]


def geth_keystore_name(address: str) -> str:
    """geth's file name for a key: UTC--<time>--<address without 0x, lower case>."""
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime()) + ".000000000Z"
    return f"UTC--{stamp}--{address[2:].lower()}"


def create_keystore(path: Path, password: str, *, light_kdf: bool = False) -> LocalAccount:
    """A fresh secp256k1 key, encrypted with `password` into the keystore file `path`."""
    account = Account.create()
    encrypted = Account.encrypt(account.key, password, kdf="scrypt", iterations=LIGHT_SCRYPT_N if light_kdf else None)
    write_private(path, json.dumps(encrypted))
    return account


def load_keystore(path: Path, password: str) -> LocalAccount:
    """The key in a keystore file: the one loader of the product (operators' keys for the node
    tooling, the API's chain keys at start-up). KeystoreError names the file, never the key."""
    try:
        encrypted = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise KeystoreError(f"keystore {path} not found") from None
    except (OSError, ValueError) as exc:
        raise KeystoreError(f"cannot read the keystore {path}: {exc}") from exc
    try:
        return Account.from_key(Account.decrypt(encrypted, password))
    except (ValueError, KeyError, TypeError):
        raise KeystoreError(f"keystore {path} does not decrypt (wrong password or corrupted)") from None

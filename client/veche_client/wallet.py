"""The resident's wallet on disk: every key in a standard encrypted keystore.

- identity.json — the identity key (Web3 Secret Storage, as every Ethereum wallet reads it).
- tokens/<chain>-<pollbook>-<poll>.json — a poll's one-time token key (a keystore too), with its
  issuer credential, stratum and last sequence, so the resident can revote.
- tokens/<…>.request.json — a token request saved before it is sent and kept until answered (a
  lost 201, a killed CLI): the request as sent, the token key (a keystore) and the blinding
  state sealed with the password (argon2id + secretbox). The blinding inverse would link the
  token to the resident, so it is a secret like the keys.
- tokens/<…>.ballot.json — a signed ballot saved before it is sent and kept until answered (a
  lost 202): sent again, the same bytes, before the next vote. It holds only what the chain
  will show (the choice is sealed to the election key).
- receipts/<ballot hash>.json — the relay's signed receipts, to check later.
- trustee.json — a trustee's keys, each secret sealed with a key derived from the password
  (libsodium argon2id + secretbox): the X25519 key v1 polls seal its share to, and the P-256
  static key of v2 polls' key ceremonies (registered on chain; it is all the trustee keeps of a
  ceremony). A version-1 file (X25519 only) gets its static key added by `trustee_keys`.

The scrypt cost of the keystores is the standard one unless VECHE_KEYSTORE_SCRYPT_N says
otherwise (the tests lower it: a standard keystore takes about a second to open).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from nacl import pwhash, secret, utils
from nacl.exceptions import CryptoError

from veche_core import dkg, sealing
from veche_core.token import TokenRequest


class WalletError(Exception):
    """A wallet file is missing, unreadable, or does not open with the given password."""


def default_home() -> Path:
    return Path(os.environ.get("VECHE_HOME", Path.home() / ".veche"))


def _scrypt_n() -> int:
    return int(os.environ.get("VECHE_KEYSTORE_SCRYPT_N", 2**18))


@dataclass(frozen=True, repr=False)
class KeptTokenRequest:
    """A token request kept until answered: the token key (and its keystore, reused for the
    token file), the blinding state, the request body as sent, and its stratum."""

    account: LocalAccount
    request: TokenRequest
    body: dict[str, Any]
    stratum: int
    keystore: dict[str, Any]

    def __repr__(self) -> str:
        return f"KeptTokenRequest(poll={self.body.get('pollId')}, stratum={self.stratum}, secrets hidden)"


class Wallet:
    def __init__(self, home: Path | None = None) -> None:
        self.home = Path(home or default_home())
        self.identity_path = self.home / "identity.json"
        self.trustee_path = self.home / "trustee.json"

    # --- identity ------------------------------------------------------------------------------

    def has_identity(self) -> bool:
        return self.identity_path.exists()

    def create_identity(self, password: str) -> LocalAccount:
        return self.import_identity(Account.create().key, password)

    def import_identity(self, private_key: bytes | str, password: str) -> LocalAccount:
        if self.has_identity():
            raise WalletError(f"{self.identity_path} exists already: it holds your identity key")
        account = Account.from_key(private_key)
        self._write(self.identity_path, Account.encrypt(account.key, password, kdf="scrypt", iterations=_scrypt_n()))
        return account

    def import_keystore(self, keystore: dict[str, Any], password: str) -> LocalAccount:
        """Import an existing keystore file (checks that the password opens it)."""
        return self.import_identity(_decrypt(keystore, password, "the keystore"), password)

    def address(self) -> str:
        """The identity address, readable without the password."""
        return "0x" + self._read(self.identity_path, "no identity key: create one with `veche key create`")[
            "address"
        ].lower().removeprefix("0x")

    def identity(self, password: str) -> LocalAccount:
        keystore = self._read(self.identity_path, "no identity key: create one with `veche key create`")
        return Account.from_key(_decrypt(keystore, password, "your identity key"))

    # --- tokens --------------------------------------------------------------------------------

    def token_path(self, chain_id: int, poll_book: str, poll_id: int) -> Path:
        return self.home / "tokens" / f"{chain_id}-{poll_book.lower()}-{poll_id}.json"

    def save_token(
        self,
        path: Path,
        key: bytes,
        credential: bytes,
        stratum: int,
        sequence: int,
        password: str,
        keystore: dict[str, Any] | None = None,
    ) -> None:
        """`keystore`: the token key already encrypted (the pending request's), to skip a second scrypt."""
        self._write(
            path,
            {
                "keystore": keystore or Account.encrypt(key, password, kdf="scrypt", iterations=_scrypt_n()),
                "credential": "0x" + credential.hex(),
                "stratum": stratum,
                "sequence": sequence,
            },
        )
        self._remove(self._request_path(path))  # the request it came from is answered

    def update_sequence(self, path: Path, sequence: int) -> None:
        stored = self._read(path, "no token for this poll")
        self._write(path, {**stored, "sequence": sequence})

    def load_token(self, path: Path, password: str) -> tuple[LocalAccount, bytes, int, int] | None:
        if not path.exists():
            return None
        stored = self._read(path, "")
        account = Account.from_key(_decrypt(stored["keystore"], password, "the poll's token key"))
        return account, bytes.fromhex(stored["credential"][2:]), stored["stratum"], stored["sequence"]

    # --- requests in flight --------------------------------------------------------------------

    @staticmethod
    def _request_path(token_path: Path) -> Path:
        return token_path.with_name(token_path.stem + ".request.json")

    @staticmethod
    def _ballot_path(token_path: Path) -> Path:
        return token_path.with_name(token_path.stem + ".ballot.json")

    def save_token_request(
        self,
        path: Path,
        account: LocalAccount,
        request: TokenRequest,
        body: dict[str, Any],
        stratum: int,
        password: str,
    ) -> KeptTokenRequest:
        """Keep a token request before it is sent (for the token at `path`)."""
        keystore = Account.encrypt(account.key, password, kdf="scrypt", iterations=_scrypt_n())
        blinding = json.dumps(
            {"inputMsg": request.input_msg.hex(), "blindedMsg": request.blinded_msg.hex(), "inv": request.inv.hex()}
        ).encode()
        self._write(
            self._request_path(path),
            {
                "version": 1,
                "request": body,
                "stratum": stratum,
                "keystore": keystore,
                "blinding": _seal(password, blinding),
            },
        )
        return KeptTokenRequest(account, request, body, stratum, keystore)

    def load_token_request(self, path: Path, password: str) -> KeptTokenRequest | None:
        request_path = self._request_path(path)
        if not request_path.exists():
            return None
        stored = self._read(request_path, "")
        account = Account.from_key(_decrypt(stored["keystore"], password, "the pending token request's key"))
        blinding = json.loads(_open(password, stored["blinding"], "the pending token request"))
        request = TokenRequest(
            bytes.fromhex(blinding["inputMsg"]), bytes.fromhex(blinding["blindedMsg"]), bytes.fromhex(blinding["inv"])
        )
        return KeptTokenRequest(account, request, stored["request"], stored["stratum"], stored["keystore"])

    def drop_token_request(self, path: Path) -> None:
        self._remove(self._request_path(path))

    def save_pending_ballot(self, path: Path, body: dict[str, Any]) -> None:
        """Keep a signed ballot (the request body) before it is sent, for the token at `path`."""
        self._write(self._ballot_path(path), {"version": 1, "ballot": body})

    def pending_ballot(self, path: Path) -> dict[str, Any] | None:
        ballot_path = self._ballot_path(path)
        return self._read(ballot_path, "")["ballot"] if ballot_path.exists() else None

    def drop_pending_ballot(self, path: Path) -> None:
        self._remove(self._ballot_path(path))

    # --- receipts ------------------------------------------------------------------------------

    def save_receipt(self, receipt: dict[str, Any], relay: str | None = None) -> Path:
        """The receipt as the relay signed it (what `veche-verify receipt` reads), and beside it
        the URL of the relay that carried the ballot (asked for its status later)."""
        path = self.home / "receipts" / f"{receipt['ballotHash']}.json"
        self._write(path, receipt)
        if relay is not None:
            path.with_suffix(".relay").write_text(relay + "\n")
        return path

    def receipt_relay(self, ballot_hash: str) -> str | None:
        """The relay that carried the ballot, if its receipt was kept with it."""
        path = self.home / "receipts" / f"{ballot_hash}.relay"
        return path.read_text().strip() if path.exists() else None

    def receipts(self) -> list[Path]:
        return sorted((self.home / "receipts").glob("*.json"), key=lambda p: p.stat().st_mtime)

    # --- trustee key ---------------------------------------------------------------------------

    def create_trustee_key(self, password: str) -> bytes:
        """A new X25519 key pair for receiving a sealed key share; returns the public key."""
        if self.trustee_path.exists():
            raise WalletError(f"{self.trustee_path} exists already")
        pair = sealing.generate_trustee_keypair()
        sealed = _seal(password, pair.secret_key)
        self._write(
            self.trustee_path,
            {
                "version": 1,
                "publicKey": "0x" + pair.public_key.hex(),
                "salt": sealed["salt"],
                "sealedSecret": sealed["sealed"],
            },
        )
        return pair.public_key

    def trustee_keys(self, password: str) -> tuple[bytes, bytes, bool]:
        """(X25519 public key, P-256 static public key, made now): the trustee's keys, made the
        first time (both), completed for a file of an older version (the static key added, once
        the password opens the X25519 secret), and otherwise only read."""
        if not self.trustee_path.exists():
            public = self.create_trustee_key(password)
        else:
            stored = self._read(self.trustee_path, "")
            public = bytes.fromhex(stored["publicKey"][2:])
            if "staticKey" in stored:
                return public, bytes.fromhex(stored["staticKey"][2:]), False
            self.trustee_secret(password)  # the same password seals the new key
        static = dkg.StaticKey.generate()
        sealed = _seal(password, static.to_bytes())
        stored = self._read(self.trustee_path, "")
        self._write(
            self.trustee_path,
            {
                **stored,
                "version": 2,
                "staticKey": "0x" + static.public_key.hex(),
                "staticSalt": sealed["salt"],
                "sealedStaticSecret": sealed["sealed"],
            },
        )
        return public, static.public_key, True

    def trustee_static_public_key(self) -> bytes:
        """The P-256 static public key, readable without the password."""
        stored = self._read(self.trustee_path, "no trustee key: create one with `veche trustee key`")
        if "staticKey" not in stored:
            raise WalletError("your trustee key has no static key for v2 polls yet: run `veche trustee key`")
        return bytes.fromhex(stored["staticKey"][2:])

    def trustee_static_key(self, password: str) -> dkg.StaticKey:
        stored = self._read(self.trustee_path, "no trustee key: create one with `veche trustee key`")
        if "staticKey" not in stored:
            raise WalletError("your trustee key has no static key for v2 polls yet: run `veche trustee key`")
        secret_bytes = _open(
            password, {"salt": stored["staticSalt"], "sealed": stored["sealedStaticSecret"]}, "your trustee key"
        )
        key = dkg.StaticKey.from_bytes(secret_bytes)
        if key.public_key != bytes.fromhex(stored["staticKey"][2:]):
            raise WalletError(f"{self.trustee_path} is damaged: its static secret is not its public key's")
        return key

    def trustee_public_key(self) -> bytes:
        return bytes.fromhex(
            self._read(self.trustee_path, "no trustee key: create one with `veche trustee key`")["publicKey"][2:]
        )

    def trustee_secret(self, password: str) -> bytes:
        stored = self._read(self.trustee_path, "no trustee key: create one with `veche trustee key`")
        return _open(password, {"salt": stored["salt"], "sealed": stored["sealedSecret"]}, "your trustee key")

    # --- files ---------------------------------------------------------------------------------

    def _write(self, path: Path, content: dict[str, Any]) -> None:
        """Write atomically, readable by the owner only."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_suffix(".partial")
        with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            json.dump(content, out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)

    @staticmethod
    def _remove(path: Path) -> None:
        path.unlink(missing_ok=True)

    def _read(self, path: Path, missing: str) -> dict[str, Any]:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise WalletError(missing or f"{path} is missing") from None
        except (OSError, ValueError) as exc:
            raise WalletError(f"{path} is unreadable: {exc}") from None


def _decrypt(keystore: dict[str, Any], password: str, what: str) -> bytes:
    try:
        return Account.decrypt(keystore, password)
    except ValueError:
        raise WalletError(f"the password does not open {what}") from None


def _box(password: str, salt: bytes) -> secret.SecretBox:
    key = pwhash.argon2id.kdf(
        secret.SecretBox.KEY_SIZE,
        password.encode(),
        salt,
        opslimit=pwhash.argon2id.OPSLIMIT_INTERACTIVE,
        memlimit=pwhash.argon2id.MEMLIMIT_INTERACTIVE,
    )
    return secret.SecretBox(key)


def _seal(password: str, data: bytes) -> dict[str, str]:
    """`data` sealed with a key derived from the password (argon2id, a fresh salt; secretbox)."""
    salt = utils.random(pwhash.argon2id.SALTBYTES)
    return {"salt": "0x" + salt.hex(), "sealed": "0x" + _box(password, salt).encrypt(data).hex()}


def _open(password: str, sealed: dict[str, str], what: str) -> bytes:
    try:
        return _box(password, bytes.fromhex(sealed["salt"][2:])).decrypt(bytes.fromhex(sealed["sealed"][2:]))
    except CryptoError:
        raise WalletError(f"the password does not open {what}") from None

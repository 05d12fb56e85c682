"""The receipt a resident keeps: the relay's signed acknowledgement of one ballot.

The relayer key signs EIP-712 `Receipt(pollId, token, sequence, ballotHash, acceptedAt)` under
the PollBook domain. A receipt whose ballot never reached the chain — and was not superseded by a
later ballot of the same token — proves that the relay dropped it (verifier check 11).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from ._encoding import is_address, to_checksum_address
from .errors import EncodingError, SignatureError
from .typed_data import poll_book_domain, receipt_digest, recover_signer, sign_digest

RECEIPT_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Receipt:
    chain_id: int
    poll_book: str
    poll_id: int
    token: str
    sequence: int
    ballot_hash: bytes
    accepted_at: int  # unix seconds, the relay's clock
    relayer: str
    signature: bytes
    transaction_hash: bytes | None = None  # filled in once the ballot is on chain
    block_number: int | None = None

    def digest(self) -> bytes:
        return receipt_digest(
            poll_book_domain(self.chain_id, self.poll_book),
            self.poll_id,
            self.token,
            self.sequence,
            self.ballot_hash,
            self.accepted_at,
        )

    def verify_signature(self) -> None:
        """Check 11's first half: the signature recovers the relayer address the receipt names."""
        if recover_signer(self.digest(), self.signature) != to_checksum_address(self.relayer):
            raise SignatureError("receipt signature is not by the relayer it names")

    def with_inclusion(self, transaction_hash: bytes, block_number: int) -> Receipt:
        return replace(self, transaction_hash=transaction_hash, block_number=block_number)

    def to_dict(self) -> dict[str, Any]:
        """The receipt's JSON fields (camelCase, bytes as 0x hex), in field order: the API's 202
        answer is this, so it is spelled out (~0.8 µs; `dataclasses.asdict` took ~30)."""
        return {
            "version": RECEIPT_FORMAT_VERSION,
            "chainId": self.chain_id,
            "pollBook": self.poll_book,
            "pollId": self.poll_id,
            "token": self.token,
            "sequence": self.sequence,
            "ballotHash": "0x" + self.ballot_hash.hex(),
            "acceptedAt": self.accepted_at,
            "relayer": self.relayer,
            "signature": "0x" + self.signature.hex(),
            "transactionHash": None if self.transaction_hash is None else "0x" + self.transaction_hash.hex(),
            "blockNumber": self.block_number,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, raw: Any) -> Receipt:
        if not isinstance(raw, dict) or raw.get("version") != RECEIPT_FORMAT_VERSION:
            raise EncodingError(f"receipt version must be {RECEIPT_FORMAT_VERSION}")
        try:
            receipt = cls(
                chain_id=_int(raw["chainId"]),
                poll_book=_address(raw["pollBook"]),
                poll_id=_int(raw["pollId"]),
                token=_address(raw["token"]),
                sequence=_int(raw["sequence"]),
                ballot_hash=_hex(raw["ballotHash"], 32),
                accepted_at=_int(raw["acceptedAt"]),
                relayer=_address(raw["relayer"]),
                signature=_hex(raw["signature"], 65),
                transaction_hash=None if raw.get("transactionHash") is None else _hex(raw["transactionHash"], 32),
                block_number=None if raw.get("blockNumber") is None else _int(raw["blockNumber"]),
            )
        except KeyError as exc:
            raise EncodingError(f"receipt lacks field {exc}") from None
        return receipt

    @classmethod
    def from_json(cls, text: str) -> Receipt:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise EncodingError(f"receipt is not JSON: {exc}") from None


def sign_receipt(
    relayer_private_key: bytes,
    relayer: str,
    chain_id: int,
    poll_book: str,
    poll_id: int,
    token: str,
    sequence: int,
    ballot_hash: bytes,
    accepted_at: int,
) -> Receipt:
    unsigned = Receipt(
        chain_id,
        to_checksum_address(poll_book),
        poll_id,
        to_checksum_address(token),
        sequence,
        ballot_hash,
        accepted_at,
        to_checksum_address(relayer),
        b"",
    )
    return replace(unsigned, signature=sign_digest(relayer_private_key, unsigned.digest()))


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise EncodingError("receipt field must be a non-negative integer")
    return value


def _address(value: Any) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise EncodingError("receipt field must be an address")
    return to_checksum_address(value)


def _hex(value: Any, length: int) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise EncodingError("receipt field must be 0x-prefixed hex")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise EncodingError("receipt field is not hex") from None
    if len(raw) != length:
        raise EncodingError(f"receipt field must be {length} bytes")
    return raw

"""EIP-712 typed data: the one definition of every signed request in Veche.

The type strings here are byte-for-byte the ones the contracts hash (a test compares the
Solidity digests with these and with eth-account's). Digests are computed directly from the
static ABI words — every field is a static type — because the verifier computes one per ballot
and the generic encoder is an order of magnitude slower.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import coincurve

from ._encoding import to_canonical_address, to_checksum_address
from ._keccak import keccak
from .errors import SignatureError

DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
POLL_BOOK_NAME = "Veche PollBook"
CITY_POINTS_NAME = "Veche CityPoints"
DOMAIN_VERSION = "1"

BALLOT_TYPE = (
    "Ballot(uint256 pollId,address token,uint64 sequence,uint32 stratum,"
    "bytes32 ciphertextHash,bytes32 tokenSignatureHash)"
)
ISSUANCE_REQUEST_TYPE = "IssuanceRequest(uint256 pollId,uint32 stratum,bytes32 blindedMessageHash,uint64 deadline)"
KEY_SHARE_TYPE = "KeyShare(uint256 pollId,uint8 index,bytes32 shareHash)"
REDEMPTION_TYPE = "Redemption(address resident,uint256 rewardId,uint256 nonce,uint256 deadline)"
RECEIPT_TYPE = "Receipt(uint256 pollId,address token,uint64 sequence,bytes32 ballotHash,uint64 acceptedAt)"
DONATION_TYPE = "Donation(address resident,uint256 charityId,uint256 amount,uint256 nonce,uint256 deadline)"
TRUSTEE_KEY_TYPE = "TrusteeKey(address trustee,bytes32 keyHash,uint64 serial)"
CEREMONY_MESSAGE_TYPE = "CeremonyMessage(uint256 pollId,uint8 attempt,uint8 index,uint8 kind,bytes32 payloadHash)"

DOMAIN_TYPEHASH = keccak(DOMAIN_TYPE.encode())
RECEIPT_TYPEHASH = keccak(RECEIPT_TYPE.encode())
BALLOT_TYPEHASH = keccak(BALLOT_TYPE.encode())
ISSUANCE_REQUEST_TYPEHASH = keccak(ISSUANCE_REQUEST_TYPE.encode())
KEY_SHARE_TYPEHASH = keccak(KEY_SHARE_TYPE.encode())
REDEMPTION_TYPEHASH = keccak(REDEMPTION_TYPE.encode())
DONATION_TYPEHASH = keccak(DONATION_TYPE.encode())
TRUSTEE_KEY_TYPEHASH = keccak(TRUSTEE_KEY_TYPE.encode())
CEREMONY_MESSAGE_TYPEHASH = keccak(CEREMONY_MESSAGE_TYPE.encode())

_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_SECP256K1_HALF_N = _SECP256K1_N // 2
_N_BYTES, _HALF_N_BYTES = _SECP256K1_N.to_bytes(32, "big"), _SECP256K1_HALF_N.to_bytes(32, "big")
_ZERO_WORD = bytes(32)
_RECOVERY_ID = {27: b"\x00", 28: b"\x01"}


@dataclass(frozen=True)
class Domain:
    """An EIP-712 domain: a signature is valid for one contract on one chain only."""

    name: str
    chain_id: int
    verifying_contract: str
    version: str = DOMAIN_VERSION

    @cached_property
    def separator(self) -> bytes:
        """Cached: the verifier computes one digest per ballot under the same domain."""
        return keccak(
            DOMAIN_TYPEHASH
            + keccak(self.name.encode())
            + keccak(self.version.encode())
            + _uint(self.chain_id)
            + _address(self.verifying_contract)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.verifying_contract),
        }


def poll_book_domain(chain_id: int, poll_book: str) -> Domain:
    return Domain(POLL_BOOK_NAME, chain_id, poll_book)


def city_points_domain(chain_id: int, city_points: str) -> Domain:
    return Domain(CITY_POINTS_NAME, chain_id, city_points)


def _uint(value: int, bits: int = 256) -> bytes:
    if not 0 <= value < 1 << bits:
        raise ValueError(f"{value} does not fit in uint{bits}")
    return value.to_bytes(32, "big")


def _address(value: str | bytes) -> bytes:
    raw = value if isinstance(value, bytes) else to_canonical_address(value)
    if len(raw) != 20:
        raise ValueError("an address is 20 bytes")
    return bytes(12) + raw


def _bytes32(value: bytes) -> bytes:
    if len(value) != 32:
        raise ValueError("a bytes32 field is 32 bytes")
    return value


def _digest(domain: Domain, struct_hash: bytes) -> bytes:
    return keccak(b"\x19\x01" + domain.separator + struct_hash)


def ballot_digest(
    domain: Domain,
    poll_id: int,
    token: str | bytes,
    sequence: int,
    stratum: int,
    ciphertext: bytes,
    token_signature: bytes,
) -> bytes:
    """The digest a token key signs for one ballot (hashes of the two variable-length fields)."""
    return _digest(
        domain,
        keccak(
            BALLOT_TYPEHASH
            + _uint(poll_id)
            + _address(token)
            + _uint(sequence, 64)
            + _uint(stratum, 32)
            + keccak(ciphertext)
            + keccak(token_signature)
        ),
    )


def issuance_request_digest(domain: Domain, poll_id: int, stratum: int, blinded_message: bytes, deadline: int) -> bytes:
    """The digest a resident's identity key signs to ask for a ballot token."""
    return issuance_request_hash_digest(domain, poll_id, stratum, keccak(blinded_message), deadline)


def issuance_request_hash_digest(
    domain: Domain, poll_id: int, stratum: int, blinded_message_hash: bytes, deadline: int
) -> bytes:
    """The same digest from `keccak256(blinded_message)`, as an issuance record on chain holds
    it (a verifier never sees the blinded message itself)."""
    return _digest(
        domain,
        keccak(
            ISSUANCE_REQUEST_TYPEHASH
            + _uint(poll_id)
            + _uint(stratum, 32)
            + _bytes32(blinded_message_hash)
            + _uint(deadline, 64)
        ),
    )


def key_share_digest(domain: Domain, poll_id: int, index: int, share: bytes) -> bytes:
    """The digest a trustee signs to have its released share relayed by someone else."""
    return _digest(domain, keccak(KEY_SHARE_TYPEHASH + _uint(poll_id) + _uint(index, 8) + keccak(share)))


def trustee_key_digest(domain: Domain, trustee: str | bytes, key: bytes, serial: int) -> bytes:
    """The digest a trustee account signs to register (or rotate to) a static key (protocol v2)."""
    return _digest(domain, keccak(TRUSTEE_KEY_TYPEHASH + _address(trustee) + keccak(key) + _uint(serial, 64)))


def ceremony_message_digest(domain: Domain, poll_id: int, attempt: int, index: int, kind: int, payload: bytes) -> bytes:
    """The digest trustee `index` signs for one key-ceremony message (protocol v2)."""
    return _digest(
        domain,
        keccak(
            CEREMONY_MESSAGE_TYPEHASH
            + _uint(poll_id)
            + _uint(attempt, 8)
            + _uint(index, 8)
            + _uint(kind, 8)
            + keccak(payload)
        ),
    )


def redemption_digest(domain: Domain, resident: str, reward_id: int, nonce: int, deadline: int) -> bytes:
    return _digest(
        domain,
        keccak(REDEMPTION_TYPEHASH + _address(resident) + _uint(reward_id) + _uint(nonce) + _uint(deadline)),
    )


def donation_digest(domain: Domain, resident: str, charity_id: int, amount: int, nonce: int, deadline: int) -> bytes:
    return _digest(
        domain,
        keccak(
            DONATION_TYPEHASH + _address(resident) + _uint(charity_id) + _uint(amount) + _uint(nonce) + _uint(deadline)
        ),
    )


def receipt_digest(
    domain: Domain,
    poll_id: int,
    token: str | bytes,
    sequence: int,
    ballot_hash: bytes,
    accepted_at: int,
) -> bytes:
    """The digest the relayer key signs when it acknowledges a ballot (never hashed on chain)."""
    return _digest(
        domain,
        keccak(
            RECEIPT_TYPEHASH
            + _uint(poll_id)
            + _address(token)
            + _uint(sequence, 64)
            + _bytes32(ballot_hash)
            + _uint(accepted_at, 64)
        ),
    )


class DigestSigner:
    """A secp256k1 key held as a libsecp256k1 (coincurve) object, for a key that signs many
    digests (the relayer's receipts): parsing the key on every call, or going through eth-keys'
    wrapper (~150 µs a signature), cost more than the signature."""

    def __init__(self, private_key: bytes) -> None:
        self._key = coincurve.PrivateKey(bytes(private_key))

    def sign(self, digest: bytes) -> bytes:
        """A 65-byte r || s || v signature (v = 27 or 28), as ecrecover and eth-account expect;
        deterministic (RFC 6979) and low-s, which libsecp256k1 always produces."""
        signature = self._key.sign_recoverable(bytes(digest), hasher=None)
        return signature[:64] + bytes([signature[64] + 27])


def sign_digest(private_key: bytes, digest: bytes) -> bytes:
    """`DigestSigner(private_key).sign(digest)`, for a key that signs once."""
    return DigestSigner(private_key).sign(digest)


def recover_signer(digest: bytes, signature: bytes) -> str:
    """The checksummed address that signed `digest` (see recover_signer_bytes)."""
    return to_checksum_address(recover_signer_bytes(digest, signature))


def recover_signer_bytes(digest: bytes, signature: bytes) -> bytes:
    """The raw 20-byte address that signed `digest`; rejects malleable (high-s) signatures.

    Mirrors OpenZeppelin's ECDSA.tryRecover so that the chain and the verifier agree on which
    signatures are valid.
    """
    if len(digest) != 32:
        raise SignatureError("a digest is 32 bytes")
    if len(signature) != 65:
        raise SignatureError("a signature is 65 bytes (r, s, v)")
    v = signature[64]
    if v != 27 and v != 28:
        raise SignatureError("signature v must be 27 or 28")
    # Range checks on the big-endian bytes (equal lengths compare as numbers): one ballot each.
    r, s = bytes(signature[:32]), bytes(signature[32:64])
    if not (_ZERO_WORD < r < _N_BYTES and _ZERO_WORD < s):
        raise SignatureError("signature r or s is out of range")
    if s > _HALF_N_BYTES:
        raise SignatureError("signature s is in the upper half of the curve order")
    try:
        # coincurve (libsecp256k1) directly: about 1.6x faster than going through eth-keys.
        public_key = coincurve.PublicKey.from_signature_and_message(r + s + _RECOVERY_ID[v], bytes(digest), hasher=None)
    except ValueError as exc:
        raise SignatureError("signature does not recover") from exc
    return keccak(public_key.format(compressed=False)[1:])[-20:]


def eip712_message(domain: Domain, primary_type: str, message: dict[str, Any]) -> dict[str, Any]:
    """The full typed-data JSON (as wallets and eth-account's `encode_typed_data` take it)."""
    type_strings = {
        "Ballot": BALLOT_TYPE,
        "IssuanceRequest": ISSUANCE_REQUEST_TYPE,
        "KeyShare": KEY_SHARE_TYPE,
        "Redemption": REDEMPTION_TYPE,
        "Donation": DONATION_TYPE,
        "Receipt": RECEIPT_TYPE,
        "TrusteeKey": TRUSTEE_KEY_TYPE,
        "CeremonyMessage": CEREMONY_MESSAGE_TYPE,
    }
    return {
        "types": {
            "EIP712Domain": _fields(DOMAIN_TYPE),
            primary_type: _fields(type_strings[primary_type]),
        },
        "primaryType": primary_type,
        "domain": domain.as_dict(),
        "message": message,
    }


def _fields(type_string: str) -> list[dict[str, str]]:
    inner = type_string[type_string.index("(") + 1 : -1]
    return [
        {"name": name, "type": solidity_type}
        for solidity_type, name in (field.split(" ") for field in inner.split(","))
    ]

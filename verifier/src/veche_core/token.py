"""The ballot-token message and the token credential a ballot carries.

A ballot token is a one-time secp256k1 key whose address the issuer has blindly signed. The
signed message names the token address and is domain-separated (protocol tag, version, chain,
PollBook contract, poll, stratum) so that a token signature is valid for exactly one poll,
stratum and deployment. The message has a fixed length, so it needs no length prefixes.

The credential (the ballot's `tokenSignature` field) carries the RFC 9474 message prefix next to
the signature: with a Randomized variant the verifier cannot rebuild input_msg without it.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import blind_rsa
from ._encoding import address_bytes, uint_bytes
from .blind_rsa import PublicKey
from .errors import EncodingError, SignatureError

TOKEN_TAG = b"veche/ballot-token"
TOKEN_MESSAGE_VERSION = 0x01
TOKEN_MESSAGE_LENGTH = len(TOKEN_TAG) + 1 + 32 + 20 + 32 + 4 + 20  # 127
CREDENTIAL_VERSION = 0x01


@dataclass(frozen=True)
class TokenMessage:
    """The decoded fields of a token message (for tools and tests; verifiers rebuild it)."""

    chain_id: int
    poll_book: bytes
    poll_id: int
    stratum: int
    token: bytes


def token_message(chain_id: int, poll_book: str | bytes, poll_id: int, stratum: int, token: str | bytes) -> bytes:
    """tag ‖ 0x01 ‖ chainId (32) ‖ PollBook (20) ‖ pollId (32) ‖ stratum (4) ‖ token (20)."""
    return (
        TOKEN_TAG
        + bytes([TOKEN_MESSAGE_VERSION])
        + uint_bytes(chain_id, 32, "chain id")
        + address_bytes(poll_book, "PollBook address")
        + uint_bytes(poll_id, 32, "poll id")
        + uint_bytes(stratum, 4, "stratum")
        + address_bytes(token, "token address")
    )


def decode_token_message(data: bytes) -> TokenMessage:
    data = bytes(data)
    if len(data) != TOKEN_MESSAGE_LENGTH or not data.startswith(TOKEN_TAG):
        raise EncodingError("not a Veche token message")
    offset = len(TOKEN_TAG)
    if data[offset] != TOKEN_MESSAGE_VERSION:
        raise EncodingError(f"unknown token message version {data[offset]}")
    offset += 1
    fields = []
    for size in (32, 20, 32, 4, 20):
        fields.append(data[offset : offset + size])
        offset += size
    return TokenMessage(
        int.from_bytes(fields[0], "big"),
        fields[1],
        int.from_bytes(fields[2], "big"),
        int.from_bytes(fields[3], "big"),
        fields[4],
    )


@dataclass(frozen=True)
class TokenCredential:
    """The RFC 9474 message prefix (empty for Deterministic variants) and the signature."""

    msg_prefix: bytes
    signature: bytes


def credential_length(issuer_key: PublicKey) -> int:
    return 1 + issuer_key.variant.prefix_length + issuer_key.modulus_length


def encode_token_credential(msg_prefix: bytes, signature: bytes) -> bytes:
    """0x01 ‖ msg_prefix (32 for Randomized, 0 otherwise) ‖ signature (k bytes)."""
    return bytes([CREDENTIAL_VERSION]) + bytes(msg_prefix) + bytes(signature)


def decode_token_credential(data: bytes, issuer_key: PublicKey) -> TokenCredential:
    """Split a credential; its length is fixed by the issuer key (variant and modulus)."""
    data = bytes(data)
    if not data or data[0] != CREDENTIAL_VERSION:
        raise EncodingError("unknown token credential version")
    if len(data) != credential_length(issuer_key):
        raise EncodingError("token credential length does not match the issuer key")
    split = 1 + issuer_key.variant.prefix_length
    return TokenCredential(data[1:split], data[split:])


def _issuer_key(issuer_public_key: PublicKey | bytes) -> PublicKey:
    if isinstance(issuer_public_key, PublicKey):
        return issuer_public_key
    return PublicKey.decode(issuer_public_key)


def verify_token_signature(
    issuer_public_key: PublicKey | bytes,
    chain_id: int,
    poll_book: str | bytes,
    poll_id: int,
    stratum: int,
    token_address: str | bytes,
    credential: bytes,
) -> None:
    """Verifier check 2 for one ballot: returns None, or raises SignatureError.

    A malformed credential or issuer key is also a SignatureError here (the check fails either
    way); use decode_token_credential directly to tell them apart.
    """
    try:
        key = _issuer_key(issuer_public_key)
        verifier = TokenVerifier(key, chain_id, poll_book, poll_id, stratum)
        token = address_bytes(token_address, "token address")
    except EncodingError as exc:
        raise SignatureError(f"token credential does not decode: {exc}") from exc
    verifier.verify(token, credential)


class TokenVerifier:
    """Check 2 for the many ballots of one poll and stratum: the token message's fixed part
    (tag, version, chain, PollBook, poll, stratum) is built once, the token address appended
    per ballot."""

    def __init__(
        self, issuer_key: PublicKey, chain_id: int, poll_book: str | bytes, poll_id: int, stratum: int
    ) -> None:
        self._key = issuer_key
        self._fixed = token_message(chain_id, poll_book, poll_id, stratum, bytes(20))[:-20]
        self._split = 1 + issuer_key.variant.prefix_length
        self._length = credential_length(issuer_key)

    def verify(self, token: bytes, credential: bytes) -> None:
        """None, or SignatureError (a malformed credential is one too); `token` is 20 raw bytes."""
        if len(credential) != self._length or credential[0] != CREDENTIAL_VERSION:
            try:
                decode_token_credential(credential, self._key)  # raises, saying why
            except EncodingError as exc:
                raise SignatureError(f"token credential does not decode: {exc}") from None
        if len(token) != 20:
            raise SignatureError("a token address is 20 bytes")
        split = self._split
        blind_rsa.verify(self._key, credential[1:split] + self._fixed + token, credential[split:])


# --- resident side ----------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class TokenRequest:
    """A resident's pending token: what to send (blinded_msg) and what to keep (the rest)."""

    input_msg: bytes
    blinded_msg: bytes
    inv: bytes

    @property
    def msg_prefix(self) -> bytes:
        return self.input_msg[: len(self.input_msg) - TOKEN_MESSAGE_LENGTH]

    def __repr__(self) -> str:
        return f"TokenRequest(blinded_msg={self.blinded_msg.hex()[:16]}…, secrets hidden)"


def request_token(
    issuer_key: PublicKey,
    chain_id: int,
    poll_book: str | bytes,
    poll_id: int,
    stratum: int,
    token_address: str | bytes,
) -> TokenRequest:
    """Prepare and blind the token message (RFC 9474 §4.1–4.2)."""
    message = token_message(chain_id, poll_book, poll_id, stratum, token_address)
    input_msg = blind_rsa.prepare(issuer_key, message)
    blinding = blind_rsa.blind(issuer_key, input_msg)
    return TokenRequest(input_msg, blinding.blinded_msg, blinding.inv)


def finish_token(issuer_key: PublicKey, request: TokenRequest, blind_sig: bytes) -> bytes:
    """Unblind the issuer's answer (RFC 9474 §4.4) and return the encoded credential."""
    signature = blind_rsa.finalize(issuer_key, request.input_msg, blind_sig, request.inv)
    return encode_token_credential(request.msg_prefix, signature)

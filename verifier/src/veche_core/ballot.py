"""The ballot as it appears on chain (a BallotCast event), its EIP-712 digest and its hash.

The canonical encoding is the Solidity `abi.encode` of the seven fields in this order, so the
contract, the API and every verifier can compute the same bytes; the ballot hash (used in
receipts) is keccak256 of that encoding — an object's hash is the hash of its serialised form.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import abi
from ._keccak import keccak

from ._encoding import address_bytes, to_checksum_address, uint_bytes
from .errors import EncodingError, SignatureError
from .typed_data import Domain, ballot_digest, recover_signer, sign_digest

BALLOT_ABI_TYPES = ("uint256", "address", "uint64", "uint32", "bytes", "bytes", "bytes")


@dataclass(frozen=True)
class Ballot:
    """One ballot: token_credential is the on-chain `tokenSignature` field (token.py)."""

    poll_id: int
    token: bytes
    sequence: int
    stratum: int
    ciphertext: bytes
    token_credential: bytes
    signature: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "token", address_bytes(self.token, "token address"))
        uint_bytes(self.poll_id, 32, "poll id")
        uint_bytes(self.sequence, 8, "sequence")
        uint_bytes(self.stratum, 4, "stratum")
        for name in ("ciphertext", "token_credential", "signature"):
            object.__setattr__(self, name, bytes(getattr(self, name)))

    @property
    def token_address(self) -> str:
        return to_checksum_address(self.token)

    def digest(self, domain: Domain) -> bytes:
        """The EIP-712 Ballot digest under the PollBook domain (signature excluded)."""
        return ballot_digest(
            domain,
            self.poll_id,
            self.token,
            self.sequence,
            self.stratum,
            self.ciphertext,
            self.token_credential,
        )

    def sign(self, token_private_key: bytes, domain: Domain) -> Ballot:
        """A copy of this ballot signed with the token key (whose address must be `token`)."""
        signature = sign_digest(token_private_key, self.digest(domain))
        signed = replace(self, signature=signature)
        if signed.signer(domain) != self.token_address:
            raise SignatureError("the private key is not the ballot's token key")
        return signed

    def signer(self, domain: Domain) -> str:
        """The address that signed the ballot (SignatureError if malformed or high-s)."""
        return recover_signer(self.digest(domain), self.signature)

    def verify_signature(self, domain: Domain) -> None:
        """Verifier check 3's signature half: the signature recovers the token address."""
        if self.signer(domain) != self.token_address:
            raise SignatureError("ballot signature does not recover its token address")

    def encode(self) -> bytes:
        return encode_ballot(self)

    @property
    def hash(self) -> bytes:
        return ballot_hash(self)


def encode_ballot(ballot: Ballot) -> bytes:
    """abi.encode(uint256 pollId, address token, uint64 sequence, uint32 stratum,
    bytes ciphertext, bytes tokenSignature, bytes signature)."""
    return abi.encode(
        list(BALLOT_ABI_TYPES),
        [
            ballot.poll_id,
            ballot.token,
            ballot.sequence,
            ballot.stratum,
            ballot.ciphertext,
            ballot.token_credential,
            ballot.signature,
        ],
    )


def decode_ballot(data: bytes) -> Ballot:
    """Strict inverse of encode_ballot: non-canonical ABI (e.g. dirty padding) is rejected."""
    data = bytes(data)
    try:
        fields = abi.decode(list(BALLOT_ABI_TYPES), data)  # strict: only the canonical encoding decodes
    except EncodingError as exc:
        raise EncodingError(f"not an ABI-encoded ballot: {exc}") from None
    return Ballot(*fields)


def ballot_hash(ballot: Ballot) -> bytes:
    """keccak256(encode_ballot(ballot)): the ballot hash receipts refer to."""
    return keccak(encode_ballot(ballot))

"""The ballot as it appears on chain (a BallotCast event), its EIP-712 digest and its hash.

The canonical encoding is the Solidity `abi.encode` of the seven fields in this order, so the
contract, the API and every verifier can compute the same bytes; the ballot hash (used in
receipts) is keccak256 of that encoding — an object's hash is the hash of its serialised form.

The encoder is laid out by hand: the API hashes every ballot it accepts and the relay encodes
each into castBallots' calldata (calls.py, the same layout without the poll id), and the generic
encoder took ~10 µs a ballot where this takes ~3. The generic ABI encoders (eth-abi and
`abi.encode`) are the tests' oracle (tests/core/test_ballot.py, test_calls.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import abi
from ._encoding import address_bytes, to_checksum_address, uint_bytes
from ._keccak import keccak
from .abi import bytes_tail
from .errors import EncodingError, SignatureError
from .typed_data import Domain, ballot_digest, recover_signer, recover_signer_bytes, sign_digest

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
        """Verifier check 3's signature half: the signature recovers the token address (raw
        addresses compared: checksumming both costs ~25 µs a ballot on the API's hot path)."""
        if recover_signer_bytes(self.digest(domain), self.signature) != self.token:
            raise SignatureError("ballot signature does not recover its token address")

    def encode(self) -> bytes:
        return encode_ballot(self)

    @property
    def hash(self) -> bytes:
        return ballot_hash(self)


def encode_ballot(ballot: Ballot) -> bytes:
    """abi.encode(uint256 pollId, address token, uint64 sequence, uint32 stratum,
    bytes ciphertext, bytes tokenSignature, bytes signature)."""
    return ballot.poll_id.to_bytes(32, "big") + encode_ballot_fields(
        7 * 32,
        ballot.token,
        ballot.sequence,
        ballot.stratum,
        ballot.ciphertext,
        ballot.token_credential,
        ballot.signature,
    )


_ADDRESS_PADDING = bytes(12)


def encode_ballot_fields(
    first_tail: int,
    token: bytes,
    sequence: int,
    stratum: int,
    ciphertext: bytes,
    token_signature: bytes,
    signature: bytes,
) -> bytes:
    """The ballot's fields from `token` on, ABI-encoded as part of a tuple: six static heads,
    then the three byte strings' tails. `first_tail` is where the first tail starts, counted
    from the tuple's start: 6 words into castBallots' element (calls.py), 7 in the ballot's own
    encoding (after its poll id). Values are not range checked here (`Ballot` checks them when
    it is built; the relay's come from stored ballots), and the words are written inline: a
    helper call per word cost a tenth of the encoding."""
    second = first_tail + 32 + len(ciphertext) + (-len(ciphertext) % 32)
    third = second + 32 + len(token_signature) + (-len(token_signature) % 32)
    return b"".join(
        (
            _ADDRESS_PADDING,
            token,
            sequence.to_bytes(32, "big"),
            stratum.to_bytes(32, "big"),
            first_tail.to_bytes(32, "big"),
            second.to_bytes(32, "big"),
            third.to_bytes(32, "big"),
            bytes_tail(ciphertext),
            bytes_tail(token_signature),
            bytes_tail(signature),
        )
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

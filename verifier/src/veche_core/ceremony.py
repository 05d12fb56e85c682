"""Protocol v2's key ceremony as PollBook carries it (docs/protocol.md, "The key ceremony on
chain"): the message kinds and complaint reasons, the payload lengths the contract checks, the
framing of each payload, and the DKG session id. The one definition of these byte layouts.

No cryptography here: the points, proofs and ciphertexts are opaque byte strings of fixed
lengths (the DKG, `COCKTAIL(P-256, SHA-256)`, builds and checks them). What `decode_*` refuse is
exactly what the contract refuses, plus the framing the contract does not look inside (round 1's
length prefixes), which a verifier holds against the sender as a malformed message.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from ._encoding import address_bytes, uint_bytes
from .errors import EncodingError

POINT_LENGTH = 33  # a SEC1-compressed P-256 point: 0x02 or 0x03, then x (32)
SCALAR_LENGTH = 32
SIGNATURE_LENGTH = 65  # COCKTAIL's Schnorr signature and proof of possession: R (33) ‖ z (32)
SHARE_CIPHERTEXT_LENGTH = 48  # XAES-256-GCM of a 32-byte scalar: 32 + a 16-byte tag
SHARE_LENGTH_PREFIX = 8  # uint64_be(48) before each share ciphertext, as COCKTAIL frames it
ROUND1_FIXED_LENGTH = SIGNATURE_LENGTH + POINT_LENGTH  # PoP_i (65) ‖ E_i (33)
ROUND1_PER_MEMBER = SHARE_LENGTH_PREFIX + SHARE_CIPHERTEXT_LENGTH
EVIDENCE_LENGTH = 2 * POINT_LENGTH + 2 * SCALAR_LENGTH  # S^e ‖ S^d ‖ c ‖ z
COMPLAINT_HEADER_LENGTH = 2  # accused (uint8) ‖ reason (uint8)
CERTIFY_LENGTH = POINT_LENGTH + SIGNATURE_LENGTH  # Y ‖ sig_i
SESSION_PREFIX = b"veche/ceremony/v2"  # 17 ASCII bytes
MAX_ATTEMPT = 255  # attempts are uint8, the first is 1
MAX_MEMBERS = 255  # trustee indices are uint8


class MessageKind(IntEnum):
    """IPollBook.CeremonyMessageKind, a CeremonyMessagePosted's `kind`: each value fixed by its
    member, as in the contract (a test compares the two). Reserved is never accepted."""

    Reserved = 0
    Round1 = 1
    Complaint = 2
    Certify = 3


class ComplaintReason(IntEnum):
    """IPollBook.ComplaintReason, a complaint's second byte (a test compares the two)."""

    Reserved = 0
    MalformedRound1 = 1  # the accused's round 1 is malformed or its PoP fails; no evidence
    ShareDecryption = 2  # the accused's share to the complainer fails AEAD
    ShareNotCanonical = 3  # ... decrypts to a non-canonical scalar
    ShareVerification = 4  # ... fails the VSS check against the accused's commitments


PUBLIC_REASONS = frozenset({ComplaintReason.MalformedRound1})  # judged from the round 1 alone


def is_compressed_point(key: bytes) -> bool:
    """The shape PollBook checks of a trustee key and a certified Y: 33 bytes, 0x02 or 0x03
    first (whether x is on the curve is for the DKG to check)."""
    return len(key) == POINT_LENGTH and key[0] in (2, 3)


def round1_length(threshold: int, members: int) -> int:
    """A round-1 payload's length: 33·t + 98 + 56·n (t the poll's threshold, n the attempt's
    members)."""
    if not 1 <= threshold <= members <= MAX_MEMBERS:
        raise EncodingError(f"no ceremony has threshold {threshold} of {members} members")
    return POINT_LENGTH * threshold + ROUND1_FIXED_LENGTH + ROUND1_PER_MEMBER * members


def complaint_length(reason: int) -> int:
    """A complaint payload's length: 2 for a public reason, 132 with decryption evidence (2 + 130)."""
    try:
        known = ComplaintReason(reason)
    except ValueError:
        raise EncodingError(f"unknown complaint reason {reason}") from None
    if known is ComplaintReason.Reserved:
        raise EncodingError("complaint reason 0 is reserved")
    return COMPLAINT_HEADER_LENGTH + (0 if known in PUBLIC_REASONS else EVIDENCE_LENGTH)


def session_id(chain_id: int, poll_book: str | bytes, poll_id: int, attempt: int) -> bytes:
    """The DKG session id of one attempt: "veche/ceremony/v2" ‖ chainId (32) ‖ PollBook (20) ‖
    pollId (32) ‖ attempt (1), 102 bytes."""
    if not 1 <= attempt <= MAX_ATTEMPT:
        raise EncodingError(f"attempts are 1..255, not {attempt}")
    return (
        SESSION_PREFIX
        + uint_bytes(chain_id, 32, "chain id")
        + address_bytes(poll_book, "PollBook")
        + uint_bytes(poll_id, 32, "poll id")
        + bytes([attempt])
    )


def _fixed(value: bytes, length: int, what: str) -> bytes:
    if len(value) != length:
        raise EncodingError(f"{what} is {length} bytes, not {len(value)}")
    return bytes(value)


class Round1(NamedTuple):
    """COCKTAIL's msg_{1|i}: the commitments C_i (t points), the proof of possession PoP_i, the
    ephemeral key E_i, and one share ciphertext per member, in member order."""

    commitments: tuple[bytes, ...]
    proof_of_possession: bytes
    ephemeral_key: bytes
    share_ciphertexts: tuple[bytes, ...]

    def encode(self) -> bytes:
        """C_i (33·t) ‖ PoP_i (65) ‖ E_i (33) ‖ for each member: uint64_be(48) ‖ c_{i,r} (48)."""
        if not self.commitments or len(self.share_ciphertexts) < len(self.commitments):
            raise EncodingError("round 1 needs 1 <= t <= n")
        prefix = SHARE_CIPHERTEXT_LENGTH.to_bytes(SHARE_LENGTH_PREFIX, "big")
        return b"".join(
            [
                *(_fixed(c, POINT_LENGTH, "a commitment") for c in self.commitments),
                _fixed(self.proof_of_possession, SIGNATURE_LENGTH, "a proof of possession"),
                _fixed(self.ephemeral_key, POINT_LENGTH, "an ephemeral key"),
                *(prefix + _fixed(c, SHARE_CIPHERTEXT_LENGTH, "a share ciphertext") for c in self.share_ciphertexts),
            ]
        )


def decode_round1(payload: bytes, threshold: int, members: int) -> Round1:
    """The fields of a round-1 payload of a ceremony with `members` members and threshold t;
    EncodingError if its length is not round1_length(t, n) (the contract refuses it) or a share's
    length prefix is not uint64_be(48) (the contract accepts it: the sender's message is
    malformed)."""
    expected = round1_length(threshold, members)
    if len(payload) != expected:
        raise EncodingError(f"a round-1 payload of t={threshold}, n={members} is {expected} bytes, not {len(payload)}")
    at = POINT_LENGTH * threshold
    commitments = tuple(payload[i : i + POINT_LENGTH] for i in range(0, at, POINT_LENGTH))
    pop = payload[at : at + SIGNATURE_LENGTH]
    at += SIGNATURE_LENGTH
    ephemeral = payload[at : at + POINT_LENGTH]
    at += POINT_LENGTH
    ciphertexts = []
    for member in range(members):
        length = int.from_bytes(payload[at : at + SHARE_LENGTH_PREFIX], "big")
        if length != SHARE_CIPHERTEXT_LENGTH:
            raise EncodingError(f"the share ciphertext for member {member + 1} is framed as {length} bytes, not 48")
        at += SHARE_LENGTH_PREFIX
        ciphertexts.append(payload[at : at + SHARE_CIPHERTEXT_LENGTH])
        at += SHARE_CIPHERTEXT_LENGTH
    return Round1(commitments, pop, ephemeral, tuple(ciphertexts))


class Evidence(NamedTuple):
    """A share complaint's evidence (COCKTAIL option 3): S^e = d_i·E_j, S^d = d_i·P_j and the
    DLEQ proof (c, z) that both use the complainer's static secret d_i."""

    shared_ephemeral: bytes  # S^e, 33
    shared_static: bytes  # S^d, 33
    challenge: bytes  # c, 32
    response: bytes  # z, 32

    def encode(self) -> bytes:
        return (
            _fixed(self.shared_ephemeral, POINT_LENGTH, "S^e")
            + _fixed(self.shared_static, POINT_LENGTH, "S^d")
            + _fixed(self.challenge, SCALAR_LENGTH, "the DLEQ challenge")
            + _fixed(self.response, SCALAR_LENGTH, "the DLEQ response")
        )


class Complaint(NamedTuple):
    """A complaint: the accused (a poll trustee index), the reason, and the evidence (None for
    a public reason)."""

    accused: int
    reason: ComplaintReason
    evidence: Evidence | None = None

    def encode(self) -> bytes:
        """accused (uint8) ‖ reason (uint8) ‖ evidence (none, or 128 bytes)."""
        complaint_length(self.reason)  # refuses Reserved and unknown reasons
        public = self.reason in PUBLIC_REASONS
        if public != (self.evidence is None):
            raise EncodingError(
                f"a {ComplaintReason(self.reason).name} complaint {'has no' if public else 'needs'} evidence"
            )
        body = b"" if self.evidence is None else self.evidence.encode()
        return uint_bytes(self.accused, 1, "the accused") + bytes([self.reason]) + body


def decode_complaint(payload: bytes) -> Complaint:
    """The complaint in a payload; EncodingError for what the contract refuses (an unknown
    reason, a length other than the reason's)."""
    if len(payload) < COMPLAINT_HEADER_LENGTH:
        raise EncodingError("a complaint is at least 2 bytes")
    expected = complaint_length(payload[1])
    if len(payload) != expected:
        raise EncodingError(f"a complaint with reason {payload[1]} is {expected} bytes, not {len(payload)}")
    reason = ComplaintReason(payload[1])
    if reason in PUBLIC_REASONS:
        return Complaint(payload[0], reason)
    at = COMPLAINT_HEADER_LENGTH
    evidence = Evidence(
        payload[at : at + POINT_LENGTH],
        payload[at + POINT_LENGTH : at + 2 * POINT_LENGTH],
        payload[at + 2 * POINT_LENGTH : at + 2 * POINT_LENGTH + SCALAR_LENGTH],
        payload[at + 2 * POINT_LENGTH + SCALAR_LENGTH :],
    )
    return Complaint(payload[0], reason, evidence)


class Certification(NamedTuple):
    """A member's certification: the joint key Y it computed and its COCKTAIL signature over
    the round-3 transcript."""

    election_key: bytes  # Y, 33
    signature: bytes  # sig_i, 65

    def encode(self) -> bytes:
        """Y (33) ‖ sig_i (65)."""
        if not is_compressed_point(self.election_key):
            raise EncodingError("the certified key is 33 bytes starting 0x02 or 0x03")
        return bytes(self.election_key) + _fixed(self.signature, SIGNATURE_LENGTH, "a certification signature")


def decode_certification(payload: bytes) -> Certification:
    """The certification in a payload; EncodingError for what the contract refuses."""
    if len(payload) != CERTIFY_LENGTH:
        raise EncodingError(f"a certification is {CERTIFY_LENGTH} bytes, not {len(payload)}")
    key = payload[:POINT_LENGTH]
    if not is_compressed_point(key):
        raise EncodingError("the certified key is 33 bytes starting 0x02 or 0x03")
    return Certification(key, payload[POINT_LENGTH:])


def payload_length_error(kind: int, payload: bytes, threshold: int, members: int) -> str | None:
    """Why PollBook refuses `payload` as a message of `kind` by its shape alone (None if it
    accepts the shape): one rule per kind, as the contract applies them."""
    try:
        known = MessageKind(kind)
    except ValueError:
        return f"unknown message kind {kind}"
    try:
        if known is MessageKind.Round1:
            expected = round1_length(threshold, members)
            return None if len(payload) == expected else f"round 1 is {expected} bytes, not {len(payload)}"
        if known is MessageKind.Complaint:
            decode_complaint(payload)
            return None
        if known is MessageKind.Certify:
            decode_certification(payload)
            return None
    except EncodingError as exc:
        return str(exc)
    return "message kind 0 is reserved"

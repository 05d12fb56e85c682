"""Protocol v2's key ceremony as PollBook carries it (docs/protocol.md, "The key ceremony on
chain"): the shared vocabulary (the message kinds and complaint reasons, IPollBook's enums), the
byte lengths of each payload's parts, the DKG session id, and what PollBook itself checks of a
payload: its length and shape. The one definition of each.

No cryptography here, and no framing: the payload structures (round 1's commitments, proof,
ephemeral key and framed share ciphertexts; a complaint's evidence; a certification) are
`veche_core.dkg`'s `Round1Message`, `Complaint`, `ComplaintEvidence` and `Certification`, which
decode and validate them with these lengths. `payload_length_error` refuses exactly what the
contract refuses by shape alone; what the contract does not look inside (the share length
prefixes, whether a point is on the curve) the DKG's decoders refuse, and a verifier holds that
against the sender as a malformed message.
"""

from __future__ import annotations

from enum import IntEnum

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


def payload_length_error(kind: int, payload: bytes, threshold: int, members: int) -> str | None:
    """Why PollBook refuses `payload` as a message of `kind` by its shape alone (None if it
    accepts the shape): one rule per kind, in the contract's order. Round 1: round1_length(t, n)
    bytes. Complaint: at least 2 bytes, a known non-reserved reason, then complaint_length(reason)
    bytes. Certify: CERTIFY_LENGTH bytes whose first 33 are a compressed point's shape."""
    try:
        known = MessageKind(kind)
    except ValueError:
        return f"unknown message kind {kind}"
    try:
        if known is MessageKind.Round1:
            expected = round1_length(threshold, members)
            return None if len(payload) == expected else f"round 1 is {expected} bytes, not {len(payload)}"
        if known is MessageKind.Complaint:
            if len(payload) < COMPLAINT_HEADER_LENGTH:
                return "a complaint is at least 2 bytes"
            expected = complaint_length(payload[1])
            if len(payload) != expected:
                return f"a complaint with reason {payload[1]} is {expected} bytes, not {len(payload)}"
            return None
        if known is MessageKind.Certify:
            if len(payload) != CERTIFY_LENGTH:
                return f"a certification is {CERTIFY_LENGTH} bytes, not {len(payload)}"
            if not is_compressed_point(payload[:POINT_LENGTH]):
                return "the certified key is 33 bytes starting 0x02 or 0x03"
            return None
    except EncodingError as exc:
        return str(exc)
    return "message kind 0 is reserved"

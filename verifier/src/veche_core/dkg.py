"""The v2 key ceremony: COCKTAIL-DKG over P-256 (C2SP cocktail-dkg v0.2.1, `COCKTAIL(P-256, SHA-256)`).

Why: in v2 no one ever holds the election secret before close. A poll's trustees make the joint
key Y together with a three-round DKG, PollBook is the broadcast channel, and each trustee later
releases only its own share x_m; any t shares rebuild the secret. COCKTAIL is a specified,
test-vectored DKG (Feldman VSS, proofs of possession, ECDH-encrypted shares, a certification
round), so a second implementation can follow the same bytes.

Veche's choices inside COCKTAIL (docs/protocol.md §"Key ceremony"):
- context: COCKTAIL's RECOMMENDED construction over Veche's session id (`ceremony.session_id`).
- zero-length payloads; the transcript extension is empty.
- ciphertext binding by PollBook (every payload EIP-712 signed by its sender, COCKTAIL's option 2),
  and a Chaum–Pedersen proof in complaints (option 3) so that anyone can decide a complaint.

The payloads' structures are defined here, once, and decode and validate (every point on the
curve, every frame exact): `Round1Message`, `Complaint` with its `ComplaintEvidence`, and
`Certification`. Their lengths, the message kinds and the complaint reasons are `ceremony`'s
(what PollBook itself checks), imported, not redefined.

Who calls what. Member ids m = 1..n are COCKTAIL's participant ids (members[m−1] of the attempt).
- A trustee, with its `StaticKey` and chain data: `round1` → post `encode()`; `round2` over every
  posted round-1 payload gives its `KeyShare`, or raises CeremonyFaultError naming whom to
  accuse (`make_complaint`, or the whole payload: `complaint_payload`); `certify` (the payload:
  `certification_payload`); after close `round2` again (it is deterministic) gives the
  share to release (`KeyShare.release_payload`).
- The verifier, with chain data only: `check_ceremony`, `judge_complaint`, `check_release`.

Secrets (static keys, polynomial coefficients, shares) are Python ints held briefly; objects that
keep one hide it from repr, and no error message carries one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from . import p256, xaes
from .ceremony import (
    CERTIFY_LENGTH,
    COMPLAINT_HEADER_LENGTH,
    EVIDENCE_LENGTH,
    PUBLIC_REASONS,
    SHARE_CIPHERTEXT_LENGTH,
    SHARE_LENGTH_PREFIX,
    SIGNATURE_LENGTH,
    ComplaintReason,
    complaint_length,
    session_id,
)
from .errors import CeremonyError, CeremonyFaultError, EncodingError, KeyShareError, SealingError
from .p256 import ORDER, POINT_SIZE, SCALAR_SIZE, Point, RandomBytes

CIPHERSUITE_ID = b"COCKTAIL(P-256, SHA-256)"
_CONTEXT_TAG = b"COCKTAIL-DKG-CONTEXT"
_H6_PREFIX = b"COCKTAIL-DKG-P256-SHA256-H6"
_H7_PREFIX = b"COCKTAIL-DKG-P256-SHA256-H7"
_NONCE_PREFIX = b"COCKTAIL-DKG-P256-SHA256-NONCE"
_DLEQ_PREFIX = b"VECHE-DKG-P256-SHA256-DLEQ"

MAX_CIPHERTEXT_SIZE = 65536  # COCKTAIL's SHOULD floor; Veche's own shares are 48 bytes
RELEASE_SHARE_VERSION = 0x02
RELEASE_SHARE_SIZE = 1 + SCALAR_SIZE
_MAX_COUNT = 0xFFFFFFFF  # n and t are uint32 in the transcript


class Party(StrEnum):
    """Who a complaint's verdict puts at fault."""

    ACCUSED = "accused"
    COMPLAINER = "complainer"


class Fault(NamedTuple):
    """A member found at fault in round 2 and the reason to give in the complaint."""

    member: int
    reason: ComplaintReason


def _u64be(value: int) -> bytes:
    return value.to_bytes(8, "big")


def _u64le(value: int) -> bytes:
    return value.to_bytes(8, "little")


def _u32le(value: int) -> bytes:
    return value.to_bytes(4, "little")


def check_parameters(threshold: int, count: int) -> None:
    """COCKTAIL's setup rule: 1 ≤ t ≤ n ≤ 2³² − 1."""
    if not 1 <= threshold <= count <= _MAX_COUNT:
        raise CeremonyError("need 1 ≤ threshold ≤ members")


def _check_member(member: int, count: int) -> None:
    if not 1 <= member <= count:
        raise CeremonyError(f"member id must be in 1..{count}")


def _static_points(static_keys: Sequence[bytes]) -> tuple[Point, ...]:
    """The members' static keys, validated: each a non-identity point, all distinct."""
    if not static_keys:
        raise CeremonyError("a ceremony needs at least one member")
    encodings = [bytes(key) for key in static_keys]
    if len(set(encodings)) != len(encodings):
        raise CeremonyError("two members have the same static key")
    try:
        return tuple(p256.decode_point(key) for key in encodings)
    except EncodingError:
        raise CeremonyError("a static key is not a valid P-256 public key") from None


# --- static keys -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class StaticKey:
    """A trustee's long-term P-256 key (d, P = d·B); `repr` hides d."""

    secret: int
    public_key: bytes = field(init=False)

    def __post_init__(self) -> None:
        if not 0 < self.secret < ORDER:
            raise CeremonyError("a static secret key must be in [1, q)")
        object.__setattr__(self, "public_key", p256.mul_base(self.secret).encode())

    @classmethod
    def generate(cls, random_bytes: RandomBytes = secrets.token_bytes) -> StaticKey:
        return cls(p256.random_scalar(random_bytes))

    @classmethod
    def from_bytes(cls, data: bytes) -> StaticKey:
        """From its 32-byte big-endian encoding (EncodingError if not canonical)."""
        return cls(p256.decode_scalar(bytes(data)))

    def to_bytes(self) -> bytes:
        return p256.encode_scalar(self.secret)

    def __repr__(self) -> str:
        return f"StaticKey(public_key={self.public_key.hex()})"


# --- context (over ceremony.session_id) ------------------------------------------------------


def derive_context(session: bytes, static_keys: Sequence[bytes]) -> bytes:
    """COCKTAIL's RECOMMENDED context: SHA-256("COCKTAIL-DKG-CONTEXT" ‖ u64be(len sid) ‖ sid ‖
    u64be(len csid) ‖ csid ‖ u32le(n) ‖ P_1 ‖ … ‖ P_n)."""
    points = _static_points(static_keys)
    check_parameters(1, len(points))
    preimage = (
        _CONTEXT_TAG
        + _u64be(len(session))
        + bytes(session)
        + _u64be(len(CIPHERSUITE_ID))
        + CIPHERSUITE_ID
        + _u32le(len(points))
        + b"".join(point.encode() for point in points)
    )
    return hashlib.sha256(preimage).digest()


def ceremony_context(
    chain_id: int, poll_book: bytes, poll_id: int, attempt: int, static_keys: Sequence[bytes]
) -> bytes:
    """The context of one ceremony attempt (its members' keys in member order)."""
    return derive_context(session_id(chain_id, poll_book, poll_id, attempt), static_keys)


# --- H6: share keys and nonces ---------------------------------------------------------------


def derive_extra(context: bytes, label: bytes) -> bytes:
    """u64le(len context) ‖ context ‖ u64le(len label) ‖ label (SHA-256 suites call H6 twice)."""
    return _u64le(len(context)) + bytes(context) + _u64le(len(label)) + label


def h6(ecdh_secret: bytes, ephemeral: bytes, sender: bytes, recipient: bytes, extra: bytes) -> bytes:
    """SHA-256(prefix ‖ S^e ‖ S^d ‖ E ‖ P_s ‖ P_r ‖ u64le(len extra) ‖ extra)."""
    return hashlib.sha256(
        _H6_PREFIX + ecdh_secret + ephemeral + sender + recipient + _u64le(len(extra)) + extra
    ).digest()


def share_key_and_nonce(
    ecdh_secret: bytes, ephemeral: bytes, sender: bytes, recipient: bytes, context: bytes
) -> tuple[bytes, bytes]:
    """The XAES-256-GCM key (32) and nonce (24) of the share from `sender` to `recipient`."""
    key = h6(ecdh_secret, ephemeral, sender, recipient, derive_extra(context, b"key"))
    nonce = h6(ecdh_secret, ephemeral, sender, recipient, derive_extra(context, b"nonce"))[:24]
    return key, nonce


# --- Schnorr (COCKTAIL's scheme, deterministic nonce) ----------------------------------------


def schnorr_sign(secret: int, message: bytes) -> bytes:
    """R ‖ z (65 bytes): k = H2S(prefix_nonce ‖ sk ‖ m), R = k·B, c = H2S(prefix_H7 ‖ R ‖ pk ‖ m),
    z = k + c·sk mod q."""
    if not 0 < secret < ORDER:
        raise CeremonyError("a signing key must be in [1, q)")
    nonce = p256.hash_to_scalar(_NONCE_PREFIX + p256.encode_scalar(secret) + message)
    if nonce == 0:  # probability 2⁻²⁵⁶; COCKTAIL: abandon the session, publish nothing
        raise CeremonyError("Schnorr nonce is zero: abandon this session")
    commitment = p256.mul_base(nonce).encode()
    public_key = p256.mul_base(secret).encode()
    challenge = p256.hash_to_scalar(_H7_PREFIX + commitment + public_key + message)
    return commitment + p256.encode_scalar((nonce + challenge * secret) % ORDER)


def schnorr_verify(public_key: Point, signature: bytes, message: bytes) -> bool:
    """COCKTAIL Verify: z canonical, R a non-identity point, z·B = R + c·pk."""
    if len(signature) != SIGNATURE_LENGTH or public_key.is_identity:
        return False
    try:
        commitment = p256.decode_point(signature[:POINT_SIZE])
        response = p256.decode_scalar(signature[POINT_SIZE:])
    except EncodingError:
        return False
    challenge = p256.hash_to_scalar(_H7_PREFIX + signature[:POINT_SIZE] + public_key.encode() + message)
    return p256.GENERATOR * response == commitment + public_key * challenge


# --- round 1 ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Round1Message:
    """COCKTAIL msg_{1|i}: C_i (t points) ‖ PoP_i (65) ‖ E_i (33) ‖ for each member j in order
    u64be(len c_{i,j}) ‖ c_{i,j}. `ciphertexts` holds the c_{i,j} without their length prefix.
    Veche's payload is ceremony.round1_length(t, n) bytes (every c_{i,j} 48 bytes)."""

    commitments: tuple[Point, ...]
    pop: bytes
    ephemeral_key: Point
    ciphertexts: tuple[bytes, ...]

    def encode(self) -> bytes:
        """The payload; EncodingError for a message `decode` refuses even with `allow_payloads`
        (t = 0 or t > n, an identity point, a PoP not 65 bytes, a ciphertext out of range)."""
        if not 1 <= len(self.commitments) <= len(self.ciphertexts):
            raise EncodingError("round 1 needs 1 <= t <= n (t commitments, n share ciphertexts)")
        if self.ephemeral_key.is_identity or any(point.is_identity for point in self.commitments):
            raise EncodingError("round 1's commitments and ephemeral key are not the identity")
        if len(self.pop) != SIGNATURE_LENGTH:
            raise EncodingError(f"a proof of possession is {SIGNATURE_LENGTH} bytes, not {len(self.pop)}")
        for member, ciphertext in enumerate(self.ciphertexts, start=1):
            if not SHARE_CIPHERTEXT_LENGTH <= len(ciphertext) <= MAX_CIPHERTEXT_SIZE:
                raise EncodingError(
                    f"the share ciphertext for member {member} is {len(ciphertext)} bytes,"
                    f" outside {SHARE_CIPHERTEXT_LENGTH}..{MAX_CIPHERTEXT_SIZE}"
                )
        return (
            b"".join(point.encode() for point in self.commitments)
            + self.pop
            + self.ephemeral_key.encode()
            + b"".join(_u64be(len(c)) + c for c in self.ciphertexts)
        )

    @classmethod
    def decode(cls, payload: bytes, threshold: int, count: int, *, allow_payloads: bool = False) -> Round1Message:
        """Parse and validate (lengths, points); EncodingError if malformed. The PoP is checked by
        `verify_pop`. Veche's messages carry zero-length payloads: every ciphertext is exactly 48
        bytes unless `allow_payloads` (COCKTAIL's general framing, capped at MAX_CIPHERTEXT_SIZE).
        PollBook checks the length alone: a well-sized payload with a bad length prefix or an
        invalid point reaches the chain, and is its sender's malformed message."""
        check_parameters(threshold, count)
        payload = bytes(payload)
        head = POINT_SIZE * threshold + SIGNATURE_LENGTH + POINT_SIZE
        if len(payload) < head:
            raise EncodingError(f"a round-1 message with t = {threshold} is at least {head} bytes, not {len(payload)}")
        commitments = tuple(p256.decode_point(payload[k * POINT_SIZE : (k + 1) * POINT_SIZE]) for k in range(threshold))
        offset = POINT_SIZE * threshold
        pop = payload[offset : offset + SIGNATURE_LENGTH]
        offset += SIGNATURE_LENGTH
        ephemeral = p256.decode_point(payload[offset : offset + POINT_SIZE])
        offset += POINT_SIZE
        ciphertexts = []
        for member in range(1, count + 1):
            if len(payload) - offset < SHARE_LENGTH_PREFIX:
                raise EncodingError(f"round-1 message ends inside the length prefix of member {member}'s share")
            length = int.from_bytes(payload[offset : offset + SHARE_LENGTH_PREFIX], "big")
            offset += SHARE_LENGTH_PREFIX
            framed = f"the share ciphertext for member {member} is framed as {length} bytes"
            if length > MAX_CIPHERTEXT_SIZE:
                raise EncodingError(f"{framed}, more than the maximum {MAX_CIPHERTEXT_SIZE}")
            if length < SHARE_CIPHERTEXT_LENGTH:
                raise EncodingError(f"{framed}, shorter than a share and its tag ({SHARE_CIPHERTEXT_LENGTH})")
            if not allow_payloads and length != SHARE_CIPHERTEXT_LENGTH:
                raise EncodingError(
                    f"{framed}, not {SHARE_CIPHERTEXT_LENGTH}: Veche's are exactly 48 bytes (no payload)"
                )
            if len(payload) - offset < length:
                raise EncodingError(f"round-1 message ends inside member {member}'s share ciphertext")
            ciphertexts.append(payload[offset : offset + length])
            offset += length
        if offset != len(payload):
            raise EncodingError(f"{len(payload) - offset} trailing bytes after the round-1 message")
        return cls(commitments, pop, ephemeral, tuple(ciphertexts))

    def pop_message(self, context: bytes) -> bytes:
        """context ‖ C_i ‖ E_i, the message the PoP signs under C_{i,0}."""
        return bytes(context) + b"".join(point.encode() for point in self.commitments) + self.ephemeral_key.encode()

    def verify_pop(self, context: bytes) -> bool:
        return schnorr_verify(self.commitments[0], self.pop, self.pop_message(context))


def _evaluate(coefficients: Sequence[int], at: int) -> int:
    result = 0
    for coefficient in reversed(coefficients):
        result = (result * at + coefficient) % ORDER
    return result


def _seal_share(
    context: bytes,
    ephemeral_secret: int,
    ephemeral: Point,
    sender_secret: int,
    sender: Point,
    recipient: Point,
    plaintext: bytes,
) -> bytes:
    ecdh_secret = (
        p256.mul_secret(ephemeral_secret, recipient).encode() + p256.mul_secret(sender_secret, recipient).encode()
    )
    key, nonce = share_key_and_nonce(ecdh_secret, ephemeral.encode(), sender.encode(), recipient.encode(), context)
    return xaes.encrypt(key, nonce, plaintext)


def _member_points(
    threshold: int, static_keys: Sequence[bytes], member: int, static_key: StaticKey
) -> tuple[tuple[Point, ...], Point]:
    """The members' static points and `member`'s own, once the parameters are sound and
    `static_key` is the key registered for `member` (the prologue of `round1` and `round2`)."""
    points = _static_points(static_keys)
    check_parameters(threshold, len(points))
    _check_member(member, len(points))
    own = points[member - 1]
    if static_key.public_key != own.encode():
        raise CeremonyError("this static key is not the member's registered key")
    return points, own


def round1(
    context: bytes,
    threshold: int,
    static_keys: Sequence[bytes],
    member: int,
    static_key: StaticKey,
    *,
    random_bytes: RandomBytes = secrets.token_bytes,
    payloads: Sequence[bytes] | None = None,
) -> Round1Message:
    """COCKTAIL round 1 for `member`: a random polynomial of degree t−1 (coefficients a_0..a_{t−1}
    drawn in that order, then the ephemeral key e), its commitments, the PoP, and each member's
    share encrypted to its static key (the self-share too). Veche sends no payloads."""
    points, sender = _member_points(threshold, static_keys, member, static_key)
    count = len(points)
    if payloads is not None and len(payloads) != count:
        raise CeremonyError("one payload per member")
    coefficients = [p256.random_scalar(random_bytes) for _ in range(threshold)]
    ephemeral_secret = p256.random_scalar(random_bytes)
    commitments = tuple(p256.mul_base(a) for a in coefficients)
    ephemeral = p256.mul_base(ephemeral_secret)
    unsigned = Round1Message(commitments, b"", ephemeral, ())
    pop = schnorr_sign(coefficients[0], unsigned.pop_message(context))
    ciphertexts = []
    for j, recipient in enumerate(points, start=1):
        plaintext = p256.encode_scalar(_evaluate(coefficients, j)) + (bytes(payloads[j - 1]) if payloads else b"")
        ciphertexts.append(
            _seal_share(context, ephemeral_secret, ephemeral, static_key.secret, sender, recipient, plaintext)
        )
    return Round1Message(commitments, pop, ephemeral, tuple(ciphertexts))


# --- round 2 ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class KeyShare:
    """A member's ceremony output: its secret share x_m (hidden from repr), Y and Y_m.
    `payloads` are the COCKTAIL payloads received (empty in Veche)."""

    member: int
    secret_share: int
    group_key: bytes
    verification_share: bytes
    payloads: tuple[bytes, ...] = ()

    def release_payload(self) -> bytes:
        """The share to post after close: 0x02 ‖ x_m (32)."""
        return encode_release_share(self.secret_share)

    def __repr__(self) -> str:
        return (
            f"KeyShare(member={self.member}, group_key={self.group_key.hex()}, "
            f"verification_share={self.verification_share.hex()}, secret hidden)"
        )


def _share_point(commitments: Sequence[Point], member: int) -> Point:
    """Σ_k member^k · C_k (Horner), the point a share to `member` must match."""
    total = commitments[-1]
    for commitment in reversed(commitments[:-1]):
        total = total * member + commitment
    return total


@dataclass(frozen=True)
class _Opened:
    failure: ComplaintReason | None
    share: int = field(default=0, repr=False)
    payload: bytes = field(default=b"", repr=False)


def _open_share(
    context: bytes,
    ecdh_secret: bytes,
    ephemeral: Point,
    commitments: Sequence[Point],
    ciphertext: bytes,
    sender: Point,
    recipient: Point,
    recipient_id: int,
) -> _Opened:
    """Decrypt and check c_{j,i} given S^e ‖ S^d: COCKTAIL round 2, steps 3.2–3.4 (also the
    judge's steps, with S^e ‖ S^d taken from a complaint)."""
    key, nonce = share_key_and_nonce(ecdh_secret, ephemeral.encode(), sender.encode(), recipient.encode(), context)
    try:
        plaintext = xaes.decrypt(key, nonce, ciphertext)
    except SealingError:
        return _Opened(ComplaintReason.ShareDecryption)
    if len(plaintext) < SCALAR_SIZE:
        return _Opened(ComplaintReason.ShareNotCanonical)
    try:
        share = p256.decode_scalar(plaintext[:SCALAR_SIZE])
    except EncodingError:
        return _Opened(ComplaintReason.ShareNotCanonical)
    expected = _share_point(commitments, recipient_id).encode()
    if not hmac.compare_digest(p256.mul_base(share).encode(), expected):
        return _Opened(ComplaintReason.ShareVerification)
    return _Opened(None, share, plaintext[SCALAR_SIZE:])


def _recipient_secret(static_key: StaticKey, ephemeral: Point, sender: Point) -> bytes:
    """S^e ‖ S^d = d_i·E_j ‖ d_i·P_j."""
    return p256.mul_secret(static_key.secret, ephemeral).encode() + p256.mul_secret(static_key.secret, sender).encode()


def decode_round1_payloads(
    round1_payloads: Sequence[bytes], threshold: int, *, allow_payloads: bool = False
) -> tuple[Round1Message, ...]:
    """Every member's round-1 message (in member order); EncodingError on the first malformed one."""
    count = len(round1_payloads)
    return tuple(Round1Message.decode(p, threshold, count, allow_payloads=allow_payloads) for p in round1_payloads)


def _finish(
    member: int, commitments: Sequence[Sequence[Point]], shares: Sequence[int], payloads: tuple[bytes, ...]
) -> KeyShare:
    """x_m = Σ s_{j,m}, Y, Y_m, and COCKTAIL's final self-check x_m·B = Y_m."""
    secret_share = sum(shares) % ORDER
    aggregate = _aggregate(commitments)
    verification_share = _share_point(aggregate, member).encode()
    if not hmac.compare_digest(p256.mul_base(secret_share).encode(), verification_share):
        raise CeremonyError("final check failed: the share does not match its verification share")
    return KeyShare(member, secret_share, aggregate[0].encode(), verification_share, payloads)


def round2(
    context: bytes,
    threshold: int,
    static_keys: Sequence[bytes],
    member: int,
    static_key: StaticKey,
    round1_payloads: Sequence[bytes],
    *,
    allow_payloads: bool = False,
) -> KeyShare:
    """COCKTAIL round 2 for `member` over every member's round-1 payload (in member order).

    First every message's form and PoP (reason 1), then each share to me: AEAD (2), canonical
    scalar (3), VSS (4). Raises CeremonyFaultError listing every member at fault. Deterministic:
    run again after close, it is COCKTAIL's recovery from the chain's round-1 messages."""
    points, recipient = _member_points(threshold, static_keys, member, static_key)
    count = len(points)
    if len(round1_payloads) != count:
        raise CeremonyError("need one round-1 message per member")
    faults: list[Fault] = []
    messages: list[Round1Message | None] = []
    for j, payload in enumerate(round1_payloads, start=1):
        try:
            message: Round1Message | None = Round1Message.decode(
                payload, threshold, count, allow_payloads=allow_payloads
            )
        except EncodingError:
            message = None
        if message is None or not message.verify_pop(context):
            faults.append(Fault(j, ComplaintReason.MalformedRound1))
            message = None
        messages.append(message)
    shares: list[int] = []
    payloads: list[bytes] = []
    for j, message in enumerate(messages, start=1):
        if message is None:
            continue
        sender = points[j - 1]
        opened = _open_share(
            context,
            _recipient_secret(static_key, message.ephemeral_key, sender),
            message.ephemeral_key,
            message.commitments,
            message.ciphertexts[member - 1],
            sender,
            recipient,
            member,
        )
        if opened.failure is not None:
            faults.append(Fault(j, opened.failure))
        shares.append(opened.share)
        payloads.append(opened.payload)
    if faults:
        raise CeremonyFaultError(tuple(faults))
    return _finish(member, [m.commitments for m in messages if m is not None], shares, tuple(payloads))


# --- public outputs: Y and the verification shares -------------------------------------------


def _aggregate(commitments: Sequence[Sequence[Point]]) -> list[Point]:
    """C_agg,k = Σ_j C_{j,k}; C_agg,0 is the group key Y."""
    if not commitments:
        raise CeremonyError("no round-1 messages")
    threshold = len(commitments[0])
    if any(len(c) != threshold for c in commitments):
        raise CeremonyError("round-1 messages with different thresholds")
    return [p256.sum_points(c[k] for c in commitments) for k in range(threshold)]


def group_key(messages: Sequence[Round1Message]) -> bytes:
    """Y = Σ_j C_{j,0} (33 bytes)."""
    return _aggregate([m.commitments for m in messages])[0].encode()


def verification_shares(messages: Sequence[Round1Message]) -> tuple[bytes, ...]:
    """Y_1..Y_n with Y_m = Σ_k m^k · C_agg,k: what each member's released share must match."""
    aggregate = _aggregate([m.commitments for m in messages])
    return tuple(_share_point(aggregate, m).encode() for m in range(1, len(messages) + 1))


def verification_share(messages: Sequence[Round1Message], member: int) -> bytes:
    _check_member(member, len(messages))
    return _share_point(_aggregate([m.commitments for m in messages]), member).encode()


# --- round 3: transcript and certification ---------------------------------------------------


@dataclass(frozen=True)
class Transcript:
    """The parsed round-3 transcript T (COCKTAIL "Round 3: Certification", step 1)."""

    context: bytes
    threshold: int
    static_keys: tuple[bytes, ...]
    commitments: tuple[tuple[bytes, ...], ...]
    pops: tuple[bytes, ...]
    ephemeral_keys: tuple[bytes, ...]
    extension: bytes = b""

    def encode(self) -> bytes:
        count = len(self.static_keys)
        return (
            _u64le(len(CIPHERSUITE_ID))
            + CIPHERSUITE_ID
            + _u64le(len(self.context))
            + self.context
            + _u32le(count)
            + _u32le(self.threshold)
            + b"".join(self.static_keys)
            + b"".join(b"".join(c) for c in self.commitments)
            + b"".join(self.pops)
            + b"".join(self.ephemeral_keys)
            + _u64le(len(self.extension))
            + self.extension
        )

    @classmethod
    def decode(cls, data: bytes) -> Transcript:
        """Strict: the ciphersuite must be ours, every length must match, no trailing bytes."""
        data = bytes(data)
        reader = _Reader(data)
        if reader.take(reader.u64le()) != CIPHERSUITE_ID:
            raise EncodingError("transcript is for another ciphersuite")
        context = reader.take(reader.u64le())
        count = reader.u32le()
        threshold = reader.u32le()
        check_parameters(threshold, count)
        static_keys = tuple(reader.take(POINT_SIZE) for _ in range(count))
        commitments = tuple(tuple(reader.take(POINT_SIZE) for _ in range(threshold)) for _ in range(count))
        pops = tuple(reader.take(SIGNATURE_LENGTH) for _ in range(count))
        ephemeral_keys = tuple(reader.take(POINT_SIZE) for _ in range(count))
        extension = reader.take(reader.u64le())
        reader.end()
        return cls(context, threshold, static_keys, commitments, pops, ephemeral_keys, extension)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    def take(self, length: int) -> bytes:
        if length > len(self._data) - self._offset:
            raise EncodingError("truncated")
        chunk = self._data[self._offset : self._offset + length]
        self._offset += length
        return chunk

    def u64le(self) -> int:
        return int.from_bytes(self.take(8), "little")

    def u64be(self) -> int:
        return int.from_bytes(self.take(8), "big")

    def u32le(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def end(self) -> None:
        if self._offset != len(self._data):
            raise EncodingError("trailing bytes")


def transcript(
    context: bytes,
    threshold: int,
    static_keys: Sequence[bytes],
    messages: Sequence[Round1Message],
    extension: bytes = b"",
) -> bytes:
    """T = u64le(len csid) ‖ csid ‖ u64le(len ctx) ‖ ctx ‖ u32le(n) ‖ u32le(t) ‖ P_1..P_n ‖
    C_1..C_n ‖ PoP_1..PoP_n ‖ E_1..E_n ‖ u64le(len ext) ‖ ext (Veche: ext empty)."""
    if len(messages) != len(static_keys):
        raise CeremonyError("need one round-1 message per member")
    check_parameters(threshold, len(static_keys))
    return Transcript(
        bytes(context),
        threshold,
        tuple(bytes(k) for k in static_keys),
        tuple(tuple(c.encode() for c in m.commitments) for m in messages),
        tuple(m.pop for m in messages),
        tuple(m.ephemeral_key.encode() for m in messages),
        bytes(extension),
    ).encode()


def certify(static_key: StaticKey, transcript_bytes: bytes) -> bytes:
    """sig_i: the COCKTAIL Schnorr signature with d_i over T (65 bytes)."""
    return schnorr_sign(static_key.secret, bytes(transcript_bytes))


def verify_certification(static_public_key: bytes, signature: bytes, transcript_bytes: bytes) -> bool:
    try:
        public_key = p256.decode_point(static_public_key)
    except EncodingError:
        return False
    return schnorr_verify(public_key, bytes(signature), bytes(transcript_bytes))


@dataclass(frozen=True)
class Certification:
    """The CERTIFY payload: Y (33) ‖ sig_i (65), ceremony.CERTIFY_LENGTH bytes. Y must be a valid
    P-256 point (PollBook checks only its shape, ceremony.is_compressed_point)."""

    group_key: bytes
    signature: bytes

    def encode(self) -> bytes:
        """Y ‖ sig_i; EncodingError for a certification `decode` refuses."""
        p256.decode_point(self.group_key)
        if len(self.signature) != SIGNATURE_LENGTH:
            raise EncodingError(f"a certification signature is {SIGNATURE_LENGTH} bytes, not {len(self.signature)}")
        return bytes(self.group_key) + bytes(self.signature)

    @classmethod
    def decode(cls, payload: bytes) -> Certification:
        payload = bytes(payload)
        if len(payload) != CERTIFY_LENGTH:
            raise EncodingError(f"a certification is {CERTIFY_LENGTH} bytes (Y ‖ signature), not {len(payload)}")
        p256.decode_point(payload[:POINT_SIZE])
        return cls(payload[:POINT_SIZE], payload[POINT_SIZE:])


def certification_payload(
    context: bytes,
    threshold: int,
    static_keys: Sequence[bytes],
    static_key: StaticKey,
    share: KeyShare,
    round1_payloads: Sequence[bytes],
) -> bytes:
    """The CERTIFY payload of the member holding `share`: Y ‖ its signature over the transcript
    of every member's round-1 payload (in member order)."""
    messages = decode_round1_payloads(round1_payloads, threshold)
    signature = certify(static_key, transcript(context, threshold, static_keys, messages))
    return Certification(share.group_key, signature).encode()


# --- COCKTAIL recovery from the success certificate ------------------------------------------


def recovery_bundle(messages: Sequence[Round1Message], member: int) -> bytes:
    """C^rec_m: the framed ciphertexts addressed to `member`, in sender order."""
    _check_member(member, len(messages))
    return b"".join(_u64be(len(m.ciphertexts[member - 1])) + m.ciphertexts[member - 1] for m in messages)


def recover(static_key: StaticKey, transcript_bytes: bytes, signatures: Sequence[bytes], bundle: bytes) -> KeyShare:
    """COCKTAIL "Share Recovery": x_i, Y, Y_i from d_i, T, the n signatures and C^rec_i alone."""
    parsed = Transcript.decode(transcript_bytes)
    count = len(parsed.static_keys)
    points = _static_points(parsed.static_keys)
    if len(signatures) != count:
        raise CeremonyError("the certificate needs one signature per member")
    for j, (point, signature) in enumerate(zip(points, signatures), start=1):
        if not schnorr_verify(point, bytes(signature), bytes(transcript_bytes)):
            raise CeremonyError(f"certificate signature of member {j} does not verify")
    matches = [j for j, key in enumerate(parsed.static_keys, start=1) if key == static_key.public_key]
    if len(matches) != 1:
        raise CeremonyError("this static key is not exactly one member of the transcript")
    member = matches[0]
    reader = _Reader(bytes(bundle))
    ciphertexts = []
    for _ in range(count):
        length = reader.u64be()
        if length > MAX_CIPHERTEXT_SIZE or length < SHARE_CIPHERTEXT_LENGTH:
            raise EncodingError("recovery bundle ciphertext length out of range")
        ciphertexts.append(reader.take(length))
    reader.end()
    try:
        commitments = [tuple(p256.decode_point(c) for c in entry) for entry in parsed.commitments]
        ephemeral_keys = [p256.decode_point(e) for e in parsed.ephemeral_keys]
    except EncodingError:
        raise CeremonyError("the transcript holds an invalid point") from None
    shares: list[int] = []
    payloads: list[bytes] = []
    recipient = points[member - 1]
    for j in range(count):
        opened = _open_share(
            parsed.context,
            _recipient_secret(static_key, ephemeral_keys[j], points[j]),
            ephemeral_keys[j],
            commitments[j],
            ciphertexts[j],
            points[j],
            recipient,
            member,
        )
        if opened.failure is not None:
            raise CeremonyFaultError(((j + 1, opened.failure),))
        shares.append(opened.share)
        payloads.append(opened.payload)
    return _finish(member, commitments, shares, tuple(payloads))


# --- complaints: evidence (Chaum–Pedersen DLEQ) and judging ----------------------------------


@dataclass(frozen=True)
class ComplaintEvidence:
    """S^e = d_i·E_j (33) ‖ S^d = d_i·P_j (33) ‖ c (32) ‖ z (32): the complainer's two ECDH
    results with the accused, and a proof that both use the d_i behind its static key P_i
    (ceremony.EVIDENCE_LENGTH bytes, the tail of a complaint with a share reason)."""

    shared_ephemeral: bytes
    shared_static: bytes
    challenge: int
    response: int

    def encode(self) -> bytes:
        """S^e ‖ S^d ‖ c ‖ z; EncodingError for evidence `decode` refuses."""
        p256.decode_point(self.shared_ephemeral)
        p256.decode_point(self.shared_static)
        return (
            bytes(self.shared_ephemeral)
            + bytes(self.shared_static)
            + p256.encode_scalar(self.challenge)
            + p256.encode_scalar(self.response)
        )

    @classmethod
    def decode(cls, data: bytes) -> ComplaintEvidence:
        """Both points valid, both scalars canonical; EncodingError if not."""
        data = bytes(data)
        if len(data) != EVIDENCE_LENGTH:
            raise EncodingError(f"complaint evidence is {EVIDENCE_LENGTH} bytes, not {len(data)}")
        shared_ephemeral, shared_static = data[:POINT_SIZE], data[POINT_SIZE : 2 * POINT_SIZE]
        p256.decode_point(shared_ephemeral)
        p256.decode_point(shared_static)
        scalars = 2 * POINT_SIZE
        challenge = p256.decode_scalar(data[scalars : scalars + SCALAR_SIZE])
        return cls(shared_ephemeral, shared_static, challenge, p256.decode_scalar(data[scalars + SCALAR_SIZE :]))


def _dleq_challenge(context: bytes, bases_and_images: Sequence[Point], commitments: Sequence[Point]) -> int:
    return p256.hash_to_scalar(
        _DLEQ_PREFIX
        + b"".join(p.encode() for p in bases_and_images)
        + b"".join(a.encode() for a in commitments)
        + context
    )


def prove_complaint_evidence(
    context: bytes,
    static_key: StaticKey,
    sender_static: bytes,
    sender_ephemeral: bytes,
    *,
    random_bytes: RandomBytes = secrets.token_bytes,
) -> ComplaintEvidence:
    """S^e, S^d and the DLEQ proof that log_B P_i = log_{E_j} S^e = log_{P_j} S^d."""
    sender = p256.decode_point(sender_static)
    ephemeral = p256.decode_point(sender_ephemeral)
    complainer = p256.decode_point(static_key.public_key)
    shared_ephemeral = p256.mul_secret(static_key.secret, ephemeral)
    shared_static = p256.mul_secret(static_key.secret, sender)
    nonce = p256.random_scalar(random_bytes)
    commitments = (p256.mul_base(nonce), p256.mul_secret(nonce, ephemeral), p256.mul_secret(nonce, sender))
    challenge = _dleq_challenge(
        bytes(context), (complainer, ephemeral, sender, shared_ephemeral, shared_static), commitments
    )
    response = (nonce + challenge * static_key.secret) % ORDER
    return ComplaintEvidence(shared_ephemeral.encode(), shared_static.encode(), challenge, response)


def verify_complaint_evidence(
    context: bytes, complainer_static: bytes, sender_static: bytes, sender_ephemeral: bytes, evidence: ComplaintEvidence
) -> bool:
    """A1 = z·B − c·P_i, A2 = z·E_j − c·S^e, A3 = z·P_j − c·S^d (none the identity), and c must
    equal the hash over them."""
    try:
        complainer = p256.decode_point(complainer_static)
        sender = p256.decode_point(sender_static)
        ephemeral = p256.decode_point(sender_ephemeral)
        shared_ephemeral = p256.decode_point(evidence.shared_ephemeral)
        shared_static = p256.decode_point(evidence.shared_static)
    except EncodingError:
        return False
    c, z = evidence.challenge, evidence.response
    if not (0 <= c < ORDER and 0 <= z < ORDER):
        return False
    commitments = (
        p256.GENERATOR * z - complainer * c,
        ephemeral * z - shared_ephemeral * c,
        sender * z - shared_static * c,
    )
    if any(a.is_identity for a in commitments):
        return False
    expected = _dleq_challenge(
        bytes(context), (complainer, ephemeral, sender, shared_ephemeral, shared_static), commitments
    )
    return hmac.compare_digest(p256.encode_scalar(expected), p256.encode_scalar(c))


@dataclass(frozen=True)
class Complaint:
    """The COMPLAINT payload: accused (uint8, poll trustee index) ‖ reason (uint8) ‖ evidence
    (none for a public reason, else a ComplaintEvidence's 130 bytes): ceremony.complaint_length
    bytes. `decode` and `encode` refuse what PollBook refuses (a reason that is Reserved or
    unknown, a length other than the reason's); the evidence stays bytes, for `judge_complaint`
    to decide what it proves (evidence that does not decode is the complainer's fault)."""

    accused: int
    reason: ComplaintReason
    evidence: bytes = b""

    def encode(self) -> bytes:
        if not 0 <= self.accused <= 255:
            raise EncodingError("the accused is a single byte")
        expected = complaint_length(self.reason) - COMPLAINT_HEADER_LENGTH  # refuses Reserved and unknown
        if len(self.evidence) != expected:
            raise EncodingError(
                f"a {ComplaintReason(self.reason).name} complaint carries {expected} bytes of evidence,"
                f" not {len(self.evidence)}"
            )
        return bytes([self.accused, self.reason]) + bytes(self.evidence)

    @classmethod
    def decode(cls, payload: bytes) -> Complaint:
        """Structure only; `judge_complaint` decides what the content proves."""
        payload = bytes(payload)
        if len(payload) < COMPLAINT_HEADER_LENGTH:
            raise EncodingError("a complaint is at least 2 bytes")
        expected = complaint_length(payload[1])
        if len(payload) != expected:
            raise EncodingError(f"a complaint with reason {payload[1]} is {expected} bytes, not {len(payload)}")
        return cls(payload[0], ComplaintReason(payload[1]), payload[COMPLAINT_HEADER_LENGTH:])


def make_complaint(
    context: bytes,
    threshold: int,
    static_keys: Sequence[bytes],
    static_key: StaticKey,
    fault: Fault,
    accused_round1: bytes,
    *,
    random_bytes: RandomBytes = secrets.token_bytes,
) -> bytes:
    """The evidence bytes for one fault from `round2`: empty for reason 1, else S^e ‖ S^d ‖ c ‖ z."""
    _check_member(fault.member, len(static_keys))
    if fault.reason in PUBLIC_REASONS:
        return b""
    message = Round1Message.decode(accused_round1, threshold, len(static_keys), allow_payloads=True)
    return prove_complaint_evidence(
        context,
        static_key,
        bytes(static_keys[fault.member - 1]),
        message.ephemeral_key.encode(),
        random_bytes=random_bytes,
    ).encode()


def complaint_payload(
    context: bytes,
    threshold: int,
    static_keys: Sequence[bytes],
    static_key: StaticKey,
    fault: tuple[int, int],
    round1_payloads: Sequence[bytes],
    members: Sequence[int],
    *,
    random_bytes: RandomBytes = secrets.token_bytes,
) -> tuple[int, bytes]:
    """(accused poll trustee index, COMPLAINT payload) for a fault `round2` found, a (member id,
    reason) pair as CeremonyFaultError lists them; `members` are the attempt's poll trustee
    indices in member order, `round1_payloads` every member's round-1 payload in that order."""
    found = Fault(fault[0], ComplaintReason(fault[1]))
    _check_member(found.member, len(members))
    accused = members[found.member - 1]
    evidence = make_complaint(
        context,
        threshold,
        static_keys,
        static_key,
        found,
        round1_payloads[found.member - 1],
        random_bytes=random_bytes,
    )
    return accused, Complaint(accused, found.reason, evidence).encode()


@dataclass(frozen=True)
class Verdict:
    """Who a complaint puts at fault, and what the public data shows the accused did (`finding`
    None: nothing wrong with the accused's message or share)."""

    at_fault: Party
    finding: ComplaintReason | None
    detail: str


def judge_complaint(
    context: bytes,
    threshold: int,
    static_keys: Sequence[bytes],
    complainer: int,
    accused: int,
    reason: int,
    evidence: bytes,
    accused_round1: bytes,
) -> Verdict:
    """Decide a complaint from public data (member ids 1..n, the accused's round-1 payload).

    The accused is at fault when its round-1 message is malformed or its PoP fails (whatever the
    reason given), or, for reasons 2–4, when the evidence's proof verifies and the share it opens
    fails AEAD, is not a canonical scalar, or fails the VSS check (the finding says which, even
    if the complainer named another of 2–4). Otherwise the complainer is: reason 1 against a
    sound message, an unknown reason, malformed or unproven evidence, or a share that is fine."""
    points = _static_points(static_keys)
    count = len(points)
    check_parameters(threshold, count)
    _check_member(complainer, count)
    _check_member(accused, count)
    if complainer == accused:
        return Verdict(Party.COMPLAINER, None, "a member cannot accuse itself")
    try:
        message = Round1Message.decode(accused_round1, threshold, count)
    except EncodingError as error:
        return Verdict(Party.ACCUSED, ComplaintReason.MalformedRound1, f"round-1 message is malformed: {error}")
    if not message.verify_pop(context):
        return Verdict(Party.ACCUSED, ComplaintReason.MalformedRound1, "round-1 proof of possession fails")
    if reason == ComplaintReason.MalformedRound1:
        return Verdict(Party.COMPLAINER, None, "round-1 message is well-formed and its PoP verifies")
    if reason not in (
        ComplaintReason.ShareDecryption,
        ComplaintReason.ShareNotCanonical,
        ComplaintReason.ShareVerification,
    ):
        return Verdict(Party.COMPLAINER, None, f"unknown complaint reason {reason}")
    try:
        proof = ComplaintEvidence.decode(evidence)
    except EncodingError as error:
        return Verdict(Party.COMPLAINER, None, f"evidence is malformed: {error}")
    sender, recipient = points[accused - 1], points[complainer - 1]
    if not verify_complaint_evidence(
        context, recipient.encode(), sender.encode(), message.ephemeral_key.encode(), proof
    ):
        return Verdict(Party.COMPLAINER, None, "the evidence's DLEQ proof fails")
    opened = _open_share(
        bytes(context),
        proof.shared_ephemeral + proof.shared_static,
        message.ephemeral_key,
        message.commitments,
        message.ciphertexts[complainer - 1],
        sender,
        recipient,
        complainer,
    )
    if opened.failure is None:
        return Verdict(Party.COMPLAINER, None, "the share decrypts and matches the accused's commitments")
    return Verdict(Party.ACCUSED, opened.failure, f"the share fails: {opened.failure.name}")


# --- release after close ---------------------------------------------------------------------


def encode_release_share(secret_share: int) -> bytes:
    """0x02 ‖ x_m (32): the v2 share posted with submitKeyShare (v1 shares start with 0x01)."""
    return bytes([RELEASE_SHARE_VERSION]) + p256.encode_scalar(secret_share)


def decode_release_share(data: bytes) -> int:
    data = bytes(data)
    if len(data) != RELEASE_SHARE_SIZE or data[0] != RELEASE_SHARE_VERSION:
        raise KeyShareError("a v2 key share is 0x02 ‖ 32-byte scalar")
    try:
        return p256.decode_scalar(data[1:])
    except EncodingError:
        raise KeyShareError("key share scalar is not reduced modulo q") from None


def check_released_share(secret_share: int, verification_share_bytes: bytes) -> bool:
    """x·B == Y_m (through OpenSSL: the trustee may call it before the share is public)."""
    return hmac.compare_digest(p256.mul_base(secret_share).encode(), bytes(verification_share_bytes))


def lagrange_at_zero(members: Sequence[int]) -> dict[int, int]:
    """λ_m = Π_{k≠m} k / (k − m) mod q for distinct member ids (interpolation at 0)."""
    if len(set(members)) != len(members) or any(not 0 < m < ORDER for m in members):
        raise KeyShareError("member ids must be distinct and non-zero")
    coefficients = {}
    for m in members:
        numerator = denominator = 1
        for k in members:
            if k != m:
                numerator = numerator * k % ORDER
                denominator = denominator * (k - m) % ORDER
        coefficients[m] = numerator * pow(denominator, -1, ORDER) % ORDER
    return coefficients


def combine_shares(shares: Mapping[int, int], threshold: int, group_key_bytes: bytes) -> int:
    """x = Σ λ_m x_m over the t lowest member ids given; KeyShareError if fewer than t or if
    x·B ≠ Y. (Check each share against Y_m first, `check_released_share`.)"""
    if len(shares) < threshold:
        raise KeyShareError(f"fewer key shares than the threshold: {len(shares)} of {threshold}")
    chosen = sorted(shares)[:threshold]
    secret = sum(lam * shares[m] for m, lam in lagrange_at_zero(chosen).items()) % ORDER
    if not hmac.compare_digest(p256.mul_base(secret).encode(), bytes(group_key_bytes)):
        raise KeyShareError("the rebuilt secret does not match the election key")
    return secret


# --- the verifier's checks -------------------------------------------------------------------


@dataclass(frozen=True)
class CeremonyCheck:
    """The public check of a certified attempt: `problems` empty means it passes."""

    problems: tuple[str, ...]
    group_key: bytes | None
    verification_shares: tuple[bytes, ...]
    transcript: bytes | None

    @property
    def ok(self) -> bool:
        return not self.problems


def check_ceremony(
    context: bytes,
    threshold: int,
    static_keys: Sequence[bytes],
    round1_payloads: Sequence[bytes],
    certifications: Sequence[bytes],
    certified_key: bytes | None = None,
) -> CeremonyCheck:
    """Every round-1 message well-formed with a valid PoP, every member's certification
    (in member order) carrying Y = Σ C_{j,0} and a valid signature over T, and Y equal to the
    key the chain certified. Returns every problem found, not just the first."""
    points = _static_points(static_keys)
    count = len(points)
    check_parameters(threshold, count)
    problems: list[str] = []
    if len(round1_payloads) != count:
        return CeremonyCheck((f"{len(round1_payloads)} round-1 messages for {count} members",), None, (), None)
    messages: list[Round1Message] = []
    for j, payload in enumerate(round1_payloads, start=1):
        try:
            message = Round1Message.decode(payload, threshold, count)
        except EncodingError as error:
            problems.append(f"member {j}: round-1 message is malformed: {error}")
            continue
        if not message.verify_pop(context):
            problems.append(f"member {j}: round-1 proof of possession fails")
        messages.append(message)
    if problems:
        return CeremonyCheck(tuple(problems), None, (), None)
    key = group_key(messages)
    shares = verification_shares(messages)
    transcript_bytes = transcript(context, threshold, static_keys, messages)
    if len(certifications) != count:
        problems.append(f"{len(certifications)} certifications for {count} members")
    for j, payload in enumerate(certifications[:count], start=1):
        try:
            certification = Certification.decode(payload)
        except EncodingError as error:
            problems.append(f"member {j}: certification is malformed: {error}")
            continue
        if certification.group_key != key:
            problems.append(f"member {j}: certifies another key than Σ C_j,0")
        if not schnorr_verify(points[j - 1], certification.signature, transcript_bytes):
            problems.append(f"member {j}: certification signature does not verify over the transcript")
    if certified_key is not None and bytes(certified_key) != key:
        problems.append("the certified election key is not Σ C_j,0")
    return CeremonyCheck(tuple(problems), key, shares, transcript_bytes)


@dataclass(frozen=True)
class ReleaseCheck:
    """Released shares against their verification shares; `secret` is the rebuilt election secret
    when at least t shares are valid (None: not yet)."""

    valid: tuple[int, ...]
    invalid: tuple[int, ...]
    secret: int | None


def check_release(
    verification_shares_bytes: Sequence[bytes], threshold: int, group_key_bytes: bytes, released: Mapping[int, bytes]
) -> ReleaseCheck:
    """Decode each released share (member id → payload), set aside every one with x·B ≠ Y_m or a
    malformed encoding, and rebuild x from t valid ones (x·B must equal Y)."""
    valid: dict[int, int] = {}
    invalid: list[int] = []
    for member in sorted(released):
        _check_member(member, len(verification_shares_bytes))
        try:
            share = decode_release_share(released[member])
        except KeyShareError:
            invalid.append(member)
            continue
        if p256.GENERATOR * share == p256.decode_point(verification_shares_bytes[member - 1], allow_identity=True):
            valid[member] = share
        else:
            invalid.append(member)
    secret = combine_shares(valid, threshold, group_key_bytes) if len(valid) >= threshold else None
    return ReleaseCheck(tuple(sorted(valid)), tuple(invalid), secret)

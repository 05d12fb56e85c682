"""k-of-n sharing of the 32-byte election secret with SLIP-39 (python-shamir-mnemonic).

Why SLIP-39: a published, test-vectored Shamir scheme over GF(256) with an RS1024 checksum per
share (a corrupted share is caught before use) and a digest of the secret inside the sharing
(a wrong-but-well-formed share makes recovery fail instead of yielding a wrong secret).

Choices (docs/protocol.md §"Key shares"):
- One group, group threshold 1, member threshold k, n members; so 1 ≤ k ≤ n ≤ 16, and SLIP-39
  forbids k = 1 with n > 1.
- Empty passphrase and iteration exponent 0. SLIP-39's passphrase only encrypts the master
  secret; here every verifier must rebuild the secret after close, so any passphrase would have
  to be published with the shares and would protect nothing. Confidentiality before close comes
  from sealing each share to its trustee's X25519 key. The PBKDF2 rounds are then pure cost.
- Share encoding: 0x01 ‖ word count w (1 byte) ‖ the w 10-bit SLIP-39 word indices packed
  big-endian, zero-padded to a byte boundary. This is the mnemonic's exact information (its
  checksum included) in 44 bytes instead of ~230 of text; any SLIP-39 library can take the
  rebuilt mnemonic.
"""

from __future__ import annotations

import hmac
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import shamir_mnemonic
from shamir_mnemonic import MnemonicError, Share
from shamir_mnemonic.wordlist import mnemonic_from_indices, mnemonic_to_indices

from . import sealing
from .errors import KeyShareError, SealingError

SHARE_VERSION = 0x01
SECRET_LENGTH = 32
MAX_TRUSTEES = 16  # SLIP-39's member count limit
ITERATION_EXPONENT = 0
PASSPHRASE = b""
_RADIX_BITS = 10


def check_trustee_parameters(threshold: int, count: int) -> None:
    """1 ≤ k ≤ n ≤ 16, and k = 1 only with n = 1 (a SLIP-39 rule)."""
    if not 1 <= threshold <= count <= MAX_TRUSTEES:
        raise KeyShareError(f"need 1 ≤ threshold ≤ trustees ≤ {MAX_TRUSTEES}")
    if threshold == 1 and count > 1:
        raise KeyShareError("SLIP-39 allows threshold 1 only with a single trustee")


# --- share encoding ------------------------------------------------------------------------


def encode_share(mnemonic: str) -> bytes:
    """The on-chain bytes of one SLIP-39 share (validated before encoding)."""
    try:
        Share.from_mnemonic(mnemonic)
        indices = mnemonic_to_indices(mnemonic)
    except MnemonicError:
        raise KeyShareError("not a valid SLIP-39 share") from None
    count = len(indices)
    if count > 255:
        raise KeyShareError("SLIP-39 share is too long")
    value = 0
    for index in indices:
        value = value << _RADIX_BITS | index
    body_len = (count * _RADIX_BITS + 7) // 8
    value <<= body_len * 8 - count * _RADIX_BITS
    return bytes([SHARE_VERSION, count]) + value.to_bytes(body_len, "big")


def decode_share(data: bytes) -> str:
    """The SLIP-39 mnemonic of an encoded share; KeyShareError if malformed or corrupted."""
    data = bytes(data)
    if len(data) < 2 or data[0] != SHARE_VERSION:
        raise KeyShareError("unknown key share encoding version")
    count = data[1]
    body = data[2:]
    if len(body) != (count * _RADIX_BITS + 7) // 8:
        raise KeyShareError("key share length does not match its word count")
    pad = len(body) * 8 - count * _RADIX_BITS
    value = int.from_bytes(body, "big")
    if value & ((1 << pad) - 1):
        raise KeyShareError("key share padding bits are not zero")
    value >>= pad
    indices = [(value >> (_RADIX_BITS * (count - 1 - i))) & 0x3FF for i in range(count)]
    mnemonic: str = mnemonic_from_indices(indices)  # shamir-mnemonic ships no type information
    try:
        Share.from_mnemonic(mnemonic)  # RS1024 checksum, padding, parameters
    except MnemonicError:
        raise KeyShareError("key share is corrupted (SLIP-39 checksum or format)") from None
    return mnemonic


@dataclass(frozen=True)
class ShareInfo:
    """The public parameters inside a share (no share value)."""

    identifier: int
    index: int
    threshold: int
    group_count: int


def share_info(data: bytes) -> ShareInfo:
    share = Share.from_mnemonic(decode_share(data))
    return ShareInfo(share.identifier, share.index, share.member_threshold, share.group_count)


# --- split and combine ---------------------------------------------------------------------


def split_secret(secret: bytes, threshold: int, count: int) -> list[bytes]:
    """Encoded shares of a 32-byte secret; share i (0-based) is for trustee i."""
    check_trustee_parameters(threshold, count)
    if len(secret) != SECRET_LENGTH:
        raise KeyShareError("the election secret is 32 bytes")
    (group,) = shamir_mnemonic.generate_mnemonics(
        1, [(threshold, count)], bytes(secret), PASSPHRASE, True, ITERATION_EXPONENT
    )
    return [encode_share(mnemonic) for mnemonic in group]


def combine_mnemonics(mnemonics: Sequence[str], passphrase: bytes = PASSPHRASE) -> bytes:
    """The SLIP-39 master secret of exactly-threshold mnemonics (any groups, any passphrase).

    The general SLIP-39 path, used by combine_shares and by the SLIP-39 test vectors. Messages
    never quote share words.
    """
    if not mnemonics:
        raise KeyShareError("no key shares given")
    try:
        groups = shamir_mnemonic.decode_mnemonics(mnemonics)
    except MnemonicError:
        raise KeyShareError("a key share is corrupted or the shares do not belong together") from None
    params = next(iter(groups.values())).common_parameters()
    if len(groups) < params.group_threshold or any(len(group) < group.member_threshold() for group in groups.values()):
        raise KeyShareError("fewer key shares than the threshold")
    try:
        secret: bytes = shamir_mnemonic.recover_ems(groups).decrypt(passphrase)  # untyped library
        return secret
    except MnemonicError:
        raise KeyShareError("key shares do not rebuild a secret (wrong count, duplicate index or bad digest)") from None
    except ValueError:
        raise KeyShareError("key shares do not rebuild a secret") from None


def combine_shares(shares: Sequence[bytes], election_public_key: bytes, threshold: int | None = None) -> bytes:
    """Verifier check 7: rebuild the election secret and check it against the public key.

    Every given share must decode (a corrupted one raises; filter with decode_share first to
    skip it). Shares are deduplicated; if more than k are given, k-subsets are tried in order
    until one rebuilds the published key, so one bad-but-well-formed share cannot block release.
    """
    mnemonics: dict[int, str] = {}
    for position, data in enumerate(shares):
        try:
            mnemonic = decode_share(data)
        except KeyShareError as exc:
            raise KeyShareError(f"key share {position}: {exc}") from None
        share = Share.from_mnemonic(mnemonic)
        if share.group_count != 1 or share.group_threshold != 1:
            raise KeyShareError(f"key share {position} is not a single-group share")
        if threshold is not None and share.member_threshold != threshold:
            raise KeyShareError(f"key share {position} has a threshold other than the poll's")
        previous = mnemonics.setdefault(share.index, mnemonic)
        if previous != mnemonic:
            raise KeyShareError(f"two different key shares have member index {share.index}")
    if not mnemonics:
        raise KeyShareError("no key shares given")
    k = Share.from_mnemonic(next(iter(mnemonics.values()))).member_threshold
    if len(mnemonics) < k:
        raise KeyShareError(f"fewer key shares than the threshold: {len(mnemonics)} of {k}")
    last_error: KeyShareError | None = None
    for subset in itertools.combinations(sorted(mnemonics), k):
        try:
            secret = combine_mnemonics([mnemonics[i] for i in subset])
        except KeyShareError as exc:
            last_error = exc
            continue
        if len(secret) == SECRET_LENGTH and _matches(secret, election_public_key):
            return secret
        last_error = KeyShareError("the rebuilt secret key does not match the published election public key")
    assert last_error is not None
    raise last_error


def disagreeing_shares(shares: Sequence[bytes], secret: bytes) -> list[int]:
    """Positions of shares that do not rebuild `secret` together with shares that do.

    combine_shares can succeed despite a wrong-but-well-formed share when more than k are
    posted; this finds such a share so the verifier can name the trustee who posted it.
    """
    mnemonics = [decode_share(share) for share in shares]
    k = Share.from_mnemonic(mnemonics[0]).member_threshold

    def rebuilds(positions: Sequence[int]) -> bool:
        try:
            rebuilt = combine_mnemonics([mnemonics[p] for p in positions])
        except KeyShareError:
            return False
        return hmac.compare_digest(rebuilt, bytes(secret))

    good = next((s for s in itertools.combinations(range(len(mnemonics)), k) if rebuilds(s)), None)
    if good is None:
        return list(range(len(mnemonics)))
    return [p for p in range(len(mnemonics)) if p not in good and not rebuilds([*good[: k - 1], p])]


def _matches(secret: bytes, election_public_key: bytes) -> bool:
    try:
        derived = sealing.public_key_from_secret(secret)
    except SealingError:
        return False
    return hmac.compare_digest(derived, bytes(election_public_key))


# --- dealing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dealing:
    """What poll creation publishes: the election public key and one sealed share per trustee.

    The election secret is not kept: the dealer (the poll administrator's tool) holds it only
    for the duration of `deal`. See docs/threat-model.md for the dealer assumption.
    """

    election_public_key: bytes
    sealed_shares: tuple[bytes, ...]


def deal(threshold: int, trustee_public_keys: Sequence[bytes]) -> Dealing:
    """Make an election key, split it k-of-n, seal each share to its trustee, forget it."""
    check_trustee_parameters(threshold, len(trustee_public_keys))
    election = sealing.generate_election_keypair()
    shares = split_secret(election.secret_key, threshold, len(trustee_public_keys))
    sealed = tuple(
        sealing.seal_share(public_key, share) for public_key, share in zip(trustee_public_keys, shares, strict=True)
    )
    return Dealing(election.public_key, sealed)


def open_trustee_share(trustee_secret_key: bytes, sealed_share: bytes) -> bytes:
    """A trustee opens its sealed share; the result is what it posts on chain after close."""
    try:
        share = sealing.open_share(trustee_secret_key, sealed_share)
    except SealingError:
        raise KeyShareError("sealed key share does not open under this trustee key") from None
    decode_share(share)
    return share

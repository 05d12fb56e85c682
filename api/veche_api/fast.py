"""The per-ballot hot path's byte work, without the generic layers.

A profile of `POST /ballots` showed the cryptography itself (one ecrecover, one RSA verify, one
ECDSA signature: ~150 µs together) buried under generic helpers: EIP-55 checksumming through
eth-utils (~25 µs a call, five calls per ballot), eth-abi's generic encoder for the ballot hash
(~40 µs) and eth-keys' signing wrapper (~150 µs). These functions compute the same bytes directly;
tests compare each with the protocol core's own function (tests/api/test_fast.py).
"""

from __future__ import annotations

import coincurve

from veche_core._keccak import keccak
from veche_core.abi import checksum_address  # noqa: F401  (EIP-55 without eth-utils; used by the routes)
from veche_core.ballot import Ballot
from veche_core.errors import SignatureError
from veche_core.typed_data import Domain, ballot_digest, receipt_digest, recover_signer_bytes


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _padded(data: bytes) -> bytes:
    return _word(len(data)) + data + bytes(-len(data) % 32)


def encode_ballot(ballot: Ballot) -> bytes:
    """abi.encode(uint256, address, uint64, uint32, bytes, bytes, bytes): veche_core's
    `encode_ballot`, written out (every head is static; three dynamic tails follow)."""
    ct, cred, sig = ballot.ciphertext, ballot.token_credential, ballot.signature
    off1 = 7 * 32
    off2 = off1 + 32 + len(ct) + (-len(ct) % 32)
    off3 = off2 + 32 + len(cred) + (-len(cred) % 32)
    return b"".join((
        _word(ballot.poll_id), bytes(12) + ballot.token, _word(ballot.sequence), _word(ballot.stratum),
        _word(off1), _word(off2), _word(off3), _padded(ct), _padded(cred), _padded(sig),
    ))


def ballot_hash(ballot: Ballot) -> bytes:
    return keccak(encode_ballot(ballot))


def verify_ballot_signature(ballot: Ballot, domain: Domain) -> None:
    """`Ballot.verify_signature`, comparing raw addresses (no checksumming)."""
    digest = ballot_digest(
        domain, ballot.poll_id, ballot.token, ballot.sequence, ballot.stratum, ballot.ciphertext,
        ballot.token_credential,
    )
    if recover_signer_bytes(digest, ballot.signature) != ballot.token:
        raise SignatureError("ballot signature does not recover its token address")


class DigestSigner:
    """A secp256k1 key held as a coincurve object: `sign_digest`'s bytes (r || s || v, v = 27 or
    28, low s — libsecp256k1 always normalises) without re-parsing the key on every call."""

    def __init__(self, private_key: bytes) -> None:
        self._key = coincurve.PrivateKey(bytes(private_key))

    def sign(self, digest: bytes) -> bytes:
        signature = self._key.sign_recoverable(digest, hasher=None)
        return signature[:64] + bytes([signature[64] + 27])

    def sign_receipt(self, domain: Domain, poll_id: int, token: bytes, sequence: int, ballot_hash_: bytes,
                     accepted_at: int) -> bytes:
        return self.sign(receipt_digest(domain, poll_id, token, sequence, ballot_hash_, accepted_at))


# castBallots(uint256 pollId, (address,uint64,uint32,bytes,bytes,bytes)[] ballots): the ABI size
# of one element: a 32-byte offset in the array head, six head words, three length words and the
# three byte strings padded to 32.
def ballot_calldata_size(ciphertext_len: int, credential_len: int, signature_len: int = 65) -> int:
    padded = sum(n + (-n % 32) for n in (ciphertext_len, credential_len, signature_len))
    return 32 + 6 * 32 + 3 * 32 + padded


# selector + pollId + offset of the array + array length
CAST_BALLOTS_OVERHEAD = 4 + 3 * 32


CAST_BALLOTS_SELECTOR = keccak(b"castBallots(uint256,(address,uint64,uint32,bytes,bytes,bytes)[])")[:4]


def encode_cast_ballots(poll_id: int, items) -> bytes:
    """Calldata of `castBallots(pollId, ballots)`, items being (token: 20 bytes, sequence,
    stratum, ciphertext, tokenSignature, signature) — what web3's contract encoder produces
    (~30 µs a ballot there, ~5 µs here; the relay encodes every ballot once)."""
    tails = []
    for token, sequence, stratum, ciphertext, credential, signature in items:
        off1 = 6 * 32
        off2 = off1 + 32 + len(ciphertext) + (-len(ciphertext) % 32)
        off3 = off2 + 32 + len(credential) + (-len(credential) % 32)
        tails.append(b"".join((
            bytes(12) + bytes(token), _word(sequence), _word(stratum), _word(off1), _word(off2), _word(off3),
            _padded(bytes(ciphertext)), _padded(bytes(credential)), _padded(bytes(signature)),
        )))
    offsets, position = [], 32 * len(tails)
    for tail in tails:
        offsets.append(_word(position))
        position += len(tail)
    return b"".join([CAST_BALLOTS_SELECTOR, _word(poll_id), _word(64), _word(len(tails)), *offsets, *tails])

"""Helpers for the contract tests: token keys, ballots signed with the protocol core
(`veche_core.typed_data`) as the API signs them, poll parameters, key-ceremony messages (random
bytes of the lengths `veche_core.ceremony` gives: the contract does not look inside), and strict
revert checks.

`reverts_with` is stricter than `ape.reverts(Error, **inputs)`: it also fails when the call
reverts with a different error (or none), and it compares every input of the error.
(A uniquely named module rather than `conftest`, so that imports cannot pick up another test
directory's conftest.)
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field

import ape
import pytest
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from web3.exceptions import ContractCustomError as Web3ContractCustomError

from veche_core import ceremony, register, typed_data

# Realistic ballot sizes: a 32-byte prefix + an RSA-2048 signature, and a sealed box of a
# 3-byte plaintext (48 bytes of overhead).
TOKEN_SIGNATURE_SIZE = 288
CIPHERTEXT_SIZE = 51

OPENS_IN = 100
CLOSES_IN = 1_000


@contextmanager
def reverts_with(error_cls, **inputs):
    """Expect a transaction to revert with exactly this custom error and these inputs.

    Stricter than `ape.reverts(Error, **inputs)`, which passes when the revert is not a custom
    error at all and skips inputs it does not find: here every input must be named and match.
    """
    with ape.reverts() as info:
        yield info
    error = info.value
    assert isinstance(error, error_cls), f"expected {error_cls.__name__}, got {error!r}"
    _assert_inputs(error_cls, dict(error.inputs), inputs)


def call_reverts_with(method, call_args, error_cls, **inputs):
    """Expect a view call to revert with exactly this custom error and these inputs.

    ape decodes custom errors of transactions only, so the call goes through `eth_call` here
    and the raw revert data is decoded with the error's ABI.
    """
    contract = method.contract
    with pytest.raises(Web3ContractCustomError) as info:
        contract.provider.web3.eth.call({"to": contract.address, "data": method.encode_input(*call_args).hex()})
    data = bytes.fromhex(info.value.data.removeprefix("0x"))
    abi = error_cls.abi
    assert data[:4] == keccak(abi.selector.encode())[:4], f"expected {error_cls.__name__}"
    values = abi_decode([i.canonical_type for i in abi.inputs], data[4:])
    actual = {i.name: to_checksum_address(v) if i.type == "address" else v for i, v in zip(abi.inputs, values)}
    _assert_inputs(error_cls, actual, inputs)


def _assert_inputs(error_cls, actual_inputs: dict, expected_inputs: dict) -> None:
    assert set(expected_inputs) == set(actual_inputs), (
        f"{error_cls.__name__} has inputs {sorted(actual_inputs)}, the test names {sorted(expected_inputs)}"
    )
    for name, expected in expected_inputs.items():
        actual = actual_inputs[name]
        if isinstance(expected, bytes):
            actual = bytes(actual)
        elif isinstance(expected, str) and isinstance(actual, str):
            expected, actual = expected.lower(), actual.lower()
        assert actual == expected, f"{name}: expected {expected!r}, got {actual!r}"


def role(name: str) -> bytes:
    return keccak(name.encode())


@dataclass(frozen=True)
class Key:
    """A fresh secp256k1 key (a token key, a resident's identity key or a trustee's key)."""

    private_key: bytes
    address: str

    @classmethod
    def create(cls) -> Key:
        account = Account.create()
        return cls(bytes(account.key), account.address)


@dataclass
class Ballot:
    token: str
    sequence: int
    stratum: int
    ciphertext: bytes
    token_signature: bytes
    signature: bytes = field(default=b"")

    def as_arg(self) -> tuple:
        return (
            self.token,
            self.sequence,
            self.stratum,
            self.ciphertext,
            self.token_signature,
            self.signature,
        )


def sign_ballot(
    domain: typed_data.Domain,
    poll_id: int,
    token: Key,
    sequence: int,
    stratum: int = 0,
    *,
    ciphertext: bytes | None = None,
    token_signature: bytes | None = None,
    signer: Key | None = None,
) -> Ballot:
    """A ballot of `token`, signed over the EIP-712 `Ballot` type (by `signer` if given)."""
    ciphertext = os.urandom(CIPHERTEXT_SIZE) if ciphertext is None else ciphertext
    token_signature = os.urandom(TOKEN_SIGNATURE_SIZE) if token_signature is None else token_signature
    digest = typed_data.ballot_digest(domain, poll_id, token.address, sequence, stratum, ciphertext, token_signature)
    signature = typed_data.sign_digest((signer or token).private_key, digest)
    return Ballot(token.address, sequence, stratum, ciphertext, token_signature, signature)


def args(ballots: list[Ballot]) -> list[tuple]:
    return [b.as_arg() for b in ballots]


def params_tuple(params: dict) -> tuple:
    return (
        params["metadataHash"],
        params["optionCount"],
        params["maxChoices"],
        params["opensAt"],
        params["closesAt"],
        params["points"],
        params["electionKey"],
        params["issuerKeys"],
        params["trustees"],
        params["threshold"],
    )


def create_args(params: dict) -> tuple:
    """createPoll's three arguments: the parameters, the register roots, the register sizes."""
    trees = params["register"]
    return params_tuple(params), [t.root for t in trees], [t.size for t in trees]


def issuance(
    domain: typed_data.Domain,
    poll_id: int,
    resident: Key,
    stratum: int,
    tree: register.RegisterTree,
    *,
    deadline: int = 2**40,
    signer: Key | None = None,
    leaf_index: int | None = None,
    proof: list[bytes] | None = None,
) -> tuple:
    """An IssuanceRecord of `resident` (signed by `signer` if given), proven in `tree` at its
    own index (or at `leaf_index` with `proof`)."""
    blinded_hash = os.urandom(32)
    digest = typed_data.issuance_request_hash_digest(domain, poll_id, stratum, blinded_hash, deadline)
    signature = typed_data.sign_digest((signer or resident).private_key, digest)
    index = tree.index_of(resident.address) if leaf_index is None else leaf_index
    return (
        resident.address,
        stratum,
        blinded_hash,
        deadline,
        signature,
        index,
        tree.proof(index) if proof is None else proof,
    )


@dataclass
class PollHandle:
    id: int
    opens_at: int
    closes_at: int
    params: dict
    receipt: object = None  # createPoll's


# --- Protocol v2: trustee keys and the key ceremony ---------------------------------------------


def static_key(prefix: int | None = None) -> bytes:
    """A 33-byte SEC1-compressed-looking P-256 key (random x: PollBook checks only the shape)."""
    first = prefix if prefix is not None else 2 + os.urandom(1)[0] % 2
    return bytes([first]) + os.urandom(32)


def trustee_key_signature(
    domain: typed_data.Domain, trustee: Key, key: bytes, serial: int, *, signer: Key | None = None
):
    digest = typed_data.trustee_key_digest(domain, trustee.address, key, serial)
    return typed_data.sign_digest((signer or trustee).private_key, digest)


def register_key(poll_book, domain, trustee: Key, key: bytes, serial: int, sender):
    """Registers `key` for `trustee` (signed by it, relayed by `sender`); returns the receipt."""
    signature = trustee_key_signature(domain, trustee, key, serial)
    return poll_book.registerTrusteeKey(trustee.address, key, serial, signature, sender=sender)


def message_signature(domain, poll_id, attempt, index, kind, payload, signer: Key) -> bytes:
    digest = typed_data.ceremony_message_digest(domain, poll_id, attempt, index, kind, payload)
    return typed_data.sign_digest(signer.private_key, digest)


def round1_payload(threshold: int, members: int) -> bytes:
    return os.urandom(ceremony.round1_length(threshold, members))


def complaint_payload(accused: int, reason: int = ceremony.ComplaintReason.ShareVerification) -> bytes:
    return bytes([accused, reason]) + os.urandom(ceremony.complaint_length(reason) - 2)


def certify_payload(election_key: bytes) -> bytes:
    return election_key + os.urandom(ceremony.SIGNATURE_LENGTH)


@dataclass
class CeremonyHandle:
    """A v2 poll, its trustees (signing keys, relayed by someone else) and their static keys."""

    poll: PollHandle
    trustees: list[Key]
    keys: list[bytes]

    @property
    def id(self) -> int:
        return self.poll.id

    @property
    def threshold(self) -> int:
        return self.poll.params["threshold"]

    def post(self, poll_book, domain, sender, index, kind, payload, *, attempt=1, signer: Key | None = None):
        """Posts trustee `index`'s message (signed by `signer` if given) through `sender`."""
        signature = message_signature(domain, self.id, attempt, index, kind, payload, signer or self.trustees[index])
        return poll_book.postCeremonyMessage(self.id, attempt, index, kind, payload, signature, sender=sender)

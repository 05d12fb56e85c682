"""The register tree (docs/protocol.md §3.11): its bytes against a hand computation, proofs for
every index of every small size, and the ways a proof must fail (another index, a wrong size, a
sibling changed, a step missing)."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_hash.auto import keccak as reference_keccak

from veche_core import register
from veche_core.errors import EncodingError

ADDRESSES = [Account.create().address for _ in range(9)]


def test_the_bytes_hashed():
    a, b, c = (bytes.fromhex(x[2:]) for x in ADDRESSES[:3])
    leaves = [reference_keccak(b"\x00\x01" + i.to_bytes(4, "big") + x) for i, x in enumerate((a, b, c))]
    assert [register.leaf_hash(i, x) for i, x in enumerate((a, b, c))] == leaves
    left = reference_keccak(b"\x01" + leaves[0] + leaves[1])
    right = reference_keccak(b"\x01" + leaves[2] + bytes(32))  # index 3 is past the size: the empty leaf
    tree = register.RegisterTree.build([a, b, c])
    assert tree.root == reference_keccak(b"\x01" + left + right)
    assert tree.proof(2) == [bytes(32), left]


@pytest.mark.parametrize(("size", "depth"), [(0, 0), (1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (8, 3), (9, 4)])
def test_depth(size, depth):
    assert register.depth(size) == depth


@pytest.mark.parametrize("size", range(1, 10))
def test_every_member_proves_and_nothing_else_does(size):
    tree = register.RegisterTree.build(ADDRESSES[:size])
    for index, resident in enumerate(ADDRESSES[:size]):
        proof = tree.proof(index)
        assert register.proof_error(tree.root, size, index, resident, proof) is None
        assert register.proof_error(tree.root, size, index, ADDRESSES[(index + 1) % 9], proof) is not None
        if size > 1:  # the same leaf at another position
            assert register.proof_error(tree.root, size, index ^ 1, resident, proof) is not None
    # The size binds: past it nothing proves, and a claimed larger size needs another depth.
    assert "not below" in register.proof_error(tree.root, size, size, ADDRESSES[0], tree.proof(0))
    if register.depth(size + 1) != register.depth(size):
        assert "steps" in register.proof_error(tree.root, size + 1, 0, ADDRESSES[0], tree.proof(0))


def test_a_changed_or_shortened_proof_fails():
    tree = register.RegisterTree.build(ADDRESSES[:6])
    proof = tree.proof(4)
    changed = [proof[0], bytes(32), proof[2]]
    assert (
        register.proof_error(tree.root, 6, 4, ADDRESSES[4], changed) == "the proof does not lead to the committed root"
    )  # noqa: E501
    assert "steps" in register.proof_error(tree.root, 6, 4, ADDRESSES[4], proof[:2])
    assert "32 bytes" in register.proof_error(tree.root, 6, 4, ADDRESSES[4], [proof[0][:31], *proof[1:]])


def test_an_empty_register_proves_nobody():
    tree = register.RegisterTree.build([])
    assert tree.root == bytes(32) and tree.size == 0
    assert register.proof_error(tree.root, 0, 0, ADDRESSES[0], []) is not None
    with pytest.raises(EncodingError):
        tree.proof(0)


def test_index_of_and_bad_input():
    tree = register.RegisterTree.build(ADDRESSES[:3])
    assert tree.index_of(ADDRESSES[2]) == 2
    with pytest.raises(ValueError):
        tree.index_of(ADDRESSES[5])
    with pytest.raises(EncodingError):
        register.leaf_hash(2**32, ADDRESSES[0])
    with pytest.raises(EncodingError):
        register.depth(-1)

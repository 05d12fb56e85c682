"""The committed register of a poll's stratum (docs/protocol.md §3.11): a positional Merkle tree
over the eligible residents' identity addresses, and the proof that one of them is in it.

Positional, not sorted-pair (OpenZeppelin's MerkleProof hashes each pair in sorted order, so a
proof does not say where its leaf stands): each leaf hashes its own index, the path's left/right
turns are the index's bits, and a verifier refuses `index >= size`. So one committed (root,
size) proves at most `size` distinct residents, whatever the city put in the tree, and the size
is a number an observer can hold against the district's population. keccak256 throughout, with
the leaf and the inner node told apart by their first byte (and their length).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._encoding import address_bytes
from ._keccak import keccak
from .errors import EncodingError

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
LEAF_VERSION = b"\x01"
EMPTY_LEAF = bytes(32)  # the hash of an index at or past `size`: no keccak preimage is known
MAX_SIZE = 2**32 - 1  # indices are uint32


def depth(size: int) -> int:
    """The tree's depth, and so every proof's length: the least d with 2^d >= size (0 for 0 or 1)."""
    if not 0 <= size <= MAX_SIZE:
        raise EncodingError(f"a register size is a uint32, not {size}")
    return max(size - 1, 0).bit_length()


def leaf_hash(index: int, resident: str | bytes) -> bytes:
    """keccak256(0x00 ‖ 0x01 ‖ uint32 index ‖ address): 26 bytes hashed."""
    if not 0 <= index <= MAX_SIZE:
        raise EncodingError(f"a register index is a uint32, not {index}")
    return keccak(LEAF_PREFIX + LEAF_VERSION + index.to_bytes(4, "big") + address_bytes(resident, "resident"))


def node_hash(left: bytes, right: bytes) -> bytes:
    """keccak256(0x01 ‖ left ‖ right): 65 bytes hashed."""
    return keccak(NODE_PREFIX + left + right)


def root_from_proof(index: int, resident: str | bytes, proof: Sequence[bytes]) -> bytes:
    """The root a proof leads to from (index, resident): bit i of `index` set means the path's
    node at level i is a right child (its sibling, proof[i], goes on the left)."""
    node = leaf_hash(index, resident)
    position = index
    for sibling in proof:
        if len(sibling) != 32:
            raise EncodingError("a proof step is 32 bytes")
        node = node_hash(sibling, node) if position & 1 else node_hash(node, sibling)
        position >>= 1
    return node


def proof_error(root: bytes, size: int, index: int, resident: str | bytes, proof: Sequence[bytes]) -> str | None:
    """Why (index, resident, proof) is not a member of the register (root, size); None if it is.
    The contract's rule, byte for byte (PollBook._inRegister)."""
    if not 0 <= index < size:
        return f"index {index} is not below the register size {size}"
    if len(proof) != depth(size):
        return f"the proof has {len(proof)} steps; a register of {size} needs {depth(size)}"
    try:
        found = root_from_proof(index, resident, proof)
    except EncodingError as exc:
        return str(exc)
    return None if found == root else "the proof does not lead to the committed root"


@dataclass(frozen=True)
class RegisterTree:
    """A stratum's register: its addresses in a fixed order (index = position), every level of
    the tree, and proofs. The API builds one per stratum at poll creation; the test driver too."""

    residents: tuple[bytes, ...]  # 20 raw bytes each
    levels: tuple[tuple[bytes, ...], ...]  # levels[0] the leaves (padded to 2^depth), last the root

    @classmethod
    def build(cls, residents: Sequence[str | bytes]) -> RegisterTree:
        raw = tuple(address_bytes(r, "resident") for r in residents)
        d = depth(len(raw))
        level = [leaf_hash(i, r) for i, r in enumerate(raw)] + [EMPTY_LEAF] * ((1 << d) - len(raw))
        levels = [tuple(level)]
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
            levels.append(tuple(level))
        return cls(raw, tuple(levels))

    @property
    def size(self) -> int:
        return len(self.residents)

    @property
    def root(self) -> bytes:
        """The committed root; 32 zero bytes for an empty register (nothing can be proven)."""
        return self.levels[-1][0] if self.residents else EMPTY_LEAF

    def proof(self, index: int) -> list[bytes]:
        """The siblings from leaf `index` up to the root, depth(size) of them."""
        if not 0 <= index < self.size:
            raise EncodingError(f"no resident at index {index} of a register of {self.size}")
        steps, position = [], index
        for level in self.levels[:-1]:
            steps.append(level[position ^ 1])
            position >>= 1
        return steps

    def index_of(self, resident: str | bytes) -> int:
        """The first index of `resident`; ValueError if it is not in the register."""
        return self.residents.index(address_bytes(resident, "resident"))

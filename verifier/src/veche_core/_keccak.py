"""keccak256, from the fastest vetted implementation installed.

safe-pysha3 (the C Keccak that eth-hash itself offers as a backend) is about 5x faster per call
than eth-hash's default pycryptodome backend; the verifier computes several hashes per ballot.
"""

from __future__ import annotations

try:
    from sha3 import keccak_256 as _keccak_256

    def keccak(data: bytes) -> bytes:
        digest: bytes = _keccak_256(data).digest()  # safe-pysha3 ships no type information
        return digest

except ImportError:  # pragma: no cover - only without safe-pysha3
    from eth_hash.auto import keccak as _eth_hash_keccak

    def keccak(data: bytes) -> bytes:
        return _eth_hash_keccak(data)

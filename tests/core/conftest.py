"""Shared fixtures for the protocol-core tests: vectors and one issuer key per session."""

from __future__ import annotations

import pytest

from veche_core import blind_rsa


@pytest.fixture(scope="session")
def issuer_key() -> blind_rsa.PrivateKey:
    """A 2048-bit RSABSSA-SHA384-PSS-Randomized issuer key (generation takes ~1 s)."""
    return blind_rsa.generate_private_key()


@pytest.fixture(scope="session")
def psszero_issuer_key(issuer_key) -> blind_rsa.PrivateKey:
    """The same RSA key bound to the PSSZERO-Randomized variant."""
    return blind_rsa.PrivateKey(
        issuer_key.n,
        issuer_key.e,
        issuer_key.d,
        issuer_key.p,
        issuer_key.q,
        blind_rsa.Variant.PSSZERO_RANDOMIZED,
    )


# Bounded property tests (the whole core suite runs in well under a minute), no example
# database left in the working tree.
from hypothesis import settings  # noqa: E402

settings.register_profile("veche-core", database=None, deadline=None, max_examples=50)
settings.load_profile("veche-core")

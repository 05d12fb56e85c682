"""The standalone verifier: `veche-verify` recomputes every poll from chain state alone."""

"""Veche protocol core: the one definition of every wire format and cryptographic step.

Imported by the verifier, the API, the node tooling and the resident client; it imports none
of them.
"""

"""Veche protocol core: the one definition of every wire format and cryptographic step.

Imported by the verifier, the API, the node tooling and the resident client; it imports none
of them. One module per concern (docs/protocol.md is the specification):

- `typed_data`  EIP-712 domains, type strings, digests, secp256k1 signing and recovery
- `blind_rsa`   RFC 9474 blind RSA signatures and the issuer key encodings
- `token`       the ballot-token message and the token credential
- `plaintext`   ballot plaintext v1 (version byte + option bitmap)
- `sealing`     libsodium sealed boxes to X25519 keys (ballots, trustee shares)
- `key_shares`  SLIP-39 k-of-n sharing of the election secret
- `ballot`      the on-chain ballot, its canonical encoding and hash
- `errors`      one root error and its subclasses
"""

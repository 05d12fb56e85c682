"""Veche protocol core: the one definition of every wire format and cryptographic step.

Imported by the verifier, the API, the node tooling, the resident client and the test driver; it
imports none of them (import-linter keeps it so). One module per concern (docs/protocol.md is the
specification, docs/architecture.md the map):

- `typed_data`  EIP-712 domains, type strings, digests, secp256k1 signing and recovery
- `blind_rsa`   RFC 9474 blind RSA signatures and the issuer key encodings
- `token`       the ballot-token message and the token credential
- `plaintext`   ballot plaintext v1 (version byte + option bitmap)
- `sealing`     libsodium sealed boxes to X25519 keys (ballots, trustee shares)
- `hpke`        ballot ciphertext v2: RFC 9180 HPKE to the trustees' joint P-256 key, its info
- `key_shares`  SLIP-39 k-of-n sharing of the election secret
- `dkg`         the v2 key ceremony: COCKTAIL-DKG over P-256, its payloads, complaints, release, rebuild
- `p256`        the P-256 group: encodings, OpenSSL for secret scalars, pycryptodome for public ones
- `xaes`        XAES-256-GCM, COCKTAIL(P-256)'s share encryption
- `ballot`      the on-chain ballot, its canonical encoding and hash
- `receipt`     the relay's signed receipt a resident keeps
- `dataset`     the anonymised dataset and the hash put on chain
- `register`    a stratum's committed register: the positional Merkle tree and its proofs
- `ceremony`    the v2 key ceremony's message kinds, complaint reasons, payload lengths, session id
- `calls`       call data of the contract functions called by raw bytes (selectors, encoders)
- `events`      the contract events: specs, topics, strict decoders, BallotRejection
- `abi`         strict ABI decoding of the types the events use; EIP-55 checksums
- `deployment`  the deployment file (chain id, contracts, start block)
- `rpc`         the JSON-RPC client (log ranges, retries, redacted URLs)
- `errors`      one root error and its subclasses
- `_encoding`, `_keccak`  private byte helpers and keccak256
"""

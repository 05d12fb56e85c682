"""Measure the protocol core on one core: ops/s per step and the verifier's ballots/s ceiling.

Usage: .venv/bin/python scripts/bench_core.py [--seconds 1.0] [--json OUT]

Each operation runs for about --seconds (after a short warm-up) in this one process; the
verifier's per-ballot cost is the sum of its steps (token signature verify + EIP-712 digest +
signer recovery + open + plaintext decode), reported as ballots/s for one core and for two.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable

import nacl.bindings
from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account

from veche_core import blind_rsa, hpke, plaintext, sealing, token
from veche_core.ballot import Ballot
from veche_core.typed_data import poll_book_domain, recover_signer_bytes

CHAIN_ID = 31337
POLL_BOOK = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
OPTION_COUNT, MAX_CHOICES = 8, 1
VERIFIER_STEPS = ("token signature verify", "ballot EIP-712 digest", "signer recovery", "open", "plaintext decode")
# A v2 ballot's: the same, opened with HPKE under its own info instead of a sealed box.
VERIFIER_STEPS_V2 = tuple("open v2 (HPKE P-256, with its info)" if s == "open" else s for s in VERIFIER_STEPS)


def measure(fn: Callable[[], object], seconds: float) -> float:
    """Operations per second of `fn` over about `seconds`."""
    for _ in range(3):
        fn()
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(16):
            fn()
        count += 16
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def run(seconds: float) -> dict:
    issuer = blind_rsa.generate_private_key(bits=2048)
    public = issuer.public_key
    election = sealing.generate_election_keypair()
    domain = poll_book_domain(CHAIN_ID, POLL_BOOK)
    account = Account.create()

    request = token.request_token(public, CHAIN_ID, POLL_BOOK, 1, 0, account.address)
    blind_sig = blind_rsa.blind_sign(issuer, request.blinded_msg)
    credential = token.finish_token(public, request, blind_sig)
    choice = plaintext.encode_choice([3], OPTION_COUNT, MAX_CHOICES)
    ciphertext = sealing.seal(election.public_key, choice)
    ballot = Ballot(1, account.address, 1, 0, ciphertext, credential).sign(account.key, domain)
    digest = ballot.digest(domain)
    opener = sealing.Opener(election.secret_key)  # as the verifier opens a poll's ballots
    token_verifier = token.TokenVerifier(public, CHAIN_ID, POLL_BOOK, 1, 0)  # as it checks a stratum's tokens
    token_address = bytes.fromhex(account.address[2:])  # as it reads them from the logs
    # v2 ballots (HPKE to the trustees' joint P-256 key): the verifier builds one Opener per poll too.
    secret_v2 = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value.to_bytes(32, "big")
    opener_v2 = hpke.Opener(secret_v2)
    info_v2 = hpke.ballot_info(CHAIN_ID, POLL_BOOK, 1, 0, token_address)
    ciphertext_v2 = hpke.seal_ballot(opener_v2.joint_key, info_v2, choice)
    # What each open spends most of its time on: one Diffie-Hellman with the ballot's ephemeral key.
    key_v2 = ec.derive_private_key(int.from_bytes(secret_v2, "big"), ec.SECP256R1())
    enc_v2 = ciphertext_v2[1 : 1 + hpke.ENC_LENGTH]
    enc_v1, x25519_secret = ciphertext[:32], nacl.bindings.randombytes(32)

    ops: dict[str, Callable[[], object]] = {
        "blind sign (RSA-2048, CRT + powmod_sec + check)": lambda: blind_rsa.blind_sign(issuer, request.blinded_msg),
        "finalize (unblind + verify)": lambda: blind_rsa.finalize(public, request.input_msg, blind_sig, request.inv),
        "token signature verify": lambda: token_verifier.verify(token_address, credential),
        "seal": lambda: sealing.seal(election.public_key, choice),
        "open": lambda: opener.open(ciphertext),
        "seal v2 (HPKE P-256)": lambda: hpke.seal_ballot(opener_v2.joint_key, info_v2, choice),
        "open v2 (HPKE P-256, with its info)": lambda: opener_v2.open(
            ciphertext_v2, hpke.ballot_info(CHAIN_ID, POLL_BOOK, 1, 0, token_address)
        ),
        "within open: X25519 (libsodium)": lambda: nacl.bindings.crypto_scalarmult(x25519_secret, enc_v1),
        "within open v2: P-256 ECDH (OpenSSL), enc decoded": lambda: key_v2.exchange(
            ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), enc_v2)
        ),
        "ballot EIP-712 digest": lambda: ballot.digest(domain),
        "signer recovery": lambda: recover_signer_bytes(digest, ballot.signature),
        "plaintext decode": lambda: plaintext.decode_choice(choice, OPTION_COUNT, MAX_CHOICES),
    }
    results = {name: measure(fn, seconds) for name, fn in ops.items()}
    per_ballot = sum(1.0 / results[name] for name in VERIFIER_STEPS)
    per_ballot_v2 = sum(1.0 / results[name] for name in VERIFIER_STEPS_V2)
    return {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "seconds_per_op": seconds,
        "ops_per_second": results,
        "verifier_seconds_per_ballot": per_ballot,
        "verifier_ballots_per_second_one_core": 1.0 / per_ballot,
        "verifier_ballots_per_second_two_cores": 2.0 / per_ballot,
        "verifier_seconds_per_ballot_v2": per_ballot_v2,
        "v2_over_v1_per_ballot": per_ballot_v2 / per_ballot,
    }


def markdown(report: dict) -> str:
    lines = ["| operation | ops/s (one core) | µs/op |", "| --- | ---: | ---: |"]
    for name, rate in report["ops_per_second"].items():
        marker = " *" if name in VERIFIER_STEPS else ""
        lines.append(f"| {name}{marker} | {rate:,.0f} | {1e6 / rate:,.1f} |")
    per_ballot = report["verifier_seconds_per_ballot"]
    lines += [
        f"| **verifier, per ballot** (sum of *) | **{1 / per_ballot:,.0f}** ballots/s | {per_ballot * 1e6:,.1f} |",
        f"| verifier ceiling, ×2 cores | {2 / per_ballot:,.0f} ballots/s | |",
        f"| **v2 verifier, per ballot** (v2 open for open) | **{1 / report['verifier_seconds_per_ballot_v2']:,.0f}** "
        f"ballots/s | {report['verifier_seconds_per_ballot_v2'] * 1e6:,.1f} |",
        f"| v2 ÷ v1 per-ballot cost (same run) | {report['v2_over_v1_per_ballot']:.2f}× | |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per operation")
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    args = parser.parse_args()
    report = run(args.seconds)
    print(markdown(report))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)
            out.write("\n")


if __name__ == "__main__":
    main()

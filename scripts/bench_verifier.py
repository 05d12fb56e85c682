"""Verifier benchmark: ballots fully verified per second for a large poll on a local anvil.

Builds a closed, published poll of N ballots (default 100,000) with the real protocol
cryptography, then times `veche-verify poll` end to end (a fresh process: reading and decoding the
logs, every check, every signature, every decryption) beside the ceiling measured in the same run:
the protocol-core primitive costs per ballot, summed, on one core, times the cores used.

    .venv/bin/python scripts/bench_verifier.py [--ballots N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from eth_utils import to_checksum_address

from veche_core import blind_rsa, plaintext, sealing, token
from veche_core.ballot import Ballot
from veche_core.typed_data import poll_book_domain
from veche_node.anvil import Anvil
from veche_node.simulation import City, call_arguments, new_token_key

sys.path.insert(0, str(Path(__file__).parent))
import bench_core  # noqa: E402  (a sibling script: the same primitive measurements)

OPTIONS, STRATA = 3, 4


def _prepare(args) -> list[tuple]:
    """Mint tokens and make signed ballots (a worker's share): the residents' side, untimed."""
    issuer_keys, chain_id, poll_book, poll_id, election_key, start, count = args
    domain = poll_book_domain(chain_id, poll_book)
    out = []
    for i in range(start, start + count):
        stratum = i % STRATA
        issuer = issuer_keys[stratum]
        private_key, address = new_token_key()
        request = token.request_token(issuer.public_key, chain_id, poll_book, poll_id, stratum, address)
        credential = token.finish_token(issuer.public_key, request, blind_rsa.blind_sign(issuer, request.blinded_msg))
        sealed = sealing.seal_ballot(election_key, plaintext.encode_choice([i % OPTIONS], OPTIONS, 1))
        out.append(Ballot(poll_id, address, 1, stratum, sealed, credential).sign(private_key, domain))
    return call_arguments(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ballots", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    issuer_keys = [blind_rsa.generate_private_key() for _ in range(STRATA)]

    with Anvil(gas_limit=100_000_000) as chain, tempfile.TemporaryDirectory() as tmp:
        city = City.deploy_on_dev_chain(chain.url)
        poll = city.create_poll(option_count=OPTIONS, strata=STRATA, issuer_keys=issuer_keys, duration=10**7, threshold=2)
        started = time.monotonic()
        per = (args.ballots + cores * 4 - 1) // (cores * 4)
        jobs = [
            (issuer_keys, city.deployment.chain_id, city.deployment.poll_book, poll.poll_id, poll.election_public_key, s, min(per, args.ballots - s))
            for s in range(0, args.ballots, per)
        ]
        with ProcessPoolExecutor(cores) as pool:
            prepared = [row for part in pool.map(_prepare, jobs) for row in part]
        print(f"prepared {len(prepared)} ballots in {time.monotonic() - started:.1f} s", file=sys.stderr)

        residents = [to_checksum_address(f"0x{0xBE00 + i:040x}") for i in range(args.ballots)]
        city.record_issuances(poll, [(i.to_bytes(32, "big"), i % STRATA) for i in range(args.ballots)])
        city.credit(poll, residents, poll.points)
        started = time.monotonic()
        for start in range(0, len(prepared), 500):
            city.relayer.transact(
                city.poll_book.functions.castBallots(poll.poll_id, prepared[start : start + 500]), gas=40_000_000
            )
        print(f"cast on anvil in {time.monotonic() - started:.1f} s", file=sys.stderr)
        city.advance_to(poll.closes_at)
        city.release_shares(poll)
        city.publish(poll)
        deployment = Path(tmp) / "deployment.json"
        city.deployment.save(deployment)

        verify = Path(sys.executable).with_name("veche-verify")
        started = time.monotonic()
        run = subprocess.run(
            [str(verify), "--rpc", chain.url, "--deployment", str(deployment), "--json", "poll", str(poll.poll_id)],
            capture_output=True, text=True, timeout=1800,
        )
        elapsed = time.monotonic() - started
        verdict = json.loads(run.stdout)
        if run.returncode != 0 or verdict["verdict"] != "PASS":
            print(run.stdout[-3000:], run.stderr[-3000:], file=sys.stderr)
            return 1

    core = bench_core.run(seconds=1.0)  # the primitive costs, measured in this same run
    per_ballot = core["verifier_seconds_per_ballot"]
    timings = {name: 1.0 / core["ops_per_second"][name] for name in bench_core.VERIFIER_STEPS}
    ceiling = cores / per_ballot
    achieved = args.ballots / elapsed
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {cores} cores, Python {platform.python_version()}",
        "ballots": args.ballots,
        "seconds": round(elapsed, 2),
        "ballots_per_second": round(achieved),
        "primitive_us_per_ballot": {name: round(t * 1e6, 1) for name, t in timings.items()},
        "ceiling_ballots_per_second": round(ceiling),
        "ceiling_over_achieved": round(ceiling / achieved, 2),
    }
    print("| measure | figure | ceiling (same run) | ceiling ÷ figure |")
    print("| --- | ---: | --- | ---: |")
    print(f"| verifier, {args.ballots:,} ballots (veche-verify poll, fresh process) | {achieved:,.0f} ballots/s "
          f"| ceiling {ceiling:,.0f}/s ({cores} cores × 1/{per_ballot * 1e6:.0f} µs) | {ceiling / achieved:.2f}× |")
    for name, t in timings.items():
        print(f"|   primitive: {name} | {t * 1e6:.1f} µs per ballot | | |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

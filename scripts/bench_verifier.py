"""Verifier benchmark: ballots fully verified per second for a large poll on a local anvil.

Builds a closed, published poll of N ballots (default 100,000) with the real protocol
cryptography (the ballots prepared in the background while the issuances and points go on
chain; each 500-item transaction in a block of its own), then times `veche-verify poll` end to
end (a fresh process: reading and decoding the logs, every check, every signature, every
decryption; the median of --runs runs) beside the ceiling measured in the same run: the
protocol-core primitive costs per ballot, summed, on one core, times the cores used. The setup's
phases are timed on stderr.

    .venv/bin/python scripts/bench_verifier.py [--ballots N] [--runs N] [--json OUT] [--transactions-per-block N]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

from veche_core import blind_rsa, hpke, plaintext, sealing, token
from veche_core.ballot import Ballot
from veche_core.typed_data import DigestSigner, poll_book_domain
from veche_node.anvil import Anvil
from veche_testkit.city import City, call_arguments, key_address, new_token_key, resident_key

sys.path.insert(0, str(Path(__file__).parent))
import bench_core  # noqa: E402  (a sibling script: the same primitive measurements)

OPTIONS, STRATA = 3, 4
JOB = 1_000  # ballots a preparation job; the cast takes the jobs' ballots in order as they are done


class Phases:
    """Wall-clock time of each setup phase, printed to stderr as each one ends."""

    def __init__(self) -> None:
        self._began = self._last = time.monotonic()

    def done(self, name: str) -> None:
        now = time.monotonic()
        print(f"  {name}: {now - self._last:.1f} s", file=sys.stderr, flush=True)
        self._last = now

    def total(self) -> float:
        return round(time.monotonic() - self._began, 1)


@functools.cache
def _issuer_keys(encoded: tuple[bytes, ...]) -> list[blind_rsa.PrivateKey]:
    """The issuer keys, decoded once a worker (the key objects do not pickle; decoding one takes
    ~80 ms of primality checks)."""
    return [blind_rsa.PrivateKey.decode(k) for k in encoded]


def _prepare(args) -> list[tuple]:
    """Mint tokens and make signed ballots (a worker's share): the residents' side, untimed."""
    encoded_keys, chain_id, poll_book, poll_id, election_key, version, start, count = args
    issuer_keys = _issuer_keys(encoded_keys)
    domain = poll_book_domain(chain_id, poll_book)
    out = []
    for i in range(start, start + count):
        stratum = i % STRATA
        issuer = issuer_keys[stratum]
        private_key, address = new_token_key()
        request = token.request_token(issuer.public_key, chain_id, poll_book, poll_id, stratum, address)
        credential = token.finish_token(issuer.public_key, request, blind_rsa.blind_sign(issuer, request.blinded_msg))
        choice = plaintext.encode_choice([i % OPTIONS], OPTIONS, 1)
        if version == 1:
            sealed = sealing.seal_ballot(election_key, choice)
        else:
            info = hpke.ballot_info(chain_id, poll_book, poll_id, stratum, address)
            sealed = hpke.seal_ballot(election_key, info, choice)
        unsigned = Ballot(poll_id, address, 1, stratum, sealed, credential)
        # Ballot.sign's bytes, without its eth-keys wrapping and recovery self-check (~0.2 ms)
        out.append(replace(unsigned, signature=DigestSigner(private_key).sign(unsigned.digest(domain))))
    return call_arguments(out)


class Preparation:
    """The ballots, prepared by a pool of low-priority workers while the chain phases run (anvil
    mines on one core; the workers take what it leaves), streamed in order to the cast."""

    def __init__(self, pool: ProcessPoolExecutor, jobs: list[tuple]) -> None:
        self.began = time.monotonic()
        self.finished = self.began
        self.waited = 0.0  # how long the cast waited for ballots not yet prepared
        self._futures = [pool.submit(_prepare, job) for job in jobs]
        for future in self._futures:
            future.add_done_callback(self._done)

    def _done(self, _future) -> None:
        self.finished = max(self.finished, time.monotonic())

    def ballots(self):
        for future in self._futures:
            started = time.monotonic()
            part = future.result()
            self.waited += time.monotonic() - started
            yield from part


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ballots", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--protocol", type=int, choices=(1, 2), default=1, help="1: a dealt key; 2: the trustees' ceremony, HPKE"
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="verifications timed; the figure is their median (default 3)"
    )
    parser.add_argument(
        "--transactions-per-block",
        type=int,
        default=1,
        help="mine the setup's 500-item transactions N to a block (default 1, each in its own block, as "
        "before): a faster setup on anvil, but the verifier splits its work by block ranges, so "
        "its figure is then not comparable with one-a-block runs",
    )
    parser.add_argument(
        "--hold",
        type=Path,
        metavar="DEPLOYMENT_FILE",
        help="after the run, write the deployment file here and keep anvil serving the poll until "
        "interrupted (to profile the verifier against the same chain again)",
    )
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    issuer_keys = [blind_rsa.generate_private_key() for _ in range(STRATA)]
    gas_limit = 100_000_000 if args.transactions_per_block == 1 else 1_000_000_000

    with (
        Anvil(gas_limit=gas_limit) as chain,
        tempfile.TemporaryDirectory() as tmp,
        ProcessPoolExecutor(cores, initializer=os.nice, initargs=(10,)) as pool,
    ):
        phases = Phases()
        city = City.deploy_on_dev_chain(chain.url)
        city.transactions_per_block = args.transactions_per_block
        # The register: one synthetic resident per ballot, resident i in stratum i % STRATA.
        resident_keys = [resident_key(i) for i in range(args.ballots)]
        residents = [key_address(k) for k in resident_keys]
        city.resident_keys.update(zip(residents, resident_keys))
        poll = city.create_poll(
            option_count=OPTIONS,
            strata=STRATA,
            issuer_keys=issuer_keys,
            duration=10**7,
            threshold=2,
            register=[residents[s::STRATA] for s in range(STRATA)],
            version=args.protocol,
        )
        phases.done("deploy and create poll")
        keys = tuple(k.encode() for k in issuer_keys)
        d = city.deployment
        jobs = [
            (
                keys,
                d.chain_id,
                d.poll_book,
                poll.poll_id,
                poll.election_public_key,
                args.protocol,
                s,
                min(JOB, args.ballots - s),
            )
            for s in range(0, args.ballots, JOB)
        ]
        preparation = Preparation(pool, jobs)

        records = [city.request_record(poll, r, i % STRATA, i.to_bytes(32, "big")) for i, r in enumerate(residents)]
        city.record_issuances(poll, records)
        phases.done("record issuances (each credits its resident)")
        city.cast_arguments(poll, preparation.ballots(), gas_per_ballot=80_000)
        phases.done(f"cast ballots (of which {preparation.waited:.1f} s waiting for their preparation)")
        print(
            f"  (prepare {args.ballots} ballots, in the background from the poll's creation on: "
            f"{preparation.finished - preparation.began:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
        city.advance_to(poll.closes_at)
        city.release_shares(poll)
        phases.done("close and release shares")
        city.publish(poll)
        phases.done("count and publish")
        print(f"setup total: {phases.total():.1f} s", file=sys.stderr, flush=True)
        deployment = Path(tmp) / "deployment.json"
        city.deployment.save(deployment)

        verify = Path(sys.executable).with_name("veche-verify")
        command = [
            str(verify),
            "--rpc",
            chain.url,
            "--deployment",
            str(deployment),
            "--json",
            "poll",
            str(poll.poll_id),
        ]
        times = []
        for _ in range(args.runs):  # this machine's speed drifts from minute to minute: the median of a few runs
            started = time.monotonic()
            run = subprocess.run(command, capture_output=True, text=True, timeout=1800)
            times.append(time.monotonic() - started)
            try:
                verdict = json.loads(run.stdout)
            except json.JSONDecodeError:
                verdict = {"verdict": None}
            if run.returncode != 0 or verdict["verdict"] != "PASS":
                print(run.stdout[-3000:], run.stderr[-3000:], file=sys.stderr)
                return 1
            print(f"  veche-verify poll: {times[-1]:.2f} s", file=sys.stderr, flush=True)
        elapsed = statistics.median(times)
        if args.hold:
            city.deployment.save(args.hold)
            print(
                f"holding: veche-verify --rpc {chain.url} --deployment {args.hold} poll {poll.poll_id}"
                " (Ctrl-C to stop)",
                file=sys.stderr,
                flush=True,
            )
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass

    core = bench_core.run(seconds=1.0)  # the primitive costs, measured in this same run
    v2 = args.protocol == 2
    per_ballot = core["verifier_seconds_per_ballot_v2" if v2 else "verifier_seconds_per_ballot"]
    steps = bench_core.VERIFIER_STEPS_V2 if v2 else bench_core.VERIFIER_STEPS
    timings = {name: 1.0 / core["ops_per_second"][name] for name in steps}
    ceiling = cores / per_ballot
    achieved = args.ballots / elapsed
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {cores} cores, Python {platform.python_version()}",
        "ballots": args.ballots,
        "protocol": args.protocol,
        "seconds": round(elapsed, 2),
        "runs_seconds": [round(t, 2) for t in times],
        "ballots_per_second": round(achieved),
        "primitive_us_per_ballot": {name: round(t * 1e6, 1) for name, t in timings.items()},
        "ceiling_ballots_per_second": round(ceiling),
        "ceiling_over_achieved": round(ceiling / achieved, 2),
    }
    print("| measure | figure | ceiling (same run) | ceiling ÷ figure |")
    print("| --- | ---: | --- | ---: |")
    runs = ", ".join(f"{t:.2f}" for t in times)
    print(
        f"| verifier, v{args.protocol} poll of {args.ballots:,} ballots (veche-verify poll, fresh process; "
        f"median of {runs} s) | "
        f"{achieved:,.0f} ballots/s "
        f"| ceiling {ceiling:,.0f}/s ({cores} cores × 1/{per_ballot * 1e6:.0f} µs) | {ceiling / achieved:.2f}× |"
    )
    for name, t in timings.items():
        print(f"|   primitive: {name} | {t * 1e6:.1f} µs per ballot | | |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

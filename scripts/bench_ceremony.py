"""Key-ceremony benchmark: a v2 poll's ceremony on anvil, and what verifying it adds.

On a local anvil with n trustees (default 7, threshold 4): the wall time of the whole ceremony
(every trustee registers its key, posts its round 1, runs round 2 and certifies; each message
signed and relayed to PollBook), then `veche-verify poll` (a fresh process, the median of --runs)
on that v2 poll and on a v1 poll of the same shape, both closed, released and published with
the same ballots: the difference is what checking the ceremony and the released shares costs.

    .venv/bin/python scripts/bench_ceremony.py [--members 7] [--threshold 4] [--ballots 20] [--runs 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from veche_node.anvil import Anvil
from veche_testkit.city import RESIDENTS, City


def _verify_seconds(chain_url: str, deployment: Path, poll_id: int, runs: int) -> list[float]:
    command = [str(Path(sys.executable).with_name("veche-verify")), "--rpc", chain_url]
    command += ["--deployment", str(deployment), "poll", str(poll_id)]
    times = []
    for _ in range(runs):
        started = time.monotonic()
        run = subprocess.run(command, capture_output=True, text=True, timeout=600)
        times.append(time.monotonic() - started)
        if run.returncode != 0:
            raise SystemExit(f"veche-verify poll {poll_id} exited {run.returncode}:\n{run.stdout[-2000:]}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=7)
    parser.add_argument("--threshold", type=int, default=4)
    parser.add_argument("--ballots", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    n, t = args.members, args.threshold
    with Anvil() as chain, tempfile.TemporaryDirectory() as tmp:
        city = City.deploy_on_dev_chain(chain.url, trustee_count=n)
        polls = {}
        ceremony_seconds = 0.0
        for version in (1, 2):
            started = time.monotonic()
            poll = city.create_poll(version=version, threshold=t, trustee_count=n, ceremony=False)
            if version == 2:
                assert not city.run_ceremony(poll)
                ceremony_seconds = time.monotonic() - started  # from createPoll to ElectionKeyCertified
                city.advance_to(poll.opens_at)
            city.issue_tokens(poll, [(r, i % 2) for i, r in enumerate(RESIDENTS[: args.ballots])])
            city.cast(poll, [city.ballot(poll, key, [i % 3]) for i, key in enumerate(poll.tokens)])
            polls[version] = poll
        for poll in polls.values():
            city.advance_to(poll.closes_at)
            city.release_shares(poll)
            city.publish(poll)
        deployment = Path(tmp) / "deployment.json"
        city.deployment.save(deployment)
        seconds = {v: _verify_seconds(chain.url, deployment, p.poll_id, args.runs) for v, p in polls.items()}
    v1, v2 = statistics.median(seconds[1]), statistics.median(seconds[2])
    print("| measure | figure | bound |")
    print("| --- | ---: | --- |")
    ceremony = f"ceremony, n = {n}, t = {t}, on anvil (registration to ElectionKeyCertified)"
    print(f"| {ceremony} | {ceremony_seconds:.1f} s | < 30 s |")
    print(f"| veche-verify poll, v1 poll of {args.ballots} ballots (median of {args.runs}) | {v1:.2f} s | |")
    print(f"| veche-verify poll, v2 poll of {args.ballots} ballots (median of {args.runs}) | {v2:.2f} s | |")
    print(f"| what checking the ceremony and the release adds (v2 − v1) | {v2 - v1:+.2f} s | < 1 s |")
    if args.json:
        figures = {"members": n, "threshold": t, "ceremony_seconds": round(ceremony_seconds, 2)}
        figures |= {"verify_v1_seconds": round(v1, 2), "verify_v2_seconds": round(v2, 2)}
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

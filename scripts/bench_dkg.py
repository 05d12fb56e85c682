"""Time the v2 key ceremony at n = 7, t = 4: one trustee's rounds, and the verifier's public check.

Usage: python scripts/bench_dkg.py [--members 7] [--threshold 4] [--runs 5]
Prints the median of `runs` timings per step (the target: the verifier's part under 1 s).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from veche_core import dkg
from veche_core.ceremony import ComplaintReason


def _median_ms(step: Callable[[], object], runs: int) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=7)
    parser.add_argument("--threshold", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    n, t, runs = args.members, args.threshold, args.runs

    members = [dkg.StaticKey.generate() for _ in range(n)]
    keys = [m.public_key for m in members]
    context = dkg.ceremony_context(31337, bytes(20), 1, 1, keys)
    payloads = [dkg.round1(context, t, keys, m, members[m - 1]).encode() for m in range(1, n + 1)]
    shares = [dkg.round2(context, t, keys, m, members[m - 1], payloads) for m in range(1, n + 1)]
    transcript = dkg.transcript(context, t, keys, dkg.decode_round1_payloads(payloads, t))
    certifications = [
        dkg.Certification(s.group_key, dkg.certify(members[s.member - 1], transcript)).encode() for s in shares
    ]
    released = {s.member: s.release_payload() for s in shares}
    group = shares[0].group_key

    def certify_step() -> bytes:
        t_bytes = dkg.transcript(context, t, keys, dkg.decode_round1_payloads(payloads, t))
        return dkg.Certification(group, dkg.certify(members[0], t_bytes)).encode()

    def verifier_step() -> None:
        check = dkg.check_ceremony(context, t, keys, payloads, certifications, group)
        assert check.ok, check.problems
        release = dkg.check_release(check.verification_shares, t, group, released)
        assert release.secret is not None and len(release.valid) == n

    fault = dkg.Fault(3, ComplaintReason.ShareVerification)
    evidence = dkg.make_complaint(context, t, keys, members[1], fault, payloads[2])

    figures = {
        "trustee round 1 (polynomial, PoP, n encrypted shares)": _median_ms(
            lambda: dkg.round1(context, t, keys, 1, members[0]), runs
        ),
        "trustee round 2 (n PoPs, n shares decrypted and checked)": _median_ms(
            lambda: dkg.round2(context, t, keys, 1, members[0], payloads), runs
        ),
        "trustee certification (transcript, signature)": _median_ms(certify_step, runs),
        "trustee complaint evidence (S^e, S^d, DLEQ proof)": _median_ms(
            lambda: dkg.make_complaint(context, t, keys, members[1], fault, payloads[2]),
            runs,
        ),
        "verifier: ceremony + release (all PoPs, signatures, Y, Y_m, n shares, rebuild)": _median_ms(
            verifier_step, runs
        ),
        "verifier: judge one complaint (reason 4, DLEQ + decryption)": _median_ms(
            lambda: dkg.judge_complaint(context, t, keys, 2, 3, 4, evidence, payloads[2]), runs
        ),
    }
    print(f"n = {n}, t = {t}, median of {runs} runs")
    for name, value in figures.items():
        print(f"  {value:8.1f} ms  {name}")


if __name__ == "__main__":
    main()

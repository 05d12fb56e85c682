"""`make bench`: run every benchmark and rewrite docs/benchmarks.md with what was measured.

Each benchmark is its own script printing a Markdown table; this runs them one after another
(never in parallel: they would measure each other) and records the machine, the date and the
command beside each table. A benchmark that cannot run here (geth not built) says so.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PYTHON = str(BIN / "python")

BENCHMARKS = [
    ("Protocol core: primitives on one core", [PYTHON, "scripts/bench_core.py"], None),
    ("Contracts: gas", [str(BIN / "ape"), "run", "gas_report"], None),
    ("Verifier: a 100,000-ballot poll on anvil", [PYTHON, "scripts/bench_verifier.py", "--ballots", "100000"], None),
    (
        "Verifier: a 100,000-ballot v2 poll on anvil (the trustees' key, HPKE ballots)",
        [PYTHON, "scripts/bench_verifier.py", "--ballots", "100000", "--protocol", "2"],
        None,
    ),
    ("Key ceremony: the trustees' cryptography, n = 7, t = 4", [PYTHON, "scripts/bench_dkg.py"], None),
    ("Key ceremony: on anvil, and what verifying it adds", [PYTHON, "scripts/bench_ceremony.py"], None),
    ("API: end to end on anvil", [PYTHON, "scripts/bench_api.py"], "scripts/bench_api.py"),
    (
        "Validator network: three geth Clique validators",
        [PYTHON, "scripts/bench_network.py"],
        "scripts/bench_network.py",
    ),
]


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    cores = len(os.sched_getaffinity(0))
    return (
        f"{model}, {cores} cores{memory}, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def main() -> int:
    sections = []
    failed = False
    for title, command, needs in BENCHMARKS:
        if needs and not (REPO / needs).exists():
            continue
        shown = " ".join(Path(part).name if i == 0 else part for i, part in enumerate(command))
        print(f"== {title}: {shown}", file=sys.stderr, flush=True)
        started = time.monotonic()
        run = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        seconds = time.monotonic() - started
        # Keep the figures; drop tool logging (ape prints every confirmed transaction).
        body = "\n".join(line for line in run.stdout.strip().splitlines() if not line.startswith(("INFO:", "WARNING:")))
        if run.returncode != 0:
            failed = True
            tail = (run.stderr or run.stdout).strip().splitlines()[-15:]
            body = "Did not complete (exit code {}):\n\n```\n{}\n```".format(run.returncode, "\n".join(tail))
        sections.append(f"## {title}\n\nCommand: `{shown}` ({seconds:.0f} s)\n\n{body}\n")
        print(body, file=sys.stderr)
    document = "\n".join(
        [
            "# Benchmarks",
            "",
            f"Written by `make bench` (scripts/bench.py) on {datetime.date.today().isoformat()}.",
            f"Machine: {machine()}.",
            "",
            "Every figure below was measured in that one run, on that machine; rerun `make bench` to",
            "replace them. Ceilings are measured in the same run as the figure they bound.",
            "",
            *sections,
        ]
    )
    (REPO / "docs" / "benchmarks.md").write_text(document)
    print("wrote docs/benchmarks.md", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

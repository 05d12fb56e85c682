"""The verifier installs alone: a fresh virtual environment gets `veche-verify` without the API,
ape, FastAPI, SQLModel or web3, and verifies a poll with it."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

from .conftest import close_and_publish

REPO = Path(__file__).resolve().parents[2]


def test_fresh_venv_installs_only_the_verifier_and_verifies(anvil, city, new_poll, tmp_path):
    env_dir = tmp_path / "observer"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-c", str(REPO / "constraints.txt"), str(REPO / "verifier")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-2000:]

    for absent in ("fastapi", "sqlmodel", "ape", "web3", "veche_api", "veche_node"):
        probe = subprocess.run([str(python), "-c", f"import {absent}"], capture_output=True, timeout=60)
        assert probe.returncode != 0, f"{absent} was installed with the verifier"

    verify = env_dir / "bin" / "veche-verify"
    assert subprocess.run([str(verify), "--help"], capture_output=True, timeout=60).returncode == 0

    poll = new_poll(voters=3)
    city.cast(poll, [city.ballot(poll, key, [2]) for key in poll.tokens])
    close_and_publish(city, poll)
    deployment = tmp_path / "deployment.json"
    city.deployment.save(deployment)
    run = subprocess.run(
        [str(verify), "--rpc", anvil.url, "--deployment", str(deployment), "poll", str(poll.poll_id)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"Poll {poll.poll_id}: PASS" in run.stdout

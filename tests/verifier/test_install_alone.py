"""The verifier installs alone: a fresh virtual environment gets `veche-verify` without the API,
ape, FastAPI, SQLModel or web3, and verifies a poll with it."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
import venv
from pathlib import Path

from .conftest import close_and_publish

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "verifier" / "requirements.lock"
# The observer's processes see none of this checkout's source trees (a PYTHONPATH would let the
# test import what the fresh environment lacks).
OBSERVER_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


def observer(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=OBSERVER_ENV)


def test_fresh_venv_installs_only_the_verifier_and_verifies(anvil, city, new_poll, tmp_path):
    env_dir = tmp_path / "observer"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # The README's install: every dependency (and the build backend) pinned and hash-checked by
    # the lock file, then the verifier itself with nothing more.
    for step in (
        ["--require-hashes", "-r", LOCK],
        ["--no-deps", "--no-build-isolation", REPO / "verifier"],
    ):
        install = observer(python, "-m", "pip", "install", "--quiet", *step, timeout=600)
        assert install.returncode == 0, install.stderr[-2000:]
    listed = json.loads(observer(python, "-m", "pip", "list", "--format=json").stdout)
    installed = {(p["name"].lower().replace("_", "-"), p["version"]) for p in listed} - {("pip", pip_version(listed))}
    locked = {tuple(line.split(" ")[0].split("==")) for line in LOCK.read_text().splitlines() if "==" in line}
    pyproject = tomllib.loads((REPO / "verifier" / "pyproject.toml").read_text())["project"]
    assert installed - locked == {("veche-verifier", pyproject["version"])}, "only what the lock pins, and the verifier"

    for absent in ("fastapi", "sqlmodel", "ape", "web3", "veche_api", "veche_node"):
        probe = observer(python, "-c", f"import {absent}")
        assert probe.returncode != 0, f"{absent} was installed with the verifier"

    verify = env_dir / "bin" / "veche-verify"
    assert observer(verify, "poll", "--help").returncode == 0

    poll = new_poll(voters=3)
    city.cast(poll, [city.ballot(poll, key, [2]) for key in poll.tokens])
    close_and_publish(city, poll)
    deployment = tmp_path / "deployment.json"
    city.deployment.save(deployment)
    run = observer(verify, "--rpc", anvil.url, "--deployment", deployment, "poll", str(poll.poll_id))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"Poll {poll.poll_id}: PASS" in run.stdout


def pip_version(listed: list[dict[str, str]]) -> str:
    return next(p["version"] for p in listed if p["name"] == "pip")

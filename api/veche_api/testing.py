"""A development environment for tests and benchmarks: anvil, the contracts deployed with one
dev account per role, encrypted keystores for the API's keys, Settings, and an API server
(in a thread, or as a uvicorn subprocess for crash tests)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from eth_account import Account
from web3 import Web3

from veche_core.deployment import Deployment
from veche_node.anvil import Anvil, free_port
from veche_node.contracts import Operators, Sender, deploy, dev_accounts

from .core.config import Settings
from .server import uvicorn_config

KEYSTORE_PASSWORD = "test-password"
ADMIN_KEY = "test-admin-key"
TEST_DISTRICTS = ["Central", "Northern", "Eastern"]


@dataclass
class ChainEnv:
    anvil: Anvil
    deployment: Deployment
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    def settings(self, **overrides) -> Settings:
        values = {k.removeprefix("VECHE_").lower(): v for k, v in self.env.items()}
        values["districts"] = TEST_DISTRICTS
        values.update(overrides)
        return Settings(**values)


def start_chain(workdir: Path, database_url: str, **anvil_kw) -> ChainEnv:
    workdir.mkdir(parents=True, exist_ok=True)
    anvil = Anvil(**anvil_kw).start()
    try:
        w3 = Web3(Web3.HTTPProvider(anvil.url))
        accounts = dev_accounts(6)
        deployer = Sender(w3, accounts[0])
        deployment = deploy(w3, deployer, Operators(
            admin=accounts[0].address, poll_admin=accounts[1].address, issuer=accounts[2].address,
            relayer=accounts[3].address, points_admin=accounts[4].address,
        ))
        deployment_file = workdir / "deployment.json"
        deployment.save(deployment_file)
        env = {
            "VECHE_DATABASE_URL": database_url,
            "VECHE_RPC_URL": anvil.url,
            "VECHE_DEPLOYMENT_FILE": str(deployment_file),
            "VECHE_KEYSTORE_PASSWORD": KEYSTORE_PASSWORD,
            "VECHE_SECRET_KEY": secrets.token_hex(32),
            "VECHE_ADMIN_API_KEY": ADMIN_KEY,
            "VECHE_DISTRICTS": ",".join(TEST_DISTRICTS),
            "VECHE_BATCH_INTERVAL": "0.2",
            "VECHE_CHAIN_TIME_TTL": "0",
            "VECHE_RESEND_AFTER": "3",
            "VECHE_SQLITE_SYNCHRONOUS": "NORMAL",
        }
        for name, index in (("ADMIN", 1), ("ISSUER", 2), ("RELAYER", 3), ("POINTS_ADMIN", 4)):
            path = workdir / f"{name.lower()}.json"
            # PBKDF2 with few rounds: a fast test keystore (production keystores use scrypt).
            path.write_text(json.dumps(Account.encrypt(accounts[index].key, KEYSTORE_PASSWORD, kdf="pbkdf2", iterations=1000)))
            env[f"VECHE_{name}_KEYSTORE"] = str(path)
        return ChainEnv(anvil, deployment, workdir, env)
    except BaseException:
        anvil.stop()
        raise


class ThreadServer:
    """uvicorn in a thread of this process (real HTTP on 127.0.0.1)."""

    def __init__(self, settings: Settings) -> None:
        from .main import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn_config(settings, create_app(settings), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 30.0) -> "ThreadServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


class ProcessServer:
    """`veche-api run` (as `python -m veche_api run`) as a subprocess, for kill -9 tests."""

    def __init__(self, env: dict[str, str], port: int | None = None, log_path: Path | None = None,
                 workers: int = 1) -> None:
        self.env = {**os.environ, **env}
        self.workers = workers
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0, *, node_up: bool = True) -> "ProcessServer":
        """Start and wait until /health answers: 200, or also 503 when the node is meant to be
        down (`node_up=False`)."""
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "veche_api", "run", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(self.workers)],
            env=self.env, stdout=out, stderr=out, start_new_session=True,
        )
        ready = (200,) if node_up else (200, 503)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code in ready:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("the API did not start")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

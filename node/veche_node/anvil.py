"""The embedded chain engine: one anvil process with real JSON-RPC on 127.0.0.1.

Used by `make demo`, `veche-node dev` and the tests. anvil comes from the npm registry
(@foundry-rs/anvil), installed into node_modules by `make install`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from .errors import NodeRpcError
from .ports import free_ports
from .rpc import rpc

REPO_ROOT = Path(__file__).resolve().parents[2]
# anvil's well-known development mnemonic: its accounts are funded and unlocked. Never for a
# real network; `veche-node init` makes keystores for those.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_CHAIN_ID = 31337


class AnvilError(RuntimeError):
    """anvil is missing, or did not start answering JSON-RPC in time."""


def anvil_binary() -> str:
    local = REPO_ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if not found:
        raise AnvilError("anvil not found: run `make install` (it comes from @foundry-rs/anvil)")
    return found


class Anvil:
    """A running anvil; a context manager that always stops what it started."""

    def __init__(
        self,
        port: int | None = None,
        *,
        block_time: float | None = None,
        gas_limit: int = 60_000_000,
        accounts: int = 10,
        chain_id: int = DEV_CHAIN_ID,
        state_path: Path | None = None,
    ) -> None:
        self.port = port or free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.chain_id = chain_id
        args = [
            anvil_binary(),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(chain_id),
            "--accounts",
            str(accounts),
            "--mnemonic",
            DEV_MNEMONIC,
            "--gas-limit",
            str(gas_limit),
            "--hardfork",
            "paris",
            "--silent",
        ]
        if block_time:
            args += ["--block-time", str(block_time)]
        if state_path:
            args += ["--state", str(state_path)]
        self._args = args
        self._process: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> Anvil:
        self._process = subprocess.Popen(
            self._args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                raise AnvilError(f"anvil exited with {self._process.returncode}: {err.strip()}")
            try:
                rpc(self.url, "eth_chainId", timeout=1.0)
                return self
            except NodeRpcError:
                time.sleep(0.05)
        self.stop()
        raise AnvilError(f"anvil did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        self._process = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # Time travel, for demos and tests of the poll window.
    def increase_time(self, seconds: int) -> None:
        rpc(self.url, "evm_increaseTime", [seconds])
        rpc(self.url, "evm_mine")

    def set_next_timestamp(self, timestamp: int) -> None:
        rpc(self.url, "evm_setNextBlockTimestamp", [timestamp])
        rpc(self.url, "evm_mine")

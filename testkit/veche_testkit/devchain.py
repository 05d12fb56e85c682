"""The development chain a test, the demo or a benchmark runs on: anvil with the contracts
deployed by anvil's dev accounts (0 admin, 1 poll admin, 2 issuer, 3 relayer, 4 points admin),
encrypted test keystores for the API's keys, the API's settings for that chain, and the
databases a test runs on (SQLite always; PostgreSQL when VECHE_TEST_DATABASE_URL names one the
tests may wipe)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from veche_api.core.config import Settings
from veche_core.deployment import Deployment
from veche_node.anvil import Anvil
from veche_node.contracts import deploy_with_dev_accounts
from veche_node.rpc import make_web3, rpc

KEYSTORE_PASSWORD = "test-password"
ADMIN_KEY = "test-admin-key"
TEST_DISTRICTS = ["Central", "Northern", "Eastern"]
# The API's keys on the dev chain: setting name -> dev account (start_chain's roles).
API_KEYS = {"ADMIN": 1, "ISSUER": 2, "RELAYER": 3, "POINTS_ADMIN": 4}

DATABASES = ["sqlite"] + (["postgresql"] if os.environ.get("VECHE_TEST_DATABASE_URL") else [])


def database_url(kind: str, workdir: Path) -> str:
    """A fresh database of `kind` ("sqlite" in `workdir`, or "postgresql" with its tables dropped)."""
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'veche.db'}"
    from sqlmodel import SQLModel

    from veche_api import models  # noqa: F401  (registers the tables)
    from veche_api.core.db import Database

    url = os.environ["VECHE_TEST_DATABASE_URL"]
    db = Database(url)
    SQLModel.metadata.drop_all(db.engine)
    db.dispose()
    return url


def write_test_keystore(path: Path, account: LocalAccount) -> Path:
    """`account` in a keystore under KEYSTORE_PASSWORD, with PBKDF2 of few rounds: it opens in
    milliseconds (production keystores use scrypt, a second or so each)."""
    path.write_text(json.dumps(Account.encrypt(account.key, KEYSTORE_PASSWORD, kdf="pbkdf2", iterations=1000)))
    return path


@dataclass
class ChainEnv:
    """A running dev chain and the API's environment for it (`VECHE_*` variables)."""

    anvil: Anvil
    deployment: Deployment
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    def settings(self, **overrides) -> Settings:
        values: dict[str, Any] = {k.removeprefix("VECHE_").lower(): v for k, v in self.env.items()}
        values["districts"] = TEST_DISTRICTS
        values.update(overrides)
        return Settings(**values)

    def now(self) -> int:
        """The chain's clock: the latest block's timestamp (ahead of the wall clock after time travel)."""
        return int(rpc(self.anvil.url, "eth_getBlockByNumber", ["latest", False])["timestamp"], 16)


def start_chain(workdir: Path, database_url: str, **anvil_kw) -> ChainEnv:
    """Start anvil (`anvil_kw` as `Anvil` takes them), deploy, write the deployment file and the
    API's keystores into `workdir`; the caller stops `.anvil`."""
    workdir.mkdir(parents=True, exist_ok=True)
    anvil = Anvil(**anvil_kw).start()
    try:
        deployment, accounts = deploy_with_dev_accounts(make_web3(anvil.url))
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
            # One stratum per district, as few residents as a test enrols: the tests of merging
            # (tests/api/test_strata.py) set their own threshold.
            "VECHE_MIN_STRATUM": "0",
        }
        for name, index in API_KEYS.items():
            path = write_test_keystore(workdir / f"{name.lower()}.json", accounts[index])
            env[f"VECHE_{name}_KEYSTORE"] = str(path)
        return ChainEnv(anvil, deployment, workdir, env)
    except BaseException:
        anvil.stop()
        raise

"""One `Settings` object, read from the environment (prefix `VECHE_`).

Secrets are `SecretStr` so that they never appear in a repr, a log line or a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ..schemas import clean_text
from .logs import LEVELS

# Moscow's twelve administrative okrugs: the default strata of a citywide poll.
MOSCOW_DISTRICTS = [
    "Central",
    "Northern",
    "North-Eastern",
    "Eastern",
    "South-Eastern",
    "Southern",
    "South-Western",
    "Western",
    "North-Western",
    "Zelenogradsky",
    "Novomoskovsky",
    "Troitsky",
]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VECHE_", extra="ignore", populate_by_name=True)

    # Storage: SQLite by default; PostgreSQL through VECHE_DATABASE_URL or DATABASE_URL.
    database_url: str = Field("sqlite:///veche.db", validation_alias=AliasChoices("VECHE_DATABASE_URL", "DATABASE_URL"))
    # SQLite `synchronous` pragma. FULL: a commit survives power loss; NORMAL (WAL): survives
    # a process crash (SIGKILL) but not power loss.
    sqlite_synchronous: str = "FULL"

    # Chain
    rpc_url: str = "http://127.0.0.1:8545"
    deployment_file: Path = Path("deployment.json")

    # Keys: Web3 Secret Storage keystores (one password for all, from the environment).
    relayer_keystore: Path = Path("keys/relayer.json")
    issuer_keystore: Path = Path("keys/issuer.json")
    admin_keystore: Path = Path("keys/poll-admin.json")
    points_admin_keystore: Path | None = None  # defaults to the poll-admin key
    keystore_password: SecretStr = SecretStr("")
    # 32 bytes, hex: seals the RSA issuer private keys in the database.
    secret_key: SecretStr = SecretStr("")
    admin_api_key: SecretStr = SecretStr("")

    # Comma-separated (or a JSON list) in the environment.
    districts: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(MOSCOW_DISTRICTS))
    rsa_bits: int = 2048

    # Relay
    relay_enabled: bool = True
    batch_size: int = 500
    # Encoded castBallots calldata per transaction: geth's pool refuses transactions over 128 KiB
    # (a 500-ballot batch is ~280 KB), so a batch is also cut by size.
    max_batch_bytes: int = 120_000
    # Gas limit of a ballot batch: 80,000 + ballot_gas per ballot + 24 per calldata byte (no
    # eth_estimateGas on the hot path; a batch that reverts is simulated before it is retried).
    # Measured (PollBook keeps no per-ballot state): ~4,600 a ballot beyond 24 per byte, ~24,200
    # in all for an 800-byte ballot; 7,500 leaves ~12% headroom on a 149-ballot batch.
    ballot_gas: int = 7_500
    batch_interval: float = 1.0  # seconds: the longest a ballot waits for a fuller batch
    # Unconfirmed transactions per sender before new batches wait: at 1,000 ballots/s, batches
    # of ~200 and one-second blocks, about five are mined per block and as many wait for the next.
    max_in_flight: int = 16
    resend_after: float = 10.0  # seconds before an unmined transaction is broadcast again
    # Seconds a sender's lowest unmined transaction waits before it is re-signed (same nonce and
    # calldata) at a 12.5% higher gas price: the node evicted it as underpriced or will not mine it.
    reprice_after: float = 30.0
    receipt_poll: float = 0.05
    # Seconds before quarantined relay work (relay/health.py) is tried again.
    quarantine_retry: float = 300.0
    chain_time_ttl: float = 0.5  # seconds a read block timestamp is reused

    # Serving (server.py; `veche-api run`)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    header_timeout: float = Field(10.0, gt=0)  # seconds for a request's head to arrive whole
    body_timeout: float = Field(30.0, gt=0)  # seconds for a request's body to arrive whole
    idle_timeout: float = Field(5.0, gt=0)  # seconds a kept-alive connection may sit idle
    max_connections: int = Field(4096, ge=1)  # beyond this, uvicorn answers 503 at once
    # Logging (core/logs.py): the level of the API's and uvicorn's loggers (other libraries stay
    # at WARNING): debug, info, warning, error or critical.
    log_level: str = "info"
    # Off by default. When on, a line is method, path (no query; long hex runs as `{hex}`),
    # HTTP version and status: never the client's address or port.
    access_log: bool = False

    # Threads for the synchronous routes (token issuance, admin, reads); see main.lifespan.
    sync_threads: int = 8

    # Abuse limits
    max_body_bytes: int = 16_384
    issuance_rate_per_minute: int = 10  # per resident
    ballot_rate_per_minute: int = 30  # per token (ballots are anonymous: the token is who casts)

    # Strata (strata.py): at poll creation a district with fewer eligible residents than this is
    # merged with a neighbour, and a poll whose whole audience is smaller is refused (409). A
    # ballot's stratum narrows its voter to the stratum's registered residents, of whom the points
    # ledger names the participants: at 100, a participation of 10% still leaves about 10 (the
    # page's former bar, in ballots), and Moscow's okrugs (hundreds of thousands each) never merge.
    # 0 turns merging off (one stratum per district, even an empty one): for tests only.
    min_stratum: int = Field(100, ge=0)

    # Protocol v2: the least time (seconds of chain time) between a poll's creation and its
    # opening, for its trustees' key ceremony (which ends at opensAt).
    ceremony_seconds: int = Field(600, ge=0)

    # Publishing counts with the verifier's code (tally.py): 1 reads and checks the ballots in the
    # request's thread; more in as many worker processes, started from a fork server.
    count_workers: int = Field(1, ge=1, le=64)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        """uvicorn's `trace` is refused: its lines carry each client's address and port."""
        if value.lower() not in LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(LEVELS)}")
        return value.lower()

    @field_validator("districts", mode="before")
    @classmethod
    def _split_districts(cls, value):
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                import json

                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("districts")
    @classmethod
    def _distinct_districts(cls, value: list[str]) -> list[str]:
        """Districts are text like any other (schemas.clean_text): NFC, so that a resident's
        NFD spelling of a district names it, and distinct once normalised."""
        value = [clean_text(name, max_length=100) for name in value]
        if not value or len(set(value)) != len(value):
            raise ValueError("districts must be a non-empty list of distinct names")
        return value

    def secrets(self) -> tuple[str, ...]:
        """Configured values that must never appear in a log line or an answer: the passwords
        and keys, and the passwords in the node's and the database's URLs (any URL's user-info
        is scrubbed anyway; see core/logs.py)."""
        found = [
            self.keystore_password.get_secret_value(),
            self.secret_key.get_secret_value(),
            self.admin_api_key.get_secret_value(),
        ]
        for url in (self.rpc_url, self.database_url):
            password = urlsplit(url).password or ""
            found += [password, unquote(password)]
        return tuple(s for s in found if s)

    @property
    def secret_key_bytes(self) -> bytes:
        raw = self.secret_key.get_secret_value()
        try:
            key = bytes.fromhex(raw.removeprefix("0x"))
        except ValueError:
            raise ValueError("VECHE_SECRET_KEY must be 32 bytes of hex") from None
        if len(key) != 32:
            raise ValueError("VECHE_SECRET_KEY must be 32 bytes of hex")
        return key

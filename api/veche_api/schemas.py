"""Request and response bodies (camelCase on the wire). Bytes travel as 0x-hex; every field
is bounded, so no input reaches the database or the crypto with a size it cannot take.

The schemas convert to the protocol core's types at the boundary (`veche_core.ballot.Ballot`,
`veche_core.receipt.Receipt`); they never encode protocol bytes themselves.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

MAX_INT = 2**31 - 1  # ids (polls, rewards, charities, requests): a 32-bit INTEGER column everywhere
MAX_SEQUENCE = 2**63 - 1  # a uint64 on chain, bounded by the signed BIGINT column here
MAX_TIME = 2**40

Address = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
Hash32 = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{64}$")]
Signature = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")]


def hex_bytes(max_bytes: int, min_bytes: int = 0):
    return Annotated[
        str,
        StringConstraints(
            pattern=r"^0x([0-9a-fA-F]{2})*$", min_length=2 + 2 * min_bytes, max_length=2 + 2 * max_bytes
        ),
    ]


def unhex(value: str) -> bytes:
    return bytes.fromhex(value[2:])


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


# --- residents -----------------------------------------------------------------------------


class ResidentBase(Model):
    address: Address
    district: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    birth_year: int = Field(ge=1880, le=2100)


class ResidentCreate(ResidentBase):
    pass


class ResidentPublic(Out):
    address: str
    district: str
    birth_year: int
    enrolled_at: int


class ImportRow(Out):
    line: int
    address: str | None = None
    error: str | None = None


class ImportReport(Out):
    imported: int
    unchanged: int = 0  # rows already enrolled exactly as in the file
    errors: list[ImportRow]


# --- polls ---------------------------------------------------------------------------------


class Audience(Model):
    """Who may vote: `districts` null means citywide; ages are inclusive, in whole years."""

    districts: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] | None = Field(
        default=None, min_length=1, max_length=64
    )
    min_age: int | None = Field(default=None, ge=0, le=150)
    max_age: int | None = Field(default=None, ge=0, le=150)


class Trustee(Model):
    address: Address
    public_key: hex_bytes(32, 32)  # X25519


class PollCreate(Model):
    question: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    options: list[Annotated[str, StringConstraints(min_length=1, max_length=500)]] = Field(
        min_length=2, max_length=255
    )
    max_choices: int = Field(default=1, ge=1, le=255)
    audience: Audience = Field(default_factory=Audience)
    opens_at: int = Field(ge=0, le=MAX_TIME)
    closes_at: int = Field(ge=0, le=MAX_TIME)
    points: int = Field(default=20, ge=0, le=1_000_000)
    trustees: list[Trustee] = Field(min_length=1, max_length=16)
    threshold: int = Field(ge=1, le=16)


class PollPublic(Out):
    id: int
    question: str
    options: list[str]
    max_choices: int
    audience: dict[str, Any]
    strata: list[str]
    opens_at: int
    closes_at: int
    points: int
    election_key: str
    issuer_keys: list[str]
    trustees: list[str]
    threshold: int
    metadata_hash: str
    chain_id: int
    poll_book: str
    status: str
    resident_stratum: int | None = None


class PollCreated(Out):
    poll: PollPublic
    sealed_shares: list[str]
    transaction_hash: str


# --- tokens --------------------------------------------------------------------------------


class IssuanceRequestIn(Model):
    resident: Address
    poll_id: int = Field(ge=1, le=MAX_INT)
    stratum: int = Field(ge=0, le=2**32 - 1)
    blinded_message: hex_bytes(512, 1)
    deadline: int = Field(ge=0, le=2**63 - 1)
    signature: Signature


class IssuanceOut(Out):
    poll_id: int
    stratum: int
    blind_signature: str


# --- ballots -------------------------------------------------------------------------------


class BallotIn(Model):
    """A ballot as `veche_core.ballot.Ballot`; `chainId` optional (rejected if not ours)."""

    poll_id: int = Field(ge=1, le=MAX_INT)
    token: Address
    sequence: int = Field(ge=1, le=MAX_SEQUENCE)
    stratum: int = Field(ge=0, le=2**32 - 1)
    ciphertext: hex_bytes(512, 1)
    token_signature: hex_bytes(1024, 1)
    signature: Signature
    chain_id: int | None = Field(default=None, ge=0, le=2**64)


class BallotStatus(Out):
    ballot_hash: str
    status: str
    reason: str | None = None
    receipt: dict[str, Any]


# --- key shares, points --------------------------------------------------------------------


class KeyShareIn(Model):
    index: int = Field(ge=0, le=255)
    share: hex_bytes(256, 1)
    signature: Signature


class RedemptionIn(Model):
    resident: Address
    reward_id: int = Field(ge=1, le=MAX_INT)
    nonce: int = Field(ge=0, le=MAX_INT)
    deadline: int = Field(ge=0, le=2**63 - 1)
    signature: Signature


class DonationIn(Model):
    resident: Address
    charity_id: int = Field(ge=1, le=MAX_INT)
    amount: int = Field(ge=1, le=2**62)
    nonce: int = Field(ge=0, le=MAX_INT)
    deadline: int = Field(ge=0, le=2**63 - 1)
    signature: Signature


class PointsRequestOut(Out):
    id: int
    kind: str
    resident: str
    status: str
    reason: str | None = None
    transaction_hash: str | None = None
    block_number: int | None = None


class RewardCreate(Model):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    price: int = Field(ge=1, le=2**62)
    stock: int = Field(ge=0, le=2**62)


class CharityCreate(Model):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    account: Address


class TallyOut(Out):
    poll_id: int
    counts: list[int]
    dataset_hash: str
    ballots_counted: int
    per_district: list[dict[str, Any]]
    transaction_hash: str | None = None

    @model_validator(mode="after")
    def _consistent(self):
        return self

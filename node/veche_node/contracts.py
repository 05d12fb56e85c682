"""Compiled contracts and their deployment, with web3 and locally held keys.

The ABI and bytecode come from ape's build manifest (`.build/__local__.json`, written by
`make compile`); transactions are signed locally with eth-account, so the same code deploys to
anvil and to a geth Clique network whose nodes hold no unlocked accounts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import Web3RPCError
from web3.types import TxParams

from veche_core.deployment import Deployment

from .anvil import DEV_MNEMONIC, REPO_ROOT

BUILD_MANIFEST = REPO_ROOT / ".build" / "__local__.json"


class ContractsNotBuiltError(RuntimeError):
    """The contracts have not been compiled: run `make compile`."""


@cache
def contract_type(name: str, manifest: Path = BUILD_MANIFEST) -> dict[str, Any]:
    """ABI and creation bytecode of a compiled contract."""
    if not manifest.exists():
        raise ContractsNotBuiltError(f"{manifest} is missing: run `make compile`")
    types = json.loads(manifest.read_text())["contractTypes"]
    if name not in types:
        raise ContractsNotBuiltError(f"{name} is not in {manifest}: run `make compile`")
    found = types[name]
    return {"abi": found["abi"], "bytecode": found["deploymentBytecode"]["bytecode"]}


def dev_accounts(count: int = 10) -> list[LocalAccount]:
    """anvil's funded development accounts (from its well-known mnemonic)."""
    Account.enable_unaudited_hdwallet_features()
    return [Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(count)]


class Sender:
    """Signs and sends transactions from one local key, keeping its own nonce."""

    def __init__(self, w3: Web3, account: LocalAccount) -> None:
        self.w3 = w3
        self.account = account
        self.address = account.address
        self._nonce: int = w3.eth.get_transaction_count(account.address, "pending")
        self._chain_id = w3.eth.chain_id

    def send(self, tx: dict[str, Any], *, wait: bool = True, gas: int | None = None):
        """Sign and send; if another writer used this key meanwhile, resync the nonce once."""
        try:
            tx_hash = self._sign_and_send(tx, gas)
        except Web3RPCError as exc:
            if "nonce" not in str(exc).lower():
                raise
            self._nonce = self.w3.eth.get_transaction_count(self.address, "pending")
            tx_hash = self._sign_and_send(tx, gas)
        if not wait:
            return tx_hash
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if receipt["status"] != 1:
            raise RuntimeError(f"transaction {tx_hash.hex()} reverted")
        return receipt

    def _sign_and_send(self, tx: dict[str, Any], gas: int | None):
        tx = {**tx, "from": self.address, "nonce": self._nonce, "chainId": self._chain_id}
        tx["gas"] = gas or int(self.w3.eth.estimate_gas(cast(TxParams, tx)) * 1.2)
        if "maxFeePerGas" not in tx:
            tx.setdefault("gasPrice", self.w3.eth.gas_price)
        tx_hash = self.w3.eth.send_raw_transaction(self.account.sign_transaction(tx).raw_transaction)
        self._nonce += 1
        return tx_hash

    @property
    def nonce(self) -> int:
        """The nonce this sender's next transaction will take."""
        return self._nonce

    def sync_nonce(self) -> None:
        """Take the nonce from the node again (after another writer may have used this key)."""
        self._nonce = self.w3.eth.get_transaction_count(self.address, "pending")

    def sign_call(self, to: str, data: bytes, *, gas: int, gas_price: int) -> tuple[bytes, bytes]:
        """Sign a call of `to` at the next nonce, which it takes: (raw transaction, its hash).
        For callers that send raw transactions themselves, many at a time; no estimate is run."""
        transaction: dict[str, Any] = {
            "to": to,
            "data": data,
            "value": 0,
            "gas": gas,
            "gasPrice": gas_price,
            "nonce": self._nonce,
            "chainId": self._chain_id,
        }
        signed = self.account.sign_transaction(transaction)
        self._nonce += 1
        return bytes(signed.raw_transaction), bytes(signed.hash)

    def transact(self, function, *, wait: bool = True, gas: int | None = None):
        """Send a contract function call, e.g. `sender.transact(poll_book.functions.x(1))`."""
        params = {"from": self.address, **({"gas": gas} if gas else {})}  # with gas: no estimate run
        return self.send(function.build_transaction(params), wait=wait, gas=gas)

    def deploy(self, name: str, *args) -> Contract:
        built = contract_type(name)
        factory = self.w3.eth.contract(abi=built["abi"], bytecode=built["bytecode"])
        receipt = self.send(factory.constructor(*args).build_transaction({"from": self.address}))
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=built["abi"])


def bind(w3: Web3, deployment: Deployment) -> tuple[Contract, Contract]:
    """The PollBook and CityPoints contracts of a deployment."""
    return (
        # (Deployment holds EIP-55 addresses, as web3 requires.)
        w3.eth.contract(address=cast(ChecksumAddress, deployment.poll_book), abi=contract_type("PollBook")["abi"]),
        w3.eth.contract(address=cast(ChecksumAddress, deployment.city_points), abi=contract_type("CityPoints")["abi"]),
    )


@dataclass(frozen=True)
class Operators:
    """Who holds each role after deployment (addresses)."""

    admin: str
    poll_admin: str
    issuer: str
    relayer: str
    points_admin: str


def deploy(w3: Web3, deployer: Sender, operators: Operators) -> Deployment:
    """Deploy both contracts, grant each role to its operator, and describe the result."""
    start_block = w3.eth.block_number + 1
    city_points = deployer.deploy("CityPoints", operators.admin)
    poll_book = deployer.deploy("PollBook", operators.admin, city_points.address)
    grants = [
        (poll_book, "POLL_ADMIN_ROLE", operators.poll_admin),
        (poll_book, "ISSUER_ROLE", operators.issuer),
        (poll_book, "RELAYER_ROLE", operators.relayer),
        # Points come in only with an issuance the PollBook records: no operator key credits.
        (city_points, "POLL_BOOK_ROLE", poll_book.address),
        (city_points, "POINTS_ADMIN_ROLE", operators.points_admin),
    ]
    if operators.admin == deployer.address:
        for contract, role, holder in grants:
            role_id = getattr(contract.functions, role)().call()
            deployer.transact(contract.functions.grantRole(role_id, holder))
    return Deployment(
        chain_id=w3.eth.chain_id,
        poll_book=poll_book.address,
        city_points=city_points.address,
        start_block=start_block,
    )


def deploy_with_dev_accounts(w3: Web3) -> tuple[Deployment, list[LocalAccount]]:
    """Deploy on anvil with its development accounts in the roles (0 admin, 1 poll admin,
    2 issuer, 3 relayer, 4 points admin), as `veche-node dev`, the demo and the tests do;
    returns the deployment and those five accounts, in that order."""
    accounts = dev_accounts(5)
    return deploy(w3, Sender(w3, accounts[0]), Operators(*(a.address for a in accounts))), accounts

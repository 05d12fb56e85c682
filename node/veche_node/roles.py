"""Rotating an operator key: grant the contracts' role to a new key, then revoke the old one.

The admin (DEFAULT_ADMIN_ROLE on both contracts) signs. The new key is made in the network's
keystore (the old keystore is kept under keystore/retired/ so past receipts stay checkable), is
funded from the admin for gas, and the manifest records the new holder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from eth_utils import is_address, to_checksum_address

from .contracts import Sender, bind
from .errors import NetworkConfigError
from .keys import create_keystore
from .network import Network, any_running_url
from .rpc import make_web3

# Which contract roles each operator role holds: (contract, role constant).
ROLE_GRANTS: dict[str, list[tuple[str, str]]] = {
    "relayer": [("poll_book", "RELAYER_ROLE")],
    "issuer": [("poll_book", "ISSUER_ROLE")],  # CityPoints credits only through the PollBook
    "poll_admin": [("poll_book", "POLL_ADMIN_ROLE")],
    "points_admin": [("city_points", "POINTS_ADMIN_ROLE")],
}
GAS_FUNDS_WEI = 1000 * 10**18


@dataclass(frozen=True)
class Rotation:
    role: str
    old: str
    new: str
    revoked: bool
    keystore: str | None  # the new key's keystore, if one was made here
    transactions: list[str]


def rotate_role(
    net: Network,
    deployment,
    role: str,
    *,
    to: str | None = None,
    revoke_old: bool = True,
    url: str | None = None,
    light_kdf: bool = False,
) -> Rotation:
    """Move `role` to `to` (an address whose key its holder keeps) or to a fresh keystore key."""
    if role not in ROLE_GRANTS:
        raise NetworkConfigError(f"cannot rotate {role!r}: one of {', '.join(ROLE_GRANTS)}")
    w3 = make_web3(url or any_running_url(net), timeout=60)
    admin = Sender(w3, net.operator_account("admin"))
    old = net.operators[role]
    keystore_path = None
    if to is None:
        retired = net.root / "keystore" / "retired"
        retired.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        current = net.operator_keystore(role)
        staged = current.with_name(f"{role}.new.json")
        account = create_keystore(staged, net.password(), light_kdf=light_kdf)
        new = account.address
    else:
        if not is_address(to):
            raise NetworkConfigError(f"not an address: {to}")
        new = to_checksum_address(to)
    if new == old:
        raise NetworkConfigError(f"{new} already holds {role}")

    poll_book, city_points = bind(w3, deployment)
    contracts = {"poll_book": poll_book, "city_points": city_points}
    hashes = []
    receipt = admin.send({"to": new, "value": GAS_FUNDS_WEI}, gas=21_000)
    hashes.append(receipt["transactionHash"].to_0x_hex())
    for contract_name, role_name in ROLE_GRANTS[role]:
        contract = contracts[contract_name]
        role_id = getattr(contract.functions, role_name)().call()
        receipt = admin.transact(contract.functions.grantRole(role_id, new))
        hashes.append(receipt["transactionHash"].to_0x_hex())
    if revoke_old:
        for contract_name, role_name in ROLE_GRANTS[role]:
            contract = contracts[contract_name]
            role_id = getattr(contract.functions, role_name)().call()
            receipt = admin.transact(contract.functions.revokeRole(role_id, old))
            hashes.append(receipt["transactionHash"].to_0x_hex())

    if to is None:
        current = net.operator_keystore(role)
        current.rename(retired / f"{role}-{old}-{stamp}.json")
        staged.rename(current)
        keystore_path = str(current)
    net.operators[role] = new
    net.save()
    return Rotation(role, old, new, revoke_old, keystore_path, hashes)

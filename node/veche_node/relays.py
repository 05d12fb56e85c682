"""The city's side of a partner's relay: register it on chain (PollBook.registerRelay grants it
RELAYER_ROLE and publishes its name and URL), fund its gas, remove it, list them.

The admin (the admin role of RELAYER_ROLE) signs. The partner keeps its key: it runs
`veche-relay init` and hands over the address (docs/operations.md, "Running a relay").
"""

from __future__ import annotations

from eth_utils import is_address, to_checksum_address

from veche_core.relays import Relay, in_listing_order, read_relays
from veche_core.rpc import RpcClient

from .contracts import Sender, bind
from .errors import NetworkConfigError
from .network import Network, any_running_url
from .roles import GAS_FUNDS_WEI
from .rpc import make_web3


def add_relay(net: Network, deployment, address: str, name: str, url: str, *, node_url: str | None = None) -> list[str]:
    """Fund `address` for gas and register it as a relay; the transactions' hashes."""
    if not is_address(address):
        raise NetworkConfigError(f"not an address: {address}")
    if not name or not url:
        raise NetworkConfigError("a relay needs a name (who runs it) and a URL (where it takes ballots)")
    address = to_checksum_address(address)
    w3 = make_web3(node_url or any_running_url(net), timeout=60)
    admin = Sender(w3, net.operator_account("admin"))
    poll_book, _ = bind(w3, deployment)
    funded = admin.send({"to": address, "value": GAS_FUNDS_WEI}, gas=21_000)
    registered = admin.transact(poll_book.functions.registerRelay(address, name, url))
    return [funded["transactionHash"].to_0x_hex(), registered["transactionHash"].to_0x_hex()]


def remove_relay(net: Network, deployment, address: str, *, node_url: str | None = None) -> str:
    """Revoke a relay's RELAYER_ROLE (its receipts of before stay valid: check 11 asks whether it
    held the role when it signed); the transaction's hash."""
    if not is_address(address):
        raise NetworkConfigError(f"not an address: {address}")
    w3 = make_web3(node_url or any_running_url(net), timeout=60)
    admin = Sender(w3, net.operator_account("admin"))
    poll_book, _ = bind(w3, deployment)
    role = poll_book.functions.RELAYER_ROLE().call()
    receipt = admin.transact(poll_book.functions.revokeRole(role, to_checksum_address(address)))
    return receipt["transactionHash"].to_0x_hex()


def list_relays(net: Network, deployment, *, node_url: str | None = None) -> list[Relay]:
    """Every key that holds or held RELAYER_ROLE, as the chain has them, active ones first."""
    with RpcClient(node_url or any_running_url(net)) as rpc:
        found = read_relays(rpc, deployment.poll_book, deployment.start_block, rpc.block_number())
    return in_listing_order(found)

"""A go-ethereum v1.13.15 Clique (proof-of-authority) network run by the city's IT.

One directory holds a whole network, described by its manifest `network.json`:

    DIR/network.json            chain id, period, gas limit, operators, every node and its ports
    DIR/genesis.json            the Clique genesis (validators in the extra data, funded operators)
    DIR/password.txt            the keystores' password (0600), as geth's --password reads it
    DIR/keystore/<role>.json    the operators' keys: admin, poll admin, issuer, relayer, points admin
    DIR/nodes/<name>/           one geth data directory per node:
        node.toml               geth's config (ports on 127.0.0.1, static peers, no discovery)
        keystore/UTC--...       a validator's signing key (geth's own keystore layout)
        geth/nodekey            the node's p2p identity (its enode)
        geth.log, geth.pid      the log and pid of the running process

Paths in the manifest are relative to DIR, so a network directory can be moved or restored from a
backup. Validators seal with `--mine --unlock`; observers only sync and serve RPC. Each node lists
the others as static peers in its config file (geth 1.13 reads static nodes from there, not from
static-nodes.json) and discovery is off, so a node only ever talks to the network's own nodes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from eth_keys import keys as eth_keys
from eth_utils import is_address, to_checksum_address

from .errors import NetworkConfigError, NodeProcessError, NodeRpcError
from .geth import geth_binary
from .keys import (
    create_keystore,
    geth_keystore_name,
    load_keystore,
    new_password,
    read_password,
    write_private,
)
from .ports import free_ports
from .rpc import make_web3, rpc

MANIFEST_NAME = "network.json"
MANIFEST_VERSION = 1
DEFAULT_CHAIN_ID = 7400
DEFAULT_PERIOD = 1
# A ballot costs ~24,000 gas: 60 M gas blocks hold ~2,500 ballots (in batches of at most ~160
# ballots: geth refuses transactions over 128 KiB).
DEFAULT_GAS_LIMIT = 60_000_000
CLIQUE_EPOCH = 30_000
# Operators pay for gas; 1,000,000 ether each on a private chain is effectively unlimited.
OPERATOR_FUNDS_WEI = 10**24
RPC_APIS = ("eth", "net", "web3", "clique", "admin", "txpool")
OPERATOR_ROLES = ("admin", "poll_admin", "issuer", "relayer", "points_admin")
VALIDATOR, OBSERVER = "validator", "observer"
# A Clique header's extra data: 32 vanity bytes, the signers (checkpoints only), a 65-byte seal.
EXTRA_VANITY, EXTRA_SEAL = 32, 65

T = TypeVar("T")


# --- the manifest ------------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


@dataclass
class NodeSpec:
    """One node of the network: its role, keys and loopback ports."""

    name: str
    role: str  # "validator" or "observer"
    data_dir: str  # relative to the network directory
    p2p_port: int
    http_port: int
    auth_port: int
    enode: str
    address: str | None = None  # a validator's signing (and etherbase) address

    @property
    def is_validator(self) -> bool:
        return self.role == VALIDATOR

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def signer(self) -> str:
        """A validator's signing address (every validator has one: `from_dict` checks it)."""
        if self.address is None:
            raise NetworkConfigError(f"validator {self.name} has no signing address")
        return self.address

    def to_dict(self) -> dict[str, Any]:
        return {_camel(k): v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> NodeSpec:
        try:
            spec = cls(**{_snake(k): v for k, v in raw.items()})
        except TypeError as exc:
            raise NetworkConfigError(f"malformed node entry {raw!r}: {exc}") from exc
        if spec.role not in (VALIDATOR, OBSERVER):
            raise NetworkConfigError(f"node {spec.name}: unknown role {spec.role!r}")
        if spec.is_validator and not (spec.address and is_address(spec.address)):
            raise NetworkConfigError(f"validator {spec.name} has no signing address")
        return spec


@dataclass
class Network:
    """A network directory and its manifest; `Network.load(dir)` reads one."""

    root: Path
    chain_id: int
    period: int
    gas_limit: int
    operators: dict[str, str]  # role -> address
    nodes: list[NodeSpec] = field(default_factory=list)
    extra_peers: list[str] = field(default_factory=list)  # enodes of nodes on other machines
    genesis_file: str = "genesis.json"
    password_file: str = "password.txt"

    # Paths ---------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    def path(self, relative: str) -> Path:
        return self.root / relative

    def node_dir(self, name: str) -> Path:
        return self.path(self.node(name).data_dir)

    def operator_keystore(self, role: str) -> Path:
        return self.root / "keystore" / f"{role}.json"

    # Lookups -------------------------------------------------------------------------------
    def node(self, name: str) -> NodeSpec:
        for spec in self.nodes:
            if spec.name == name:
                return spec
        raise NetworkConfigError(f"no node named {name!r} in {self.manifest_path} (nodes: {', '.join(self.names())})")

    def names(self, role: str | None = None) -> list[str]:
        return [n.name for n in self.nodes if role is None or n.role == role]

    def validators(self) -> list[NodeSpec]:
        return [n for n in self.nodes if n.is_validator]

    def observers(self) -> list[NodeSpec]:
        return [n for n in self.nodes if not n.is_validator]

    def password(self) -> str:
        return read_password(self.path(self.password_file))

    def operator_account(self, role: str):
        """The LocalAccount of an operator role, decrypted from its keystore."""
        if role not in self.operators:
            raise NetworkConfigError(f"unknown operator role {role!r}")
        account = load_keystore(self.operator_keystore(role), self.password())
        if account.address != self.operators[role]:
            raise NetworkConfigError(
                f"{self.operator_keystore(role)} holds {account.address}, the manifest says {self.operators[role]}"
            )
        return account

    # (De)serialisation ---------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(
            {
                "version": MANIFEST_VERSION,
                "chainId": self.chain_id,
                "period": self.period,
                "gasLimit": self.gas_limit,
                "genesis": self.genesis_file,
                "passwordFile": self.password_file,
                "operators": {_camel(k): v for k, v in self.operators.items()},
                "nodes": [n.to_dict() for n in self.nodes],
                "extraPeers": self.extra_peers,
            },
            indent=2,
        )

    def save(self) -> None:
        self.manifest_path.write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, root: Path | str) -> Network:
        root = Path(root).resolve()
        manifest = root / MANIFEST_NAME
        try:
            raw = json.loads(manifest.read_text())
        except FileNotFoundError:
            raise NetworkConfigError(
                f"{manifest} not found: create a network with `veche-node init --dir {root}`"
            ) from None
        except (OSError, ValueError) as exc:
            raise NetworkConfigError(f"cannot read {manifest}: {exc}") from exc
        if not isinstance(raw, dict) or raw.get("version") != MANIFEST_VERSION:
            raise NetworkConfigError(f"{manifest}: version must be {MANIFEST_VERSION}")
        try:
            return cls(
                root=root,
                chain_id=int(raw["chainId"]),
                period=int(raw["period"]),
                gas_limit=int(raw["gasLimit"]),
                operators={_snake(k): to_checksum_address(v) for k, v in raw["operators"].items()},
                nodes=[NodeSpec.from_dict(n) for n in raw["nodes"]],
                extra_peers=list(raw.get("extraPeers", [])),
                genesis_file=raw.get("genesis", "genesis.json"),
                password_file=raw.get("passwordFile", "password.txt"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, NetworkConfigError):
                raise
            raise NetworkConfigError(f"{manifest} is malformed: {exc!r}") from exc


# --- creating a network ------------------------------------------------------------------------


def clique_extra_data(signers: Iterable[str]) -> str:
    """Genesis extra data: 32 zero bytes ‖ the signers' addresses (sorted) ‖ 65 zero bytes."""
    ordered = sorted(bytes.fromhex(to_checksum_address(a)[2:]) for a in signers)
    return "0x" + (bytes(EXTRA_VANITY) + b"".join(ordered) + bytes(EXTRA_SEAL)).hex()


def clique_genesis(
    chain_id: int,
    signers: Iterable[str],
    funded: Iterable[str],
    *,
    period: int = DEFAULT_PERIOD,
    gas_limit: int = DEFAULT_GAS_LIMIT,
) -> dict[str, Any]:
    """A Clique genesis with every fork up to London at block 0.

    No Shanghai (nor later): geth 1.13 cannot seal Clique blocks past the merge forks, and the
    contracts are compiled for `paris`, which runs on a London-level EVM.
    """
    forks = [
        "homesteadBlock", "eip150Block", "eip155Block", "eip158Block", "byzantiumBlock",
        "constantinopleBlock", "petersburgBlock", "istanbulBlock", "muirGlacierBlock",
        "berlinBlock", "londonBlock", "arrowGlacierBlock", "grayGlacierBlock",
    ]  # fmt: skip
    return {
        "config": {
            "chainId": chain_id,
            **{fork: 0 for fork in forks},
            "clique": {"period": period, "epoch": CLIQUE_EPOCH},
        },
        "nonce": "0x0",
        "timestamp": hex(int(time.time())),
        "extraData": clique_extra_data(signers),
        "gasLimit": hex(gas_limit),
        "difficulty": "0x1",
        "mixHash": "0x" + "00" * 32,
        "coinbase": "0x" + "00" * 20,
        "alloc": {to_checksum_address(a)[2:].lower(): {"balance": hex(OPERATOR_FUNDS_WEI)} for a in funded},
        "number": "0x0",
        "gasUsed": "0x0",
        "parentHash": "0x" + "00" * 32,
    }


def _toml_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def node_config_toml(net: Network, spec: NodeSpec) -> str:
    """geth's config file for one node: loopback ports, static peers, no discovery, full sync."""
    peers = [n.enode for n in net.nodes if n.name != spec.name] + net.extra_peers
    return f"""# geth config for {spec.name} ({spec.role}) of a Veche network; written by veche-node.
# Regenerated when nodes are added: edit network.json, not this file.

[Eth]
NetworkId = {net.chain_id}
SyncMode = "full"

[Eth.Miner]
GasCeil = {net.gas_limit}

[Node]
IPCPath = ""
HTTPHost = "127.0.0.1"
HTTPPort = {spec.http_port}
HTTPVirtualHosts = ["localhost", "127.0.0.1"]
HTTPModules = {_toml_list(RPC_APIS)}
AuthAddr = "127.0.0.1"
AuthPort = {spec.auth_port}

[Node.P2P]
MaxPeers = 50
NoDiscovery = true
DiscoveryV4 = false
BootstrapNodes = []
BootstrapNodesV5 = []
ListenAddr = "127.0.0.1:{spec.p2p_port}"
StaticNodes = {_toml_list(peers)}
TrustedNodes = {_toml_list(peers)}
"""


def _run_geth(args: list[str], timeout: float = 120.0) -> str:
    try:
        done = subprocess.run([geth_binary(), *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise NodeProcessError(f"geth {' '.join(args)} did not finish in {timeout} s") from exc
    if done.returncode != 0:
        raise NodeProcessError(f"geth {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout + done.stderr


def _new_node(net: Network, name: str, role: str, *, light_kdf: bool, ports: list[int]) -> NodeSpec:
    """Make a node's data directory: p2p identity, and for a validator its signing key."""
    data_dir = f"nodes/{name}"
    path = net.path(data_dir)
    if path.exists():
        raise NetworkConfigError(f"{path} already exists")
    node_key = eth_keys.PrivateKey(os.urandom(32))
    write_private(path / "geth" / "nodekey", node_key.to_hex()[2:])
    p2p, http, auth = ports
    enode = f"enode://{node_key.public_key.to_hex()[2:]}@127.0.0.1:{p2p}"
    address = None
    if role == VALIDATOR:
        password = net.password()
        # geth's own name for the file, so that `geth account list` and `--unlock` find it.
        keystore = path / "keystore"
        account = create_keystore(keystore / "pending.json", password, light_kdf=light_kdf)
        (keystore / "pending.json").rename(keystore / geth_keystore_name(account.address))
        address = account.address
    return NodeSpec(name, role, data_dir, p2p, http, auth, enode, address)


def _geth_init(net: Network, spec: NodeSpec) -> None:
    _run_geth(["init", "--datadir", str(net.path(spec.data_dir)), str(net.path(net.genesis_file))])


def write_node_configs(net: Network) -> None:
    for spec in net.nodes:
        (net.path(spec.data_dir) / "node.toml").write_text(node_config_toml(net, spec))


def init_network(
    root: Path | str,
    *,
    validators: int = 3,
    observers: int = 1,
    chain_id: int = DEFAULT_CHAIN_ID,
    period: int = DEFAULT_PERIOD,
    gas_limit: int = DEFAULT_GAS_LIMIT,
    password_file: Path | None = None,
    light_kdf: bool = False,
) -> Network:
    """Create a network directory: keys, genesis, initialised data directories, manifest."""
    if validators < 1:
        raise NetworkConfigError("a network needs at least one validator")
    if gas_limit < 30_000_000:
        raise NetworkConfigError("the gas limit must be at least 30,000,000 (ballot batches)")
    root = Path(root).resolve()
    if (root / MANIFEST_NAME).exists():
        raise NetworkConfigError(f"{root / MANIFEST_NAME} already exists")
    root.mkdir(parents=True, exist_ok=True)
    password = read_password(password_file) if password_file else new_password()
    write_private(root / "password.txt", password + "\n")

    net = Network(root, chain_id, period, gas_limit, operators={})
    for role in OPERATOR_ROLES:
        account = create_keystore(net.operator_keystore(role), password, light_kdf=light_kdf)
        net.operators[role] = account.address

    names = [(f"validator-{i}", VALIDATOR) for i in range(1, validators + 1)]
    names += [(f"observer-{i}", OBSERVER) for i in range(1, observers + 1)]
    ports = free_ports(3 * len(names))
    for i, (name, role) in enumerate(names):
        net.nodes.append(_new_node(net, name, role, light_kdf=light_kdf, ports=ports[3 * i : 3 * i + 3]))

    genesis = clique_genesis(
        chain_id,
        [n.signer for n in net.validators()],
        net.operators.values(),
        period=period,
        gas_limit=gas_limit,
    )
    net.path(net.genesis_file).write_text(json.dumps(genesis, indent=2) + "\n")
    write_node_configs(net)
    for spec in net.nodes:
        _geth_init(net, spec)
    net.save()
    return net


def add_node(net: Network, name: str | None = None, *, role: str = VALIDATOR, light_kdf: bool = False) -> NodeSpec:
    """Add a node to an existing network (not yet a signer: validators vote it in).

    Every node's config lists the new one as a static peer, and running nodes are told at once
    (`admin_addPeer`), so the new node syncs as soon as it starts.
    """
    if role not in (VALIDATOR, OBSERVER):
        raise NetworkConfigError(f"unknown role {role!r}")
    if name is None:
        count = len(net.names(role)) + 1
        while f"{role}-{count}" in net.names():
            count += 1
        name = f"{role}-{count}"
    if name in net.names():
        raise NetworkConfigError(f"a node named {name!r} exists already")
    spec = _new_node(net, name, role, light_kdf=light_kdf, ports=free_ports(3))
    net.nodes.append(spec)
    _geth_init(net, spec)
    write_node_configs(net)
    net.save()
    for other in net.nodes:
        if other.name != name and node_pid(net, other.name):
            try:
                rpc(other.url, "admin_addPeer", [spec.enode], timeout=5)
            except NodeRpcError:
                pass  # it reads the peer from its config at the next start
    return spec


def add_peer(net: Network, enode: str) -> None:
    """Peer every local node with a node on another machine (e.g. a partner's validator)."""
    if not enode.startswith("enode://"):
        raise NetworkConfigError(f"not an enode URL: {enode}")
    if enode not in net.extra_peers:
        net.extra_peers.append(enode)
        write_node_configs(net)
        net.save()
    for spec in net.nodes:
        if node_pid(net, spec.name):
            rpc(spec.url, "admin_addPeer", [enode], timeout=5)


# --- JSON-RPC ----------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], T], *, timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll `predicate` until it returns something truthy; NodeProcessError after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except NodeRpcError as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise NodeProcessError(f"timed out after {timeout} s waiting for {what}{detail}")
        time.sleep(interval)


def block_number(url: str) -> int:
    return int(rpc(url, "eth_blockNumber"), 16)


def get_block(url: str, number: int | str = "latest") -> dict[str, Any]:
    tag = hex(number) if isinstance(number, int) else number
    block = rpc(url, "eth_getBlockByNumber", [tag, False])
    if block is None:
        raise NodeRpcError(f"block {number} not found at {url}")
    return block


def block_signer(url: str, number: int) -> str:
    """The validator that sealed block `number` (recovered by the node: clique_getSigner)."""
    return to_checksum_address(rpc(url, "clique_getSigner", [hex(number)]))


def signers(url: str) -> list[str]:
    return [to_checksum_address(a) for a in rpc(url, "clique_getSigners", ["latest"])]


# --- processes ---------------------------------------------------------------------------------

# geth processes started by this Python process, so that they are reaped (not left as zombies
# that still look alive) when they stop.
_children: dict[int, subprocess.Popen] = {}


def geth_command(net: Network, spec: NodeSpec) -> list[str]:
    data_dir = net.path(spec.data_dir)
    command = [
        geth_binary(),
        "--config", str(data_dir / "node.toml"),
        "--datadir", str(data_dir),
        "--networkid", str(net.chain_id),
        "--syncmode", "full",
        "--nodiscover",
        "--nat", "none",
        "--ipcdisable",
        "--miner.gaslimit", str(net.gas_limit),
        "--verbosity", "3",
    ]  # fmt: skip
    if spec.is_validator:
        command += [
            "--mine",
            "--miner.etherbase", spec.signer,
            "--unlock", spec.signer,
            "--password", str(net.path(net.password_file)),
            "--allow-insecure-unlock",  # unlock with HTTP on: RPC binds to 127.0.0.1 only
        ]  # fmt: skip
    return command


def _pid_file(net: Network, name: str) -> Path:
    return net.node_dir(name) / "geth.pid"


def _log_file(net: Network, name: str) -> Path:
    return net.node_dir(name) / "geth.log"


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not running
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def node_pid(net: Network, name: str) -> int | None:
    """The pid of the node's running geth, or None (a stale pid file is ignored)."""
    try:
        pid = int(_pid_file(net, name).read_text().strip())
    except (OSError, ValueError):
        return None
    if not _alive(pid):
        return None
    try:  # the pid may have been reused by another program since
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        if str(net.node_dir(name)) not in cmdline:
            return None
    except OSError:
        pass
    return pid


def log_tail(net: Network, name: str, lines: int = 20) -> str:
    try:
        return "\n".join(_log_file(net, name).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_node(net: Network, name: str, *, timeout: float = 60.0) -> int:
    """Start a node's geth in the background (its own process group); wait for its RPC."""
    spec = net.node(name)
    running = node_pid(net, name)
    if running:
        return running
    log = open(_log_file(net, name), "ab")
    try:
        process = subprocess.Popen(
            geth_command(net, spec),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=net.node_dir(name),
            start_new_session=True,
        )
    finally:
        log.close()
    _children[process.pid] = process
    _pid_file(net, name).write_text(f"{process.pid}\n")

    def answering() -> bool:
        if process.poll() is not None:
            raise NodeProcessError(f"{name}: geth exited with {process.returncode}:\n{log_tail(net, name)}")
        return int(rpc(spec.url, "eth_chainId", timeout=2), 16) == net.chain_id

    try:
        wait_until(answering, timeout=timeout, what=f"{name} to answer on {spec.url}")
    except NodeProcessError:
        stop_node(net, name)
        raise
    return process.pid


def stop_node(net: Network, name: str, *, timeout: float = 30.0) -> bool:
    """Stop a node (SIGTERM to its process group, SIGKILL after `timeout`); False if not running."""
    pid = node_pid(net, name)
    if pid is None:
        _pid_file(net, name).unlink(missing_ok=True)
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        _signal_group(pid, signal.SIGKILL)
        kill_deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < kill_deadline:
            time.sleep(0.1)
    child = _children.pop(pid, None)
    if child is not None:
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    _pid_file(net, name).unlink(missing_ok=True)
    return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # geth leads its own process group (start_new_session)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def start_all(net: Network, names: Iterable[str] | None = None, *, timeout: float = 60.0) -> None:
    for name in names or net.names():
        start_node(net, name, timeout=timeout)


def stop_all(net: Network, names: Iterable[str] | None = None, *, timeout: float = 30.0) -> None:
    """Stop every node given (default all), trying all of them even if one fails."""
    errors = []
    for name in names or net.names():
        try:
            stop_node(net, name, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 — keep stopping the others
            errors.append(f"{name}: {exc}")
    if errors:
        raise NodeProcessError("; ".join(errors))


# --- health and governance ---------------------------------------------------------------------


@dataclass
class NodeStatus:
    name: str
    role: str
    url: str
    running: bool
    pid: int | None = None
    height: int | None = None
    peers: int | None = None
    signers: list[str] | None = None
    signing: bool | None = None  # a validator whose address is among the signers
    last_block_age: float | None = None  # seconds since the head block's timestamp
    pending: int | None = None
    queued: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {_camel(k): v for k, v in asdict(self).items()}


def node_status(net: Network, name: str) -> NodeStatus:
    spec = net.node(name)
    pid = node_pid(net, name)
    status = NodeStatus(name, spec.role, spec.url, running=pid is not None, pid=pid)
    if pid is None:
        return status
    try:
        head = get_block(spec.url)
        status.height = int(head["number"], 16)
        status.last_block_age = round(time.time() - int(head["timestamp"], 16), 1)
        status.peers = int(rpc(spec.url, "net_peerCount"), 16)
        status.signers = signers(spec.url)
        if spec.is_validator:
            status.signing = spec.address in status.signers
        pool = rpc(spec.url, "txpool_status")
        status.pending, status.queued = int(pool["pending"], 16), int(pool["queued"], 16)
    except NodeRpcError as exc:
        status.error = str(exc)
    return status


def network_status(net: Network) -> list[NodeStatus]:
    return [node_status(net, name) for name in net.names()]


def propose(net: Network, address: str, *, authorize: bool) -> dict[str, str]:
    """Every running validator votes to add (authorize) or remove a signer: clique_propose.

    Clique counts a vote when its voter seals a block; more than half of the current signers
    must vote the same way. Returns, per validator, "voted" or why it did not.
    """
    if not is_address(address):
        raise NetworkConfigError(f"not an address: {address}")
    address = to_checksum_address(address)
    outcome = {}
    for spec in net.validators():
        if not node_pid(net, spec.name):
            outcome[spec.name] = "not running"
            continue
        try:
            rpc(spec.url, "clique_propose", [address, authorize])
            outcome[spec.name] = "voted"
        except NodeRpcError as exc:
            outcome[spec.name] = f"error: {exc}"
    return outcome


def discard(net: Network, address: str) -> None:
    """Withdraw this machine's validators' pending votes about `address` (clique_discard)."""
    for spec in net.validators():
        if node_pid(net, spec.name):
            rpc(spec.url, "clique_discard", [to_checksum_address(address)])


def any_running_url(net: Network, prefer: str = VALIDATOR) -> str:
    """The RPC of a running node, validators first (or observers first)."""
    ordered = sorted(net.nodes, key=lambda n: n.role != prefer)
    for spec in ordered:
        if node_pid(net, spec.name):
            return spec.url
    raise NodeProcessError(f"no node of {net.root} is running: `veche-node start --all`")


def deploy_contracts(net: Network, url: str | None = None):
    """Deploy PollBook and CityPoints through a node's RPC with the operators' keys."""
    from .contracts import Operators, Sender, deploy

    w3 = make_web3(url or any_running_url(net), timeout=60)
    admin = net.operator_account("admin")
    operators = Operators(**{role: net.operators[role] for role in OPERATOR_ROLES})
    return deploy(w3, Sender(w3, admin), operators)

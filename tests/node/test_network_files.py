"""What `veche-node init` writes: genesis, manifest, node configs, keystores; and the CLI surface."""

from __future__ import annotations

import json
import stat

import pytest
from click.testing import CliRunner
from eth_account import Account

from veche_node import geth
from veche_node.cli import main
from veche_node.errors import NetworkConfigError
from veche_node.keys import read_password
from veche_node.network import (
    OPERATOR_ROLES,
    Network,
    clique_extra_data,
    clique_genesis,
    init_network,
    node_config_toml,
)

SIGNERS = [
    "0x00000000000000000000000000000000000000b2",
    "0x00000000000000000000000000000000000000a1",
]


def test_extra_data_is_vanity_sorted_signers_and_an_empty_seal():
    extra = bytes.fromhex(clique_extra_data(SIGNERS)[2:])
    assert len(extra) == 32 + 2 * 20 + 65
    assert extra[:32] == bytes(32) and extra[-65:] == bytes(65)
    assert extra[32:52].hex().endswith("a1") and extra[52:72].hex().endswith("b2")


def test_genesis_has_london_at_zero_no_shanghai_and_room_for_ballot_batches():
    genesis = clique_genesis(7400, SIGNERS, ["0x" + "11" * 20], period=1, gas_limit=60_000_000)
    config = genesis["config"]
    assert config["chainId"] == 7400
    assert config["londonBlock"] == 0 and config["berlinBlock"] == 0
    assert not any(key.startswith(("shanghai", "cancun", "terminalTotal")) for key in config)
    assert config["clique"] == {"period": 1, "epoch": 30_000}
    assert int(genesis["gasLimit"], 16) >= 60_000_000
    assert int(genesis["alloc"]["11" * 20]["balance"], 16) > 10**21


def test_geth_binary_says_to_run_make_geth(monkeypatch, tmp_path):
    monkeypatch.delenv("VECHE_GETH", raising=False)
    monkeypatch.setattr(geth, "GETH_CACHE", tmp_path / "missing" / "geth")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(geth.GethNotFoundError, match="make geth") as info:
        geth.geth_binary()
    assert "Go" in str(info.value)
    monkeypatch.setenv("VECHE_GETH", str(tmp_path / "nope"))
    with pytest.raises(geth.GethNotFoundError, match="VECHE_GETH"):
        geth.geth_binary()


def test_the_cli_documents_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "start", "stop", "status", "propose", "deploy", "dev",
                    "add-node", "add-peer", "rotate-role", "logs"):  # fmt: skip
        assert command in result.output


def test_loading_a_missing_network_says_how_to_make_one(tmp_path):
    with pytest.raises(NetworkConfigError, match="veche-node init"):
        Network.load(tmp_path)
    result = CliRunner().invoke(main, ["status", "--dir", str(tmp_path)])
    assert result.exit_code == 1 and "veche-node init" in result.output


@pytest.mark.geth
def test_init_writes_a_complete_network_directory(tmp_path):
    root = tmp_path / "net"
    result = CliRunner().invoke(
        main, ["init", "--validators", "2", "--dir", str(root), "--chain-id", "4242", "--light-kdf"]
    )
    assert result.exit_code == 0, result.output
    net = Network.load(root)
    assert net.chain_id == 4242 and net.period == 1
    assert [n.name for n in net.nodes] == ["validator-1", "validator-2", "observer-1"]

    # Secrets are owner-only; keystores decrypt with the password file and match the manifest.
    password_file = root / "password.txt"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = read_password(password_file)
    assert set(net.operators) == set(OPERATOR_ROLES)
    assert net.operator_account("relayer").address == net.operators["relayer"]
    for spec in net.validators():
        (keyfile,) = (root / spec.data_dir / "keystore").iterdir()
        assert keyfile.name.startswith("UTC--") and keyfile.name.endswith(spec.address[2:].lower())
        assert Account.from_key(Account.decrypt(json.loads(keyfile.read_text()), password)).address == spec.address
    observer_keys = root / net.observers()[0].data_dir / "keystore"
    assert not observer_keys.exists() or not any(observer_keys.iterdir())

    # The genesis names exactly the validators as signers and funds the operators.
    genesis = json.loads((root / "genesis.json").read_text())
    assert genesis["extraData"] == clique_extra_data([n.address for n in net.validators()])
    assert {a.lower() for a in genesis["alloc"]} == {a[2:].lower() for a in net.operators.values()}

    # Each node: initialised by geth, its own ports on loopback, the others as static peers.
    ports = [p for n in net.nodes for p in (n.p2p_port, n.http_port, n.auth_port)]
    assert len(set(ports)) == len(ports)
    for spec in net.nodes:
        assert (root / spec.data_dir / "geth" / "chaindata").is_dir()
        config = (root / spec.data_dir / "node.toml").read_text()
        assert config == node_config_toml(net, spec)
        assert f'ListenAddr = "127.0.0.1:{spec.p2p_port}"' in config
        assert 'HTTPHost = "127.0.0.1"' in config and "NoDiscovery = true" in config
        others = [n.enode for n in net.nodes if n is not spec]
        assert all(enode in config for enode in others) and spec.enode not in config

    # A second init in the same place refuses to overwrite it.
    with pytest.raises(NetworkConfigError, match="already exists"):
        init_network(root, validators=1, light_kdf=True)

"""Nothing the operator keeps links a resident to a ballot (issue 16, item 7).

The API runs as an operator runs it (`veche-api run`, a process of its own, its relay inside)
with everything a curious operator can turn on: DEBUG and the access log. Residents enrol, list
their polls, get tokens, vote and revote through the SDK and through the `veche` CLI; then every
line the API and its relay wrote is searched for any form of any resident's identity address
and for a client's port (which joins the requests of one connection). The residents' traffic
goes through a TCP proxy that records which connection carried each request, to show that the
SDK and the CLI never send a token request and a ballot on the same connection, and that the API
closes a ballot's connection for a client that pools them (as a browser does).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from veche_api.core.config import Settings
from veche_api.core.logs import AccessFilter, configure_logging, publish_addresses, scrub
from veche_client.sdk import ResidentClient, ballot_body
from veche_core import sealing
from veche_node.ports import free_ports
from veche_testkit.devchain import ADMIN_KEY, start_chain
from veche_testkit.servers import LossyProxy, ProcessServer, wait_relay_drained
from veche_testkit.waiting import eventually

from .conftest import Api, database_url

VECHE = Path(sys.executable).parent / "veche"


class ConnectionProxy(LossyProxy):
    """A LossyProxy that notes, for every request, the client connection (its port) it came on."""

    def __init__(self, target_url: str) -> None:
        self._local = threading.local()
        self.connection_of: dict[int, int] = {}  # id(exchange) -> the client's port
        super().__init__(target_url)

    def _serve(self, client) -> None:
        self._local.port = client.getpeername()[1]
        super()._serve(client)

    def _record(self, exchange, **changes) -> None:
        self.connection_of.setdefault(id(exchange), self._local.port)
        super()._record(exchange, **changes)

    def connections(self, method: str, path: str) -> list[int]:
        return [self.connection_of[id(e)] for e in self.seen(method, path)]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("logs")
    env = start_chain(workdir, database_url("sqlite", workdir))
    try:
        yield env
    finally:
        env.anvil.stop()


def test_no_log_line_names_a_resident_or_a_client_port(chain, tmp_path):
    env = {
        **chain.env,
        "VECHE_LOG_LEVEL": "debug",
        "VECHE_ACCESS_LOG": "true",
        "VECHE_BATCH_INTERVAL": "0.1",
        "VECHE_DISTRICTS": "Central,Northern",
    }
    log_path = tmp_path / "api.log"
    server = ProcessServer(env, log_path=log_path).start(timeout=60)
    proxy = ConnectionProxy(server.url)
    residents: list[str] = []
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            trustees = [(Account.create(), sealing.generate_trustee_keypair()) for _ in range(2)]
            api = Api(chain, server, http, {"X-Admin-Key": ADMIN_KEY}, trustees)
            with httpx.Client(base_url=proxy.url, timeout=60) as through_proxy:
                sdk = [ResidentClient(through_proxy) for _ in range(3)]
                for client, district in zip(sdk, ("Central", "Central", "Northern")):
                    enrol(http, client.address, district)
                cli_identity = Account.create()
                enrol(http, cli_identity.address, "Northern")
                poll = api.create_poll(opens_in=3, lasts=3600, trustees=2, threshold=2)  # its register: all enrolled
                residents = [c.address for c in sdk] + [cli_identity.address]
                refused = through_proxy.get("/polls", params={"resident": residents[0]})
                assert refused.status_code == 400 and refused.json()["error"]["code"] == "poll.resident_in_url"
                assert "POST /polls/eligible" in refused.json()["error"]["message"]

                tokens = []
                for client in sdk:
                    [listed] = [p for p in client.polls() if p["id"] == poll["id"]]
                    tokens.append(client.get_token(listed))
                api.advance(4)
                for client, token in zip(sdk, tokens):
                    first = client.submit(ResidentClient.make_ballot(token, [0]))
                    client.submit(ResidentClient.make_ballot(token, [1]))  # a revote
                    client.ballot_status(first["ballotHash"])
                    client.points()
                # A pooled client, as a browser is: the API closes a ballot's connection, so the
                # request that follows (one naming the resident) goes on a new one.
                pooled = through_proxy.post("/ballots", json=ballot_body(ResidentClient.make_ballot(tokens[0], [2])))
                assert pooled.status_code == 202, pooled.text
                sdk[0].polls()
                ballot_connection = proxy.connections("POST", "/ballots")[-1]
                assert proxy.connections("POST", "/polls/eligible")[-1] != ballot_connection

                home = tmp_path / "wallet"
                veche(proxy.url, home, "key", "import", cli_identity.key.hex())
                assert f"Poll {poll['id']}" in veche(proxy.url, home, "polls")
                veche(proxy.url, home, "vote", str(poll["id"]), "1", "--max-delay", "0")
                veche(proxy.url, home, "vote", str(poll["id"]), "2", "--max-delay", "0")
            wait_relay_drained(http)
            ports = {server.port, chain.anvil.port, proxy.port}
    finally:
        proxy.close()
        server.stop()

    lines = log_path.read_text(errors="replace").splitlines()
    for address in residents:
        needle = address.lower().removeprefix("0x")
        leaking = [line for line in lines if needle in line.lower()]
        assert not leaking, f"{address} is in the log: {leaking[:3]}"
    client_ports = [
        line for line in lines for port in re.findall(r"127\.0\.0\.1\W{1,3}(\d+)", line) if int(port) not in ports
    ]
    assert not client_ports, client_ports[:3]

    # The log is the one an operator would keep: DEBUG lines, the access log, the relay's lines.
    assert any("DEBUG" in line for line in lines), lines[:20]
    assert any('"POST /ballots HTTP/1.1" 202' in line for line in lines), lines[:20]
    assert any('"POST /tokens HTTP/1.1" 201' in line for line in lines), lines[:20]
    assert any("veche API ready" in line for line in lines), lines[:20]

    # Separate connections: no token request shares its connection with a ballot.
    token_connections = proxy.connections("POST", "/tokens")
    ballot_connections = proxy.connections("POST", "/ballots")
    assert len(token_connections) == 4 and len(ballot_connections) == 9
    assert not set(token_connections) & set(ballot_connections), (token_connections, ballot_connections)


def test_uvicorn_factory_gets_the_projects_logging(chain, tmp_path):
    """`uvicorn --factory veche_api.main:create_app`, uvicorn's own way to run an app (its
    access log on by default, in its own format with the client's port): the app configures
    logging as `veche-api run` does. The API's INFO lines are there, the access log is off."""
    port = free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "uvicorn.log"
    command = [sys.executable, "-m", "uvicorn", "--factory", "veche_api.main:create_app", "--port", str(port)]
    with open(log_path, "ab") as out:
        process = subprocess.Popen(command, env={**os.environ, **chain.env}, stdout=out, stderr=out)
    address = Account.create().address
    try:
        eventually(
            lambda: httpx.get(url + "/health", timeout=1).status_code == 200,
            60,
            ignoring=(httpx.HTTPError,),
            what="uvicorn to serve the API",
        )
        assert httpx.get(f"{url}/points/{address}").status_code == 200
        assert httpx.get(f"{url}/polls", params={"resident": address}).status_code == 400
    finally:
        process.terminate()
        process.wait(20)
    text = log_path.read_text(errors="replace")
    assert "veche API ready" in text and "Application startup complete" in text, text[-2000:]
    assert "GET /" not in text, text[-2000:]
    assert address.lower()[2:] not in text.lower()
    assert not re.search(rf"127\.0\.0\.1\W{{1,3}}(?!{port}\b)\d+", text), text[-2000:]


def test_an_access_line_keeps_no_address_port_or_query():
    """The access filter on uvicorn's record, and the scrub of every message: a resident's
    address in a path or a message is gone; the operator's own published addresses stay."""
    resident, relayer = Account.create().address, Account.create().address
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:51234", "GET", f"/points/{resident}?include_closed=true&resident={resident}", "1.1", 200),
        None,
    )  # fmt: skip
    assert AccessFilter().filter(record)
    assert record.getMessage() == '"GET /points/{hex} HTTP/1.1" 200'
    publish_addresses(relayer)
    line = scrub(f"duplicate key ({resident.lower()}, 1); relayer {relayer}; tx 0x{'ab' * 32}")
    assert line == f"duplicate key (0x{{address}}, 1); relayer {relayer}; tx 0x{'ab' * 32}"
    with pytest.raises(ValueError, match="log_level must be one of"):
        Settings(log_level="trace")


def enrol(http: httpx.Client, address: str, district: str) -> None:
    reply = http.post(
        "/admin/residents",
        headers={"X-Admin-Key": ADMIN_KEY},
        json={"address": address, "district": district, "birthYear": 1980},
    )
    assert reply.status_code == 201, reply.text


def veche(api_url: str, home: Path, *args: str) -> str:
    """The `veche` CLI as a resident runs it; its output."""
    env = {**os.environ, "VECHE_PASSWORD": "correct horse", "VECHE_KEYSTORE_SCRYPT_N": "1024", "COLUMNS": "200"}
    command = [str(VECHE), "--api", api_url, "--home", str(home), *args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_levels_by_default_and_at_debug():
    """By default the relay's `repriced` (WARNING) and the API's INFO lines reach the handler;
    at DEBUG the API's own DEBUG lines do, and no library's below WARNING (web3's quote RPC
    answers); the access log has no handler unless it is turned on."""
    try:
        configure_logging(Settings())
        relay, access = logging.getLogger("veche_api.relay"), logging.getLogger("uvicorn.access")
        assert relay.isEnabledFor(logging.INFO) and not relay.isEnabledFor(logging.DEBUG)
        assert [h.get_name() for h in logging.getLogger().handlers].count("veche") == 1
        assert not access.hasHandlers()
        configure_logging(Settings(log_level="DEBUG", access_log=True))
        assert relay.isEnabledFor(logging.DEBUG) and access.hasHandlers()
        [ours] = [h for h in logging.getLogger().handlers if h.get_name() == "veche"]
        line = "Making request HTTP. URI: http://127.0.0.1:8545, Method: eth_getLogs"
        for name, level, shown in [
            ("web3.providers.HTTPProvider", logging.DEBUG, False),  # web3 sets that logger to INFO
            ("web3.providers.HTTPProvider", logging.INFO, False),
            ("web3.providers.HTTPProvider", logging.WARNING, True),
            ("veche_api.relay", logging.DEBUG, True),
        ]:
            assert bool(ours.filter(logging.LogRecord(name, level, __file__, 1, line, None, None))) is shown
    finally:
        configure_logging(Settings())

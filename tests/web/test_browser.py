"""The web pages in a real browser (Debian's chromium, headless, driven by playwright-core from
tests/web/browser_flow.mjs) against the real API on anvil.

A resident creates a key in the resident's page, the city enrols its address, the resident votes
(the answer to its token request lost once: the page asks again with the same request), revotes,
keeps both receipts, earns points and spends them; a second resident votes with the Python client
in the same poll. After close the trustees release their shares, the city
publishes, and the results page must show the counts that `veche-verify` recomputes from the
chain; its receipt checker confirms the ballot by short code and by receipt file. Screenshots of
both pages at phone and desktop widths land in test-artifacts/web/.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from veche_client.sdk import ResidentClient
from veche_core import key_shares, sealing
from veche_testkit.devchain import ADMIN_KEY, start_chain
from veche_testkit.servers import ThreadServer, wait_relay_drained

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
BIN = Path(sys.executable).parent
ADMIN = {"X-Admin-Key": ADMIN_KEY}
ARTIFACTS = ROOT / "test-artifacts" / "web"
PASSWORD = "a long browser password"


@pytest.fixture(scope="module", autouse=True)
def chromium() -> None:
    """No browser is a failure, not a skip: `make test` installs it (`make browser`)."""
    assert CHROMIUM.exists(), f"the browser tests need {CHROMIUM}: run `make browser`"


def build_pages() -> None:
    """The same build as `make web` (esbuild, about a second)."""
    subprocess.run(["node", str(ROOT / "web" / "build.mjs")], cwd=ROOT, check=True, timeout=120,
                   capture_output=True, text=True)


class Browser:
    """browser_flow.mjs as a child process (`config` its JSON argument; `"v2": True` for its v2
    vote); JSON lines both ways, every wait bounded."""

    def __init__(self, config: dict, log_path: Path) -> None:
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(
            ["node", str(Path(__file__).with_name("browser_flow.mjs")), json.dumps(config)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1,
            start_new_session=True,
        )
        self.events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.events.put(json.loads(line))
        self.events.put({"event": "exit"})

    def expect(self, name: str, timeout: float = 120) -> dict:
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the browser sent no {name!r} within {timeout} s (see {self.log.name})") from None
        assert event["event"] == name, f"expected {name!r}, got {event} (see {self.log.name})"
        return event

    def reply(self, **message) -> None:
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        """Closing stdin ends the script (it closes the browser); then SIGTERM (Playwright closes
        the browser on it), then SIGKILL."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        for sig, wait in ((None, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            if sig is not None and self.process.poll() is None:
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.log.close()


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    build_pages()
    workdir = tmp_path_factory.mktemp("web")
    chain = start_chain(workdir, f"sqlite:///{workdir / 'veche.db'}")
    server = None
    try:
        # A stratum needs 3 eligible residents here: Eastern (1) merges with Northern (2).
        server = ThreadServer(chain.settings(min_stratum=3)).start()
        with httpx.Client(base_url=server.url, timeout=60) as http:
            yield chain, server, http
    finally:
        if server is not None:
            server.stop()
        chain.anvil.stop()


def verify(chain, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    deployment = workdir / "deployment.json"
    chain.deployment.save(deployment)
    return subprocess.run([str(BIN / "veche-verify"), "--rpc", chain.anvil.url, "--deployment", str(deployment), *args],
                          capture_output=True, text=True, timeout=120)


def test_pages_are_served(city):
    _, _, http = city
    for path in ("/", "/results"):
        page = http.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
    assert http.get("/assets/resident.js").headers["content-type"].startswith("text/javascript")
    assert http.get("/assets/..%2Fresults.html").status_code == 404
    assert http.get("/assets/nothing.js").status_code == 404
    assert http.get("/receipt-codes/0123456789ab").json()["error"]["code"] == "receipt_code.unknown"
    assert http.get("/receipt-codes/xyz").status_code == 422


def test_a_resident_votes_in_the_browser_and_the_results_page_matches_the_verifier(city, tmp_path):
    chain, server, http = city
    trustees = [(Account.create(), sealing.generate_keypair()) for _ in range(3)]
    # The register when the poll is made: Central 3 (two here, the browser's resident the third),
    # Northern 2 (one votes with the Python client), Eastern 1: Eastern, below 3, is merged with its
    # only neighbour in the configured order. All are enrolled before the poll: its register is fixed then.
    python_resident = ResidentClient(http)
    for district, resident in [("Central", None)] * 2 + [("Northern", python_resident), ("Northern", None), ("Eastern", None)]:
        address = (resident or ResidentClient(http)).address
        enrolled = http.post("/admin/residents", headers=ADMIN, json={"address": address, "district": district, "birthYear": 1970})
        assert enrolled.status_code == 201, enrolled.text
    assert http.post("/admin/rewards", headers=ADMIN, json={"name": "Museum ticket", "price": 10, "stock": 5}).status_code == 201
    assert http.post("/admin/charities", headers=ADMIN, json={"name": "City shelter", "account": trustees[0][0].address}).status_code == 201

    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    browser = Browser({
        "apiUrl": server.url, "artifacts": str(ARTIFACTS), "userDataDir": str(tmp_path / "profile"),
        "chromiumPath": str(CHROMIUM), "password": PASSWORD,
    }, tmp_path / "browser.log")
    try:
        created_key = browser.expect("address")
        address = created_key["address"]
        assert "not enrolled" in created_key["notEnrolled"]
        enrolled = http.post("/admin/residents", headers=ADMIN, json={"address": address, "district": "Central", "birthYear": 1985})
        assert enrolled.status_code == 201, enrolled.text
        now = chain.now()
        created = http.post("/admin/polls", headers=ADMIN, json={
            "question": "Where should the new library go?", "options": ["Park", "Station", "School"],
            "opensAt": now, "closesAt": now + 3600, "points": 20, "threshold": 2, "keyCeremony": False,
            "trustees": [{"address": a.address, "publicKey": "0x" + k.public_key.hex()} for a, k in trustees],
        })
        assert created.status_code == 201, created.text
        poll, sealed_shares = created.json()["poll"], created.json()["sealedShares"]
        assert [(s["name"], s["registerSize"]) for s in poll["strata"]] == [("Central", 3), ("Northern + Eastern", 3)]
        # A second resident votes with the Python client in the same poll (another stratum).
        [own_poll] = python_resident.polls()
        assert own_poll["residentStratum"] == 1
        python_resident.submit(python_resident.make_ballot(python_resident.get_token(own_poll), [0]))
        browser.reply(enrolled=True, pollId=poll["id"])

        voted = browser.expect("voted", timeout=150)
        assert voted["question"] == "Where should the new library go?"
        assert voted["stratumNote"].startswith("Your ballot is counted in the stratum Central (3 eligible residents).")
        assert voted["receiptWarnings"] == 0 and voted["receiptsListed"] == 2
        # The lost 201: the page sent the same request again, got the answer, and keeps no request.
        (lost, lost_status, lost_delivered), (again, again_status, again_delivered) = voted["tokenRequests"]
        assert (lost_status, lost_delivered, again_status, again_delivered) == (201, False, 201, True)
        assert again == lost and voted["tokenRequestsKept"] == 0
        assert voted["points"] == [10, 5]  # 20 for taking part, a 10-point reward, 5 donated
        # The exported keystore is a standard one: eth-account opens it with the password.
        keystore = json.loads(Path(voted["keystore"]).read_text())
        assert "crypto" in keystore
        assert Account.from_key(Account.decrypt(keystore, PASSWORD)).address == address
        receipts = [json.loads(Path(p).read_text()) for p in voted["receipts"]]
        assert [r["sequence"] for r in receipts] == [1, 2]
        assert receipts[0]["token"] == receipts[1]["token"] and receipts[0]["pollId"] == poll["id"]
        for receipt, code in zip(receipts, voted["codes"]):
            assert receipt["ballotHash"][2:14] == code.replace("-", "")
            assert http.get(f"/receipt-codes/{code.replace('-', '')}").json()["ballotHashes"] == [receipt["ballotHash"]]

        # Close, release two of three shares, publish.
        wait_relay_drained(http)
        chain.anvil.increase_time(3601)
        for index in (0, 2):
            account, keypair = trustees[index]
            share = key_shares.open_trustee_share(keypair.secret_key, bytes.fromhex(sealed_shares[index][2:]))
            ResidentClient(http, account).release_share(poll, index, share)
        published = http.post(f"/admin/polls/{poll['id']}/publish", headers=ADMIN)
        assert published.status_code == 200, published.text
        # The key again, as the Python tools write keystores (eth-account, scrypt): the page imports it.
        cli_keystore = tmp_path / "cli-keystore.json"
        cli_keystore.write_text(json.dumps(Account.encrypt(Account.decrypt(keystore, PASSWORD), PASSWORD)))
        browser.reply(published=True, cliKeystore=str(cli_keystore))

        shown = browser.expect("results", timeout=120)
    finally:
        browser.stop()

    # The observer's recount from the chain alone: both ballots (browser and Python) counted.
    recount = verify(chain, tmp_path, "--json", "poll", str(poll["id"]))
    assert recount.returncode == 0, recount.stdout + recount.stderr
    verdict = json.loads(recount.stdout)
    assert verdict["verdict"] == "PASS"
    assert verdict["tally"]["recomputed"] == [1, 0, 1] == published.json()["counts"]
    assert verdict["supersededCount"] == 1  # the browser's first ballot, replaced by its revote
    assert shown["status"] == "published"
    assert shown["counts"] == verdict["tally"]["recomputed"]
    assert shown["ballotsCounted"] == 2
    assert shown["strata"] == verdict["tally"]["byStratum"] == {"0": [0, 0, 1], "1": [1, 0, 0]}
    # Every stratum of the dataset, by name, and no claim of a hidden one that the dataset shows.
    assert shown["strataNames"] == ["Central", "Northern + Eastern"]
    assert "2 strata of at least 3 eligible residents each, all shown" in shown["strataNote"]
    assert "points ledger" in shown["strataNote"]
    assert "not shown" not in shown["cardText"].lower()
    assert f"poll {poll['id']}" in shown["verifyCommand"] and shown["datasetHref"] == f"/polls/{poll['id']}/dataset.csv"
    assert shown["byCode"] == "confirmed" and "on chain in block" in shown["byCodeText"]
    assert shown["byFile"] == "confirmed" and "signed by the relay" in shown["byFileSignature"]
    assert shown["consoleErrors"] == []
    assert shown["imported"] == address and shown["receiptsAfterImport"] == 2
    # The only refusals the pages met: the polls of a not-yet-enrolled address, an unknown code.
    assert {tuple(e) for e in shown["httpErrors"]} == {(404, "/polls/eligible"), (404, "/receipt-codes/000000000000")}
    # Both receipts downloaded in the browser check out with the verifier (one counted, one superseded).
    for path in voted["receipts"]:
        checked = verify(chain, tmp_path, "receipt", path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    for page in ("resident-new", "resident-voted", "resident", "results"):
        for width in ("phone", "desktop"):
            assert (ARTIFACTS / f"{page}-{width}.png").stat().st_size > 10_000

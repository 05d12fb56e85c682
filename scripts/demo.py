"""`make demo`: a city's week of polls, end to end, on one machine.

Starts anvil, deploys the contracts, starts the city's API (uvicorn, SQLite), enrols 1,000
synthetic residents across districts and ages, and runs three protocol-v2 polls: a citywide
single-choice poll with one stratum per district, a district-only poll, and a multiple-choice poll
for an age range. Three trustees (any two of them suffice) register their keys and make each
poll's election key in a key ceremony on chain, through the API, which relays and holds no secret;
one of them is late, and the ceremony waits for her. Residents vote through the resident SDK
(ballots sealed with HPKE to the trustees' key; some revote; ineligible and replayed attempts are
shown being refused), the chain's clock moves past close, the two punctual trustees release their
shares, the city publishes results and datasets, the late trustee releases hers, and
`veche-verify` recounts everything from the chain. Then points: balances, one redemption, one
donation. Everything it started is stopped at the end.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from eth_account import Account
from rich.console import Console
from rich.table import Table

from veche_client import trustee as trustee_steps
from veche_client.sdk import ApiError, ResidentClient
from veche_core import dkg
from veche_testkit.devchain import ADMIN_KEY, start_chain
from veche_testkit.servers import ProcessServer, wait_relay_drained
from veche_testkit.waiting import eventually

TRUSTEES = ("Anna", "Boris", "Vera")  # Vera is the late one
DISTRICTS = ["Arbat", "Basmanny", "Khamovniki", "Presnensky", "Tverskoy"]
RESIDENTS = 1_000
ADMIN = {"X-Admin-Key": ADMIN_KEY}
CEREMONY_SECONDS = 600  # the API's default time before opensAt for the trustees' key ceremony
console = Console()


@dataclass
class Trustee:
    """A trustee: an identity (signs what it posts, through the API) and a P-256 static key."""

    name: str
    client: ResidentClient
    static_key: dkg.StaticKey

    def step(self, poll_id: int) -> list[str]:
        """What `veche trustee ceremony` does: the next steps of the ceremony that are due."""
        return trustee_steps.step(self.client, poll_id, self.static_key).done

    def release(self, poll_id: int) -> None:
        """What `veche trustee release` does: the share, recomputed from the chain, posted."""
        seen = trustee_steps.view(self.client, poll_id, self.static_key)
        self.client.release_share(seen.poll, seen.index, trustee_steps.release_share(seen, self.static_key))


def main() -> int:
    started = time.monotonic()
    rng = random.Random(2026)
    with tempfile.TemporaryDirectory(prefix="veche-demo-") as tmp:
        workdir = Path(tmp)
        chain = start_chain(workdir, f"sqlite:///{workdir / 'city.db'}")
        # The production threshold (the dev chain's settings turn merging off for small tests): the
        # age-limited poll's districts, about 56 residents each, are merged into strata of at least 100.
        env = {**chain.env, "VECHE_DISTRICTS": ",".join(DISTRICTS), "VECHE_MIN_STRATUM": "100"}
        server = ProcessServer(env, log_path=workdir / "api.log")
        try:
            server.start()
            console.print(
                f"[bold]Chain[/] anvil on {chain.anvil.url}; contracts deployed (PollBook {chain.deployment.poll_book})"
            )
            console.print(f"[bold]City API[/] on {server.url}")
            with httpx.Client(base_url=server.url, timeout=120, limits=httpx.Limits(max_connections=16)) as http:
                code = run_city(http, chain, rng, workdir)
        finally:
            server.stop()
            chain.anvil.stop()
    console.print(f"Stopped the API and the chain; {time.monotonic() - started:.0f} s in all.")
    return code


def run_city(http: httpx.Client, chain, rng: random.Random, workdir: Path) -> int:
    # --- enrolment ---------------------------------------------------------------------------
    residents = [ResidentClient(http, Account.create()) for _ in range(RESIDENTS)]
    districts = {r.address: DISTRICTS[i % len(DISTRICTS)] for i, r in enumerate(residents)}
    years = {r.address: rng.randint(1950, 2006) for r in residents}
    rows = "address,district,birth_year\n" + "".join(
        f"{r.address},{districts[r.address]},{years[r.address]}\n" for r in residents
    )
    report = http.post("/admin/residents/import", content=rows, headers={**ADMIN, "content-type": "text/csv"}).json()
    console.print(f"[bold]Enrolled[/] {report['imported']} residents in {len(DISTRICTS)} districts")

    # --- trustees ------------------------------------------------------------------------------
    trustees = [Trustee(name, ResidentClient(http, Account.create()), dkg.StaticKey.generate()) for name in TRUSTEES]
    for t in trustees:
        t.client.register_trustee_key(t.static_key.public_key, 1)
    console.print(
        f"[bold]Trustees[/] {', '.join(t.name for t in trustees)} registered their static keys on chain "
        "(any two of them can open the ballots after close; no one before)"
    )

    # --- polls ---------------------------------------------------------------------------------
    now = chain.now()
    opens = now + CEREMONY_SECONDS + 60  # a minute to create the three polls
    polls = [
        (
            "Tverskaya Street should become…",
            ["A pedestrian zone", "Bike lanes", "More parking", "Leave it as it is"],
            1,
            {},
        ),
        (
            "Which park in Arbat needs new playgrounds first?",
            ["Gogolevsky", "Nikitsky", "Smolensky"],
            1,
            {"districts": ["Arbat"]},
        ),
        (
            "Pick up to two new metro station designs (residents 18–35)",
            ["Constructivist", "Glass", "Mosaic", "Garden"],
            2,
            {"minAge": 18, "maxAge": 35},
        ),
    ]
    created = []
    for question, options, max_choices, audience in polls:
        reply = http.post(
            "/admin/polls",
            headers=ADMIN,
            json={
                "question": question,
                "options": options,
                "maxChoices": max_choices,
                "audience": audience,
                "opensAt": opens,
                "closesAt": opens + 7 * 24 * 3600,
                "points": 20 if not audience else 10,
                "trustees": [{"address": t.client.address} for t in trustees],
                "threshold": 2,
            },
        )
        if reply.status_code != 201:
            raise SystemExit(f"the API refused poll {question!r}: {reply.text}")
        reply = reply.json()
        created.append(reply)
        strata = "; ".join(f"{s['name']} ({s['registerSize']})" for s in reply["poll"]["strata"])
        console.print(f"[bold]Poll {reply['poll']['id']}[/]: {question} (strata: {strata}; trustees 2 of 3)")

    # --- the key ceremonies: the first two trustees are punctual, the third is late ------------
    *punctual, late = trustees
    for reply in created:
        poll_id = reply["poll"]["id"]
        for t in punctual:
            t.step(poll_id)
        waiting = trustee_steps.waiting_for(late.client.ceremony(poll_id))
        console.print(
            f"  poll {poll_id}'s ceremony: {punctual[0].name} and {punctual[1].name} posted round 1; it waits for "
            f"trustee {', '.join(map(str, waiting))} ({late.name}), and the poll cannot open without its key"
        )
        late.step(poll_id)  # her round 1, then (every round 1 being in) her certification
        for t in punctual:
            t.step(poll_id)
        state = late.client.ceremony(poll_id)
        console.print(
            f"  poll {poll_id}'s ceremony: {late.name} came; every trustee checked its shares and certified the "
            f"election key {state['electionKey'][:18]}… on chain (attempt {state['attempt']})"
        )
    chain.anvil.increase_time(max(0, opens - chain.now()))
    console.print("[bold]Opened[/]: the chain's clock reached the polls' opening")

    # --- voting --------------------------------------------------------------------------------
    def vote(resident: ResidentClient) -> tuple[int, int]:
        cast = revoted = 0
        for poll in resident.polls():
            if rng.random() < 0.15:  # not everyone votes
                continue
            token = resident.get_token(poll)
            options = len(poll["options"])
            choice = sorted(rng.sample(range(options), rng.randint(1, poll["maxChoices"])))
            resident.submit(resident.make_ballot(token, choice))
            cast += 1
            if rng.random() < 0.1:  # changed their mind: the last ballot counts
                resident.submit(resident.make_ballot(token, [rng.randrange(options)]))
                revoted += 1
        return cast, revoted

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(vote, residents))
    cast, revoted = sum(c for c, _ in results), sum(r for _, r in results)
    console.print(
        f"[bold]Voted[/]: {cast} ballots and {revoted} revotes in {time.monotonic() - started:.0f} s (blind "
        f"tokens, sealed ballots, relay receipts)"
    )

    # Refusals, each with the API's stable error code.
    outsider = next(r for r in residents if districts[r.address] != "Arbat")
    arbat_poll = created[1]["poll"]
    attempts = []
    try:
        outsider.get_token({**arbat_poll, "residentStratum": 0})
    except ApiError as exc:
        attempts.append(("a resident of another district asks for an Arbat token", exc))
    idle = next(r for r, (c, _) in zip(residents, results) if c == 0)  # one who has not voted yet
    poll = idle.polls()[0]
    token = idle.get_token(poll)
    ballot = idle.make_ballot(token, [0])
    first = idle.submit(ballot)
    again = idle.submit(ballot)  # a retry after a lost answer: the same receipt, nothing stored twice
    console.print(
        f"  the same ballot sent again gets its first receipt again: "
        f"{'yes' if again['receipt']['signature'] == first['receipt']['signature'] else 'NO'}"
    )
    try:
        idle.submit(idle.make_ballot(token, [1], sequence=ballot.sequence))
    except ApiError as exc:
        attempts.append(("another ballot with a sequence already used", exc))
    try:
        idle.get_token(poll)
    except ApiError as exc:
        attempts.append(("a resident asks for a second token in the same poll", exc))
    for what, exc in attempts:
        console.print(f"  refused: {what} → {exc.code}: {exc.message}")

    # --- close, release, publish ---------------------------------------------------------------
    wait_relay_drained(http, timeout=120)
    chain.anvil.increase_time(7 * 24 * 3600 + 1)
    console.print(
        f"[bold]Closed[/]: the chain's clock moved past the polls' close; {punctual[0].name} and "
        f"{punctual[1].name} release their shares (recomputed from the ceremony on chain), enough to count"
    )
    for reply in created:
        poll = reply["poll"]
        for t in punctual:
            t.release(poll["id"])
        result = http.post(f"/admin/polls/{poll['id']}/publish", headers=ADMIN).json()
        print_result(poll, result)
    for reply in created:
        late.release(reply["poll"]["id"])
    console.print(f"  {late.name}, late again, releases hers after publication: the verifier checks it too")

    # --- the observer's recount ------------------------------------------------------------------
    console.print("\n[bold]veche-verify[/] — an observer recounts every poll from chain state alone:")
    deployment = workdir / "deployment.json"
    chain.deployment.save(deployment)
    verify = subprocess.run(
        [
            str(Path(sys.executable).with_name("veche-verify")),
            "--rpc",
            chain.anvil.url,
            "--deployment",
            str(deployment),
            "--json",
            "all",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    print_verdict(verify)

    # --- points ----------------------------------------------------------------------------------
    http.post("/admin/rewards", headers=ADMIN, json={"name": "Tretyakov Gallery ticket", "price": 15, "stock": 100})
    http.post(
        "/admin/charities", headers=ADMIN, json={"name": "City animal shelter", "account": Account.create().address}
    )
    spender = max(residents[:50], key=lambda r: r.points()["balance"])
    chain_id, city_points = chain.deployment.chain_id, chain.deployment.city_points
    before = spender.points()["balance"]
    deadline = chain.now() + 600  # the demo's chain clock runs a week ahead
    wait_for_request(http, spender.redeem(chain_id, city_points, 1, deadline))
    wait_for_request(http, spender.donate(chain_id, city_points, 1, 5, deadline))
    after = spender.points()
    console.print(
        f"\n[bold]Points[/] of {spender.address}: {before} earned; redeemed a gallery ticket (15) and donated "
        f"5 → balance {after['balance']}"
    )
    for entry in after["history"]:
        console.print(f"  block {entry['block']}: {entry['amount']:+} {entry['event']}")
    return verify.returncode


def wait_for_request(http: httpx.Client, request: dict, timeout: float = 60) -> None:
    """Until a relayed points request is on chain (or refused)."""
    eventually(
        lambda: http.get(f"/points/requests/{request['id']}").json(),
        timeout,
        interval=0.3,
        until=lambda found: found["status"] in ("confirmed", "failed", "rejected"),
        what=f"points request {request['id']} settled",
    )


def print_result(poll: dict, result: dict) -> None:
    table = Table(title=f"Poll {poll['id']}: {poll['question']} — {result['ballotsCounted']} ballots counted")
    table.add_column("option")
    table.add_column("votes", justify="right")
    table.add_column("")
    top = max(result["counts"]) or 1
    for option, count in zip(poll["options"], result["counts"]):
        table.add_row(option, str(count), "█" * round(30 * count / top))
    console.print(table)
    if len(result["perStratum"]) > 1:
        console.print("  per stratum: " + "; ".join(f"{s['name']} {s['counts']}" for s in result["perStratum"]))


def print_verdict(verify: subprocess.CompletedProcess) -> None:
    import json

    try:
        report = json.loads(verify.stdout)
    except json.JSONDecodeError:
        console.print(f"[red]the verifier could not run[/]: {verify.stderr.strip()}")
        return
    for poll in report["polls"]:
        failed = [c["number"] for c in poll["checks"] if not c["passed"]]
        checks = ", ".join(str(c["number"]) for c in poll["checks"])
        mark = "[green]PASS[/]" if not failed else f"[red]FAIL (checks {failed})[/]"
        console.print(
            f"  poll {poll['pollId']}: checks {checks} → {mark}; recomputed {poll['tally']['recomputed']} = "
            f"published {poll['tally']['published']}"
        )
        release = next((c for c in poll["checks"] if c["number"] == 15), None)
        if release is not None:
            console.print(f"    election key {poll['electionKey']}; check 15: {release['detail']}")
    verdict = "[bold green]every check passed[/]" if report["verdict"] == "PASS" else "[bold red]FAILED[/]"
    console.print(f"  verdict: {verdict} (exit code {verify.returncode})")


if __name__ == "__main__":
    sys.exit(main())

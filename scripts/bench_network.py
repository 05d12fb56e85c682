"""End-to-end ballot rate through castBallots: the three-validator Clique network beside anvil.

Usage: .venv/bin/python scripts/bench_network.py [--ballots 10000] [--json OUT] [--no-anvil] [--no-geth]

Both engines are measured the same way: one relayer key sends prepared, signed ballots (random
token credentials of the real size: the contract does not check them) in castBallots batches
without waiting, then waits for every receipt; the rate is accepted ballots (BallotCast events)
over the time from the first send to the last receipt. anvil runs with 1-second blocks, like the
network's Clique period.

Batch sizes differ because geth's transaction pool refuses transactions over 128 KiB (about 160
ballots); anvil takes 500-ballot batches. Prints one Markdown table row per engine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from veche_testkit.city import BATCH as ANVIL_BATCH
from veche_testkit.city import GETH_BATCH, City, call_arguments
from veche_testkit.waiting import eventually

HEADER = "| engine | validators | batch | ballots | blocks | seconds | ballots/s | gas/ballot |"
RULE = "|---|---|---|---|---|---|---|---|"


def measure(driver: City, ballots_count: int, batch: int) -> dict:
    """Send every batch without waiting, then wait for all receipts."""
    poll = driver.create_poll(duration=3600, strata=1)
    ballots = driver.random_ballots(poll, ballots_count)
    batches = [ballots[i : i + batch] for i in range(0, len(ballots), batch)]
    first = driver.cast_data(poll, call_arguments(batches[0]))
    gas = int(
        driver.w3.eth.estimate_gas({"from": driver.relayer.address, "to": driver.poll_book.address, "data": first})
        * 1.3
    )

    start = time.perf_counter()
    hashes = [driver.send_cast(poll, b, gas=gas) for b in batches]
    receipts = [driver.w3.eth.wait_for_transaction_receipt(h, timeout=300, poll_latency=0.05) for h in hashes]
    elapsed = time.perf_counter() - start

    if any(r["status"] != 1 for r in receipts):
        raise RuntimeError("a castBallots transaction reverted")
    event = driver.poll_book.events.BallotCast()
    accepted = sum(len(event.process_receipt(r)) for r in receipts)
    gas_used = sum(r["gasUsed"] for r in receipts)
    blocks = {r["blockNumber"] for r in receipts}
    return {
        "batch": batch,
        "ballots": accepted,
        "seconds": round(elapsed, 2),
        "ballotsPerSecond": round(accepted / elapsed),
        "gasPerBallot": round(gas_used / accepted),
        "blocks": len(blocks),
    }


def bench_anvil(ballots: int, batch: int) -> dict:
    from veche_node.anvil import Anvil

    with Anvil(block_time=1) as anvil:
        driver = City.deploy_on_dev_chain(anvil.url)
        return {"engine": "anvil (1 s blocks)", "validators": 1, **measure(driver, ballots, batch)}


def bench_geth(ballots: int, batch: int) -> dict:
    from veche_node.network import (
        block_number,
        deploy_contracts,
        init_network,
        start_all,
        stop_all,
    )

    with tempfile.TemporaryDirectory(prefix="veche-bench-") as tmp:
        net = init_network(Path(tmp) / "network", validators=3, observers=0, light_kdf=True)
        try:
            start_all(net)
            urls = [spec.url for spec in net.nodes]
            eventually(lambda: block_number(urls[0]) >= 3, timeout=60, what="the first blocks")
            target = block_number(urls[0])
            for url in urls:
                eventually(lambda url=url: block_number(url) >= target, timeout=60, what=f"{url} to sync")
            deployment = deploy_contracts(net, urls[0])
            driver = City.on_network(net, deployment, urls[0])
            return {"engine": "geth 1.13.15 Clique (1 s period)", "validators": 3, **measure(driver, ballots, batch)}
        finally:
            stop_all(net)


def row(result: dict) -> str:
    return (
        f"| {result['engine']} | {result['validators']} | {result['batch']} | {result['ballots']:,} | "
        f"{result['blocks']} "
        f"| {result['seconds']} | {result['ballotsPerSecond']:,} | {result['gasPerBallot']:,} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ballots", type=int, default=10_000)
    parser.add_argument("--geth-batch", type=int, default=GETH_BATCH)
    parser.add_argument("--anvil-batch", type=int, default=ANVIL_BATCH)
    parser.add_argument("--no-anvil", action="store_true")
    parser.add_argument("--no-geth", action="store_true")
    parser.add_argument("--json", type=Path, help="Also write the results as JSON here.")
    args = parser.parse_args(argv)

    results = []
    print(HEADER)
    print(RULE)
    if not args.no_anvil:
        results.append(bench_anvil(args.ballots, args.anvil_batch))
        print(row(results[-1]), flush=True)
    if not args.no_geth:
        from veche_node.geth import GethNotFoundError, geth_available

        if not geth_available():
            print(f"geth skipped: {GethNotFoundError.__doc__}", file=sys.stderr)
        else:
            results.append(bench_geth(args.ballots, args.geth_batch))
            print(row(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

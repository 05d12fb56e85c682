"""`make demo`: a whole poll on a local chain, from deployment to the verifier's verdict.

Starts anvil, deploys the contracts, creates a citywide poll with one stratum per district,
issues blind ballot tokens to residents, casts sealed ballots (with revotes and a ballot the
chain refuses), moves the chain's clock past close, has the trustees release their shares,
publishes the result and runs `veche-verify` on it. Stops everything it started.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

from eth_utils import to_checksum_address
from rich.console import Console
from web3.logs import DISCARD
from rich.table import Table

from veche_node.anvil import Anvil
from veche_node.simulation import City

DISTRICTS = ["Arbat", "Basmanny", "Khamovniki", "Tverskoy"]
OPTIONS = ["Pedestrian zone", "Bike lanes", "More parking", "Leave as is"]
VOTERS = 40


def main() -> int:
    console = Console()
    started = time.monotonic()
    state = Path(".state")
    state.mkdir(exist_ok=True)
    with Anvil() as chain:
        console.print(f"[bold]anvil[/] answering on {chain.url} (chain id {chain.chain_id})")
        city = City.deploy_on_dev_chain(chain.url)
        deployment_file = state / "deployment.json"
        city.deployment.save(deployment_file)
        console.print(f"deployed PollBook {city.deployment.poll_book} and CityPoints {city.deployment.city_points}")

        metadata = {"question": "What should Tverskaya Street become?", "options": OPTIONS, "audience": "citywide"}
        poll = city.create_poll(option_count=len(OPTIONS), strata=len(DISTRICTS), threshold=2, metadata=metadata)
        console.print(f"poll {poll.poll_id}: {metadata['question']} ({len(DISTRICTS)} strata, trustees 2 of 3)")

        rng = random.Random(7)
        residents = [(to_checksum_address(f"0x{0xC17E:04x}{i:036x}"), i % len(DISTRICTS)) for i in range(VOTERS)]
        tokens = city.issue_tokens(poll, residents)
        console.print(f"issued {len(tokens)} blind ballot tokens; each resident credited {poll.points} points")

        ballots = [city.ballot(poll, key, [rng.choice([0, 0, 1, 1, 1, 2, 3])]) for key in tokens]
        city.cast(poll, ballots)
        revotes = [city.ballot(poll, key, [3]) for key in tokens[:5]]
        stale = city.ballot(poll, tokens[5], [2], sequence=1)  # replays sequence 1: refused
        receipt = city.cast(poll, [*revotes, stale])[0]
        rejected = city.poll_book.events.BallotRejected().process_receipt(receipt, errors=DISCARD)
        console.print(f"cast {len(ballots)} ballots, {len(revotes)} revotes; the chain refused {len(rejected)} replayed ballot(s)")

        on_chain = city.poll_book.events.BallotCast().get_logs(
            from_block=city.deployment.start_block, argument_filters={"pollId": poll.poll_id}
        )
        read_back = Table(title=f"BallotCast events read back from anvil ({len(on_chain)} in all; first 5)")
        for column in ("block", "token", "seq", "stratum", "ciphertext", "token signature"):
            read_back.add_column(column)
        for log in on_chain[:5]:
            args = log["args"]
            read_back.add_row(
                str(log["blockNumber"]), args["token"], str(args["sequence"]), str(args["stratum"]),
                f"{len(args['ciphertext'])} B sealed", f"{len(args['tokenSignature'])} B RSA credential",
            )
        console.print(read_back)

        city.advance_to(poll.closes_at)
        city.release_shares(poll)
        counts, rows = city.publish(poll)
        console.print("closed; 2 of 3 trustees released their shares; result and dataset hash published")

        table = Table(title=metadata["question"])
        table.add_column("option")
        table.add_column("votes", justify="right")
        table.add_column("")
        for option, count in zip(OPTIONS, counts):
            table.add_row(option, str(count), "█" * count)
        console.print(table)

        console.print("\n[bold]veche-verify[/] — the observer's recount from chain state alone:")
        verify = Path(sys.executable).with_name("veche-verify")
        result = subprocess.run(
            [str(verify), "--rpc", chain.url, "--deployment", str(deployment_file), "poll", str(poll.poll_id)],
            timeout=300,
        )
    console.print(f"anvil stopped; {time.monotonic() - started:.1f} s in all")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())

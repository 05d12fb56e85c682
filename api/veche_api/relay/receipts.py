"""Finishing a logged transaction from its receipt (step 3 of the protocol in the package
docstring): what every kind's handler shares, and the ballots' outcomes read from the receipt's
own logs through `veche_core.events`."""

from __future__ import annotations

from typing import Any, Protocol

from veche_core import events
from veche_core.errors import EncodingError

from ..models import Ballot, ChainTx
from .outbox import UNFINISHED


class KindHandler(Protocol):
    """The relay's work for the transaction kinds it handles (`kinds`): one per kind, so that a
    new kind without a handler stops the relay at start instead of being taken for another."""

    @property
    def kinds(self) -> tuple[ChainTx.Kind, ...]:
        """The kinds of transaction this handler finishes."""

    def finish(self, row: ChainTx, receipt: dict[str, Any], tx_hash: str) -> None:
        """Finish `row` and its items from the receipt of whichever version was mined."""

    def requeue(self, session, row: ChainTx) -> None:
        """`row`'s nonce went to a transaction that is not ours: free its items (same session)."""


def tx_outcome(receipt: dict[str, Any]) -> tuple[bool, int]:
    """(succeeded, block number) of a JSON-RPC transaction receipt."""
    return int(receipt["status"], 16) == 1, int(receipt["blockNumber"], 16)


def mark_finished(session, tx_id: int, ok: bool, block: int, tx_hash: str, *, lock: bool = False) -> ChainTx | None:
    """Mark the ChainTx mined or reverted, with the mined version's hash, in `session`; None if it
    is finished already (the creating request and reconcile may both get here)."""
    row = session.get(ChainTx, tx_id, with_for_update=True if lock else None)
    if row.status not in UNFINISHED:
        return None
    row.status = ChainTx.Status.MINED if ok else ChainTx.Status.REVERTED
    row.block_number, row.tx_hash = block, tx_hash
    session.add(row)
    return row


def ballot_outcomes(logs, poll_book: str, poll_id: int) -> dict[tuple[str, int], tuple[str, str | None]]:
    """(lower-case token, sequence) → (status, reason) from a castBallots receipt's logs:
    BallotCast → confirmed, BallotRejected → rejected with the contract's reason
    (`events.rejection_reason`). Logs of other contracts or polls, and any that do not decode,
    are not this batch's."""
    contract = poll_book.lower()
    outcome: dict[tuple[str, int], tuple[str, str | None]] = {}
    for raw in logs:
        topics = raw.get("topics") or []
        if str(raw.get("address", "")).lower() != contract or not topics:
            continue
        topic0 = str(topics[0]).lower()
        try:
            if topic0 == events.BALLOT_CAST.topic:
                cast = events.ballot_cast(raw)
                if cast.poll_id == poll_id:
                    outcome["0x" + cast.token.hex(), cast.sequence] = (Ballot.Status.CONFIRMED, None)
            elif topic0 == events.BALLOT_REJECTED.topic:
                rejected = events.ballot_rejected(raw)
                if rejected.poll_id == poll_id:
                    outcome["0x" + rejected.token.hex(), rejected.sequence] = (
                        Ballot.Status.REJECTED,
                        events.rejection_reason(rejected.reason),
                    )
        except EncodingError:
            continue
    return outcome

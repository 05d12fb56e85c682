"""The relay: a worker thread that moves queued ballots, issuances and points requests to the
chain in batches, durably.

Write-ahead protocol (crash safety):
1. Items are committed to the database before the API acknowledges them (ballots: status
   `accepted`; issuances: `pending`; points requests: `pending`).
2. The worker picks a batch, builds the call, estimates gas and signs it with the next nonce of
   the sending account; in ONE database transaction it stores the signed raw transaction (nonce,
   hash) as a `ChainTx` (status `signed`) and points the items at it; only then it broadcasts.
3. `reconcile` runs first on every loop, so also right after a restart: for every unfinished
   ChainTx it reads the receipt. Mined → each item is marked from the transaction's own events
   (BallotCast → confirmed, BallotRejected → rejected with the contract's reason). Not mined →
   the same raw bytes are broadcast again. A transaction whose nonce was consumed without a
   receipt (for any of its versions, see 5) is `dropped` and its items are queued again.
   Exactly-once rests on this log: a ballot is only ever re-sent as the same raw transaction or
   as a repriced version of the same nonce, and one nonce is mined at most once; items are
   queued again only when their nonce went to a transaction that is not ours. PollBook no
   longer judges sequences (every well-signed ballot is cast), so a ballot posted twice would
   not be a no-op: the verifier fails check 5 on any duplicate. Issuances and credits keep
   their contract's guard (one issuance, with its credit, per resident and poll).
4. Node down, nonce trouble, reverted transactions: the loop backs off exponentially (up to
   10 s), re-reads its nonce from chain and database, and retries. A reverted batch is requeued
   unless the poll has closed (then its items fail with reason `poll.closed`).
5. Stuck: a sender's lowest unfinished transaction that has waited `reprice_after` seconds
   (the node evicted it as underpriced, or keeps it but does not mine it) is re-signed with the
   SAME nonce, gas and calldata at a gas price 12.5% higher (at least the current price): the
   new version is written to the log (the old hash kept as a `TxVersion`) before it is
   broadcast. One nonce means at most one version is mined; the receipt of whichever is
   finishes the transaction and its items. The price stops rising at twice the current price
   (a transaction paying that much waits for something a higher fee does not cure).

Poll creation uses the same log (kind `poll`, `PollCreation`): the request signs createPoll
with the admin key, writes it with the poll's keys, broadcasts and waits; if it dies on the
way, reconcile finishes the poll from the receipt's PollCreated event (`polls.finish_poll_tx`).

Isolation (health.py): each poll's batches, each logged transaction's bookkeeping and each
points request runs on its own; one that keeps failing for a reason other than an unreachable
node or database is quarantined with its reason (shown by /health and /metrics) and the rest
flows on. The relay's heartbeat and last error are written to the database for every API
process to report.

Batches (batching.py): by size (`batch_size`) and by time (`batch_interval` since the oldest queued ballot),
grouped by poll, shuffled with `secrets.SystemRandom` (so the order on chain does not reveal
the order of arrival), except that one token's ballots keep ascending sequence order, so that
the chain shows a revote after the ballot it replaces (counting does not depend on it: the
verifier counts each token's highest sequence wherever it stands).

The package, by part:
- loop.py       `Relay`: the worker thread, one pass (`step`), `reconcile`, and the dispatch of
                each logged transaction to the handler of its `ChainTx.Kind`
- outbox.py     `Outbox`: one account's nonces, signing, repricing, broadcasting and its rows
                of the write-ahead log
- lock.py       `RelayLock`: one relay per database
- batching.py   which ballots go into one castBallots call, and their order
- receipts.py   what finishing a transaction from its receipt shares (`KindHandler`,
                `mark_finished`), and the ballots' outcomes read from its logs
- ballots.py, issuances.py, points.py, polls.py   one handler per kind: what is due, how it is
                sent, finished from its receipt, and queued again when its nonce was lost
- health.py     isolation (quarantine) and the heartbeat that /health and /metrics read
"""

from .batching import plan_batch
from .health import TRANSIENT, Heartbeat, Isolation, QuarantineKind, TransientError, describe, relay_health
from .lock import RelayLock
from .loop import Relay
from .outbox import Outbox
from .polls import finish_poll_tx
from .receipts import ballot_outcomes

__all__ = [
    "TRANSIENT",
    "Heartbeat",
    "Isolation",
    "Outbox",
    "QuarantineKind",
    "Relay",
    "RelayLock",
    "TransientError",
    "ballot_outcomes",
    "describe",
    "finish_poll_tx",
    "plan_batch",
    "relay_health",
]

"""The synthetic city: every party of a poll, driving the contracts directly with the real
protocol cryptography — the one driver of the tests, the benchmarks and the geth network tests.

Every step is the protocol's (blind tokens, sealed plaintexts, EIP-712 ballots, SLIP-39 shares
sealed to the trustees, shares relayed with the trustees' signatures), but the city's and the
residents' parts run in one process, with no API in between: the poll administrator, the issuer,
residents, the relayer, trustees, and the administrator again (count and publish). Used by the
verifier's tests (which need chain state that breaks one rule at a time), the verifier and
network benchmarks, and the Clique network tests.

On anvil (`City.deploy_on_dev_chain`) the driver mines the blocks itself and moves the clock;
on a geth network (`City.on_network`) the validators mine and time runs on its own, so the
driver waits for receipts and for a poll's close instead, sends ballots in smaller batches
(geth refuses a transaction over 128 KiB), and its trustees are fresh keys with no funds.

The bulk calls (issuance records, points, ballots: 500 items a transaction) skip web3's generic
layers, which cost more than the chain does at benchmark sizes (a 100,000-ballot poll): calldata
is encoded directly, each transaction is signed locally with a fixed gas limit (no estimate run)
and sent as raw JSON-RPC with automine paused, then mined with `evm_mine` — still each in a block
of its own, as under automine — and the receipts are read unformatted on a thread of their own.
`City.transactions_per_block` puts more in a block: anvil (1.7) rebuilds its whole state trie
for every block, ~0.5 s a block once a 100,000-ballot poll is on chain, but the verifier splits
its work by block ranges, so fewer, larger blocks change what a benchmark of it measures.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any, cast

import coincurve
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from web3 import HTTPProvider, Web3
from web3.logs import DISCARD
from web3.types import RPCEndpoint

from veche_core import blind_rsa, dkg, events, hpke, key_shares, p256, plaintext, sealing, token
from veche_core.abi import checksum_address
from veche_core.ballot import Ballot
from veche_core.calls import IssuanceRecord, encode_cast_ballots, encode_record_issuances
from veche_core.ceremony import MessageKind
from veche_core.dataset import DatasetRow, dataset_hash
from veche_core.deployment import Deployment
from veche_core.errors import CeremonyFaultError
from veche_core.metadata import canonical_json, poll_metadata
from veche_core.register import RegisterTree
from veche_core.rpc import RpcClient
from veche_core.typed_data import (
    ceremony_message_digest,
    issuance_request_hash_digest,
    key_share_digest,
    poll_book_domain,
    sign_digest,
    trustee_key_digest,
)
from veche_node.contracts import Sender, bind, deploy_with_dev_accounts, dev_accounts
from veche_node.network import OPERATOR_ROLES, Network
from veche_node.rpc import make_web3
from veche_verify import ceremony as verifier_ceremony

from .waiting import eventually

BATCH = 500  # items per bulk transaction
# Ballots per castBallots transaction on a geth network: its transaction pool refuses
# transactions over 128 KiB (txMaxSize, not configurable in 1.13), and a ballot takes ~800 bytes
# of calldata, so at most ~160 a batch; anvil takes BATCH.
GETH_BATCH = 150
RECEIPT_TIMEOUT = 120.0  # seconds a node that mines on its own may take to mine a transaction
# Gas limits of the bulk calls per item, with room over what anvil measured (`ape run
# gas_report`: ~89,000 an issuance with its credit and a 17-step proof, ~24,100 a ballot of 3
# options; 47,300 when PollBook still stored sequences), plus CALL_GAS for the call itself. Set,
# not estimated: an estimate runs the call a second time.
ISSUANCE_GAS, BALLOT_GAS, CALL_GAS = 130_000, 60_000, 200_000
REQUEST_DEADLINE = 2**40  # the synthetic residents' requests do not expire (the API's deadline rule)
CEREMONY_TIME = 60  # seconds a v2 poll leaves its trustees before it opens (anvil: the clock is moved on)


def resident_key(index: int) -> bytes:
    """The synthetic city's resident `index`: a fixed identity key, so that every test and
    benchmark names the same residents (keccak of a label: a valid secp256k1 key but for a
    2^-128 chance)."""
    return keccak(b"veche-testkit/resident/" + index.to_bytes(4, "big"))


def key_address(private_key: bytes) -> str:
    public = coincurve.PrivateKey(private_key).public_key.format(compressed=False)[1:]
    return checksum_address(keccak(public)[-20:])


#: The residents every City knows the keys of, and (unless a poll names its own) the register of
#: every stratum of its polls.
RESIDENTS = [key_address(resident_key(i)) for i in range(40)]


@dataclass(frozen=True)
class TokenKey:
    """A resident's one-time token key and its issuer-signed credential."""

    private_key: bytes
    address: str
    stratum: int
    credential: bytes


@dataclass
class SimPoll:
    poll_id: int
    option_count: int
    max_choices: int
    opens_at: int
    closes_at: int
    points: int
    issuer_keys: list[blind_rsa.PrivateKey]
    election_public_key: bytes
    trustee_keys: list[sealing.X25519KeyPair]
    sealed_shares: tuple[bytes, ...]
    threshold: int
    registers: list[RegisterTree] = field(default_factory=list)  # per stratum, as committed
    version: int = 1  # 2: the trustees' ceremony made the key (election_public_key is then Y)
    attempt: int = 0  # v2: the ceremony attempt under way, its members and their round-1 payloads
    members: tuple[int, ...] = ()
    round1: dict[int, bytes] = field(default_factory=dict)
    tokens: list[TokenKey] = field(default_factory=list)
    sequences: dict[str, int] = field(default_factory=dict)
    issued: list[tuple[str, int]] = field(default_factory=list)  # (resident, stratum) recorded


def new_token_key() -> tuple[bytes, str]:
    private_key = os.urandom(32)
    return private_key, key_address(private_key)


class City:
    """The contracts on one chain, and the city's and residents' keys to drive them.

    `senders` holds the operators (admin, poll_admin, issuer, relayer, points_admin);
    `trustees` are keys only: their shares are relayed by the poll administrator."""

    def __init__(self, w3: Web3, deployment: Deployment, senders: dict[str, Sender], trustees: list[LocalAccount]):
        self.w3 = w3
        self.deployment = deployment
        self.poll_book, self.city_points = bind(w3, deployment)
        self.domain = poll_book_domain(deployment.chain_id, deployment.poll_book)
        self.admin = senders["admin"]
        self.poll_admin = senders["poll_admin"]
        self.issuer = senders["issuer"]
        self.relayer = senders["relayer"]
        self.points_admin = senders["points_admin"]
        self.trustees = trustees
        # v2: each trustee's static P-256 key, registered on chain before its first v2 poll.
        self.static_keys = [dkg.StaticKey.generate() for _ in trustees]
        self.registered_keys: set[int] = set()
        # The identity keys of the residents this city can issue to (address -> key).
        self.resident_keys: dict[str, bytes] = {key_address(k): k for k in map(resident_key, range(len(RESIDENTS)))}
        url = cast(HTTPProvider, w3.provider).endpoint_uri  # make_web3's provider, made with a URL
        assert url is not None
        self.rpc = RpcClient(url, timeout=120)
        # anvil: the driver may mine blocks and move the clock; any other node mines on its own.
        self.dev_chain = str(self.rpc.call("web3_clientVersion")).lower().startswith("anvil")
        self.ballot_batch = BATCH if self.dev_chain else GETH_BATCH
        # Bulk calls (record_issuances, credit, cast): transactions mined in one block (anvil
        # only: automine paused, then evm_mine). 1: each in its own block, as under automine.
        self.transactions_per_block = 1

    @classmethod
    def deploy_on_dev_chain(cls, rpc_url: str, trustee_count: int = 3) -> City:
        """Deploy on anvil with its funded development accounts in every role (as `veche-node
        dev` does); the next dev accounts are the trustees."""
        w3 = make_web3(rpc_url, timeout=120)
        deployment, accounts = deploy_with_dev_accounts(w3)
        senders = {role: Sender(w3, account) for role, account in zip(OPERATOR_ROLES, accounts)}
        return cls(w3, deployment, senders, dev_accounts(5 + trustee_count)[5:])

    @classmethod
    def on_network(cls, net: Network, deployment: Deployment, url: str, trustee_count: int = 3) -> City:
        """Drive a deployment on a geth network through the node at `url`, with the operators'
        keys from the network's keystores; the trustees are fresh keys."""
        w3 = make_web3(url, timeout=120)
        senders = {role: Sender(w3, net.operator_account(role)) for role in OPERATOR_ROLES}
        return cls(w3, deployment, senders, [Account.create() for _ in range(trustee_count)])

    # --- the chain's clock -----------------------------------------------------------------

    def now(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]

    def advance_to(self, timestamp: int) -> None:
        """anvil only: mine a block at `timestamp` (or the next second if it is past)."""
        target = max(timestamp, self.now() + 1)
        self.w3.provider.make_request(RPCEndpoint("evm_setNextBlockTimestamp"), [target])
        self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])

    def close(self, poll: SimPoll, timeout: float = 120.0) -> None:
        """Bring the chain to the poll's close (see `reach`)."""
        self.reach(poll.closes_at, timeout, what=f"the close of poll {poll.poll_id}")

    def reach(self, timestamp: int, timeout: float = 120.0, what: str = "a moment") -> None:
        """Bring the chain to `timestamp`: anvil's clock is moved there; a network's runs on its
        own, so this waits (at most `timeout` s) for a block at or past it."""
        if self.dev_chain:
            self.advance_to(timestamp)
        else:
            eventually(lambda: self.now() >= timestamp, timeout, interval=0.5, what=f"a block at {what}")

    # --- poll administration ---------------------------------------------------------------

    def create_poll(
        self,
        *,
        option_count: int = 3,
        max_choices: int = 1,
        strata: int = 2,
        opens_in: int | None = None,
        duration: int = 3600,
        points: int = 20,
        threshold: int = 2,
        trustee_count: int | None = None,
        issuer_keys: list[blind_rsa.PrivateKey] | None = None,
        raw_issuer_keys: list[bytes] | None = None,
        metadata: dict[str, Any] | None = None,
        register: list[list[str]] | None = None,
        version: int = 1,
        ceremony: bool = True,
    ) -> SimPoll:
        """A poll with its register committed: `register[s]` the addresses of stratum s (by
        default every stratum's register is RESIDENTS). Version 2: the trustees make the key in
        a ceremony on chain (`ceremony=False` leaves it to the caller); the poll opens `opens_in`
        seconds after creation (v2: by default CEREMONY_TIME, for the ceremony), and after an
        honest ceremony this waits for that (on anvil the clock is moved there)."""
        trustee_count = trustee_count or len(self.trustees)
        if version == 1:
            trustee_keys = [sealing.generate_trustee_keypair() for _ in range(trustee_count)]
            dealing = key_shares.deal(threshold, [k.public_key for k in trustee_keys])
            election_key, sealed_shares = dealing.election_public_key, dealing.sealed_shares
        else:
            self.register_trustee_keys(range(trustee_count))
            trustee_keys, election_key, sealed_shares = [], bytes(32), ()
        if opens_in is None:
            opens_in = CEREMONY_TIME if version == 2 else 0
        issuer_keys = issuer_keys or [blind_rsa.generate_private_key() for _ in range(strata)]
        opens_at = self.now() + opens_in
        closes_at = opens_at + duration
        metadata = metadata or poll_metadata(
            "?", [f"option {i}" for i in range(option_count)], {"districts": None, "minAge": None, "maxAge": None}
        )
        params = (
            keccak(canonical_json(metadata)),
            option_count,
            max_choices,
            opens_at,
            closes_at,
            points,
            election_key,
            raw_issuer_keys or [k.public_key.encode() for k in issuer_keys],
            [t.address for t in self.trustees[:trustee_count]],
            threshold,
        )
        trees = [RegisterTree.build(r) for r in (register or [RESIDENTS] * len(params[7]))]
        receipt = self.poll_admin.transact(
            self.poll_book.functions.createPoll(params, [t.root for t in trees], [t.size for t in trees])
        )
        # (DISCARD: the receipt's RegisterCommitted log is not a PollCreated, and says nothing wrong)
        poll_id = self.poll_book.events.PollCreated().process_receipt(receipt, errors=DISCARD)[0]["args"]["pollId"]
        poll = SimPoll(
            poll_id,
            option_count,
            max_choices,
            opens_at,
            closes_at,
            points,
            issuer_keys,
            election_key,
            trustee_keys,
            sealed_shares,
            threshold,
            trees,
            version,
        )
        if version == 2:
            poll.attempt, poll.members = 1, tuple(range(trustee_count))
            if ceremony:
                assert not self.run_ceremony(poll), "an honest ceremony found a fault"
                self.reach(opens_at, what=f"the opening of poll {poll_id}")
        return poll

    # --- protocol v2: the trustees' key ceremony ------------------------------------------------

    def register_trustee_keys(self, indices: Iterable[int]) -> None:
        """Each trustee signs its static key (TrusteeKey, serial 1) and the poll administrator
        relays it (registerTrusteeKey), once per city."""
        for index in indices:
            if index in self.registered_keys:
                continue
            trustee, key = self.trustees[index], self.static_keys[index].public_key
            signature = sign_digest(bytes(trustee.key), trustee_key_digest(self.domain, trustee.address, key, 1))
            self.poll_admin.transact(self.poll_book.functions.registerTrusteeKey(trustee.address, key, 1, signature))
            self.registered_keys.add(index)

    def ceremony_context(self, poll: SimPoll) -> tuple[bytes, list[bytes]]:
        """The context of the poll's current attempt, and its members' static keys."""
        keys = [self.static_keys[i].public_key for i in poll.members]
        book = bytes.fromhex(self.deployment.poll_book[2:])
        return dkg.ceremony_context(self.deployment.chain_id, book, poll.poll_id, poll.attempt, keys), keys

    def post_ceremony_message(self, poll: SimPoll, index: int, kind: MessageKind, payload: bytes) -> None:
        """Trustee `index` signs a ceremony message and the poll administrator relays it."""
        digest = ceremony_message_digest(self.domain, poll.poll_id, poll.attempt, index, int(kind), payload)
        signature = sign_digest(bytes(self.trustees[index].key), digest)
        self.poll_admin.transact(
            self.poll_book.functions.postCeremonyMessage(
                poll.poll_id, poll.attempt, index, int(kind), payload, signature
            )
        )

    def run_ceremony(
        self,
        poll: SimPoll,
        *,
        tamper: dict[int, Any] | None = None,
        absent: Iterable[int] = (),
        certify: bool = True,
        tamper_certification: dict[int, Any] | None = None,
    ) -> list[tuple[int, int, int]]:
        """The current attempt, every member honest unless told: round 1 (`tamper[index]`
        rewrites that trustee's payload before it is posted; `absent` trustees post nothing),
        then each member's round 2: a fault found is posted as a complaint, else (with
        `certify`) the member certifies (`tamper_certification[index]` rewrites its payload).
        Returns the complaints posted, (complainer, accused, reason); none: the key is certified
        and `poll.election_public_key` is Y."""
        context, keys = self.ceremony_context(poll)
        absent = set(absent)
        poll.round1 = {}
        for member, index in enumerate(poll.members, start=1):
            if index in absent:
                continue
            payload = dkg.round1(context, poll.threshold, keys, member, self.static_keys[index]).encode()
            if tamper and index in tamper:
                payload = tamper[index](payload)
            self.post_ceremony_message(poll, index, MessageKind.Round1, payload)
            poll.round1[index] = payload
        if absent:
            return []
        payloads = [poll.round1[i] for i in poll.members]
        complaints: list[tuple[int, int, int]] = []
        shares: dict[int, dkg.KeyShare] = {}
        for member, index in enumerate(poll.members, start=1):
            if tamper and index in tamper:
                continue  # the cheat does not complain about itself
            try:
                shares[index] = dkg.round2(context, poll.threshold, keys, member, self.static_keys[index], payloads)
            except CeremonyFaultError as fault:
                for found in fault.faults:
                    accused, complaint = dkg.complaint_payload(
                        context, poll.threshold, keys, self.static_keys[index], found, payloads, poll.members
                    )
                    self.post_ceremony_message(poll, index, MessageKind.Complaint, complaint)
                    complaints.append((index, accused, int(found[1])))
        if complaints or not certify:
            return complaints
        for index in poll.members:
            payload = dkg.certification_payload(
                context, poll.threshold, keys, self.static_keys[index], shares[index], payloads
            )
            if tamper_certification and index in tamper_certification:
                payload = tamper_certification[index](payload)
            self.post_ceremony_message(poll, index, MessageKind.Certify, payload)
            poll.election_public_key = payload[: p256.POINT_SIZE]
        return []

    def round1_deadline(self, poll: SimPoll) -> int:
        """When a member of the current attempt that posted no round 1 becomes excludable."""
        started = self.poll_book.events.CeremonyStarted().get_logs(
            from_block=self.deployment.start_block, argument_filters={"pollId": poll.poll_id}
        )[-1]
        began = self.w3.eth.get_block(started["blockNumber"])["timestamp"]
        return verifier_ceremony.round1_deadline(began, poll.opens_at)

    def restart_ceremony(self, poll: SimPoll, excluded: list[int]) -> None:
        """The poll administrator starts the next attempt without `excluded`."""
        self.poll_admin.transact(self.poll_book.functions.restartCeremony(poll.poll_id, excluded))
        poll.attempt += 1
        poll.members = tuple(i for i in poll.members if i not in excluded)

    # --- issuance ----------------------------------------------------------------------------

    def issue_tokens(self, poll: SimPoll, residents: list[tuple[str, int]]) -> list[TokenKey]:
        """For each (resident address, stratum): the blind protocol, the resident's signed
        request with its register proof, recorded on chain (which credits the points)."""
        issued, records = [], []
        for resident, stratum in residents:
            key, record = self.request_token(poll, resident, stratum)
            issued.append(key)
            records.append(record)
        self.record_issuances(poll, records)
        poll.tokens.extend(issued)
        poll.issued.extend(residents)
        return issued

    def request_token(
        self, poll: SimPoll, resident: str, stratum: int, *, signer: bytes | None = None
    ) -> tuple[TokenKey, IssuanceRecord]:
        """A token minted for `resident` in `stratum` and the IssuanceRecord of its request
        (signed by `signer` instead, to break the rule), proven in the stratum's register (at
        index 0 for a resident who is not in it)."""
        issuer = poll.issuer_keys[stratum]
        private_key, address = new_token_key()
        request = token.request_token(
            issuer.public_key, self.deployment.chain_id, self.deployment.poll_book, poll.poll_id, stratum, address
        )
        blind_signature = blind_rsa.blind_sign(issuer, request.blinded_msg)
        key = TokenKey(private_key, address, stratum, token.finish_token(issuer.public_key, request, blind_signature))
        return key, self.request_record(poll, resident, stratum, keccak(request.blinded_msg), signer=signer)

    def request_record(
        self, poll: SimPoll, resident: str, stratum: int, blinded_message_hash: bytes, *, signer: bytes | None = None
    ) -> IssuanceRecord:
        """The IssuanceRecord of `resident`'s request for a blinded message (by its hash), signed
        by the resident's identity key (or `signer`), with its proof in the stratum's register
        (at index 0 for a resident who is not in it)."""
        digest = issuance_request_hash_digest(
            self.domain, poll.poll_id, stratum, blinded_message_hash, REQUEST_DEADLINE
        )
        tree = poll.registers[stratum]
        try:
            index = tree.index_of(resident)
        except ValueError:
            index = 0
        proof = tree.proof(index) if tree.size else []
        signature = sign_digest(signer or self.resident_keys[resident], digest)
        return IssuanceRecord(resident, stratum, blinded_message_hash, REQUEST_DEADLINE, signature, index, proof)

    def mint_token(self, poll: SimPoll, stratum: int, issuer: blind_rsa.PrivateKey | None = None) -> TokenKey:
        """A fresh token key, blindly signed by the stratum's issuer key (or by `issuer`),
        with no issuance recorded on chain."""
        issuer = issuer or poll.issuer_keys[stratum]
        private_key, address = new_token_key()
        request = token.request_token(
            issuer.public_key, self.deployment.chain_id, self.deployment.poll_book, poll.poll_id, stratum, address
        )
        blind_signature = blind_rsa.blind_sign(issuer, request.blinded_msg)
        return TokenKey(private_key, address, stratum, token.finish_token(issuer.public_key, request, blind_signature))

    def record_issuances(self, poll: SimPoll, records: list[IssuanceRecord]) -> None:
        """PollBook.recordIssuances, 500 records a transaction (each credits its resident)."""
        calls = (
            (encode_record_issuances(poll.poll_id, part), ISSUANCE_GAS * len(part) + CALL_GAS)
            for part in _chunks(records, BATCH)
        )
        self.send_calls(self.issuer, self.deployment.poll_book, calls)

    # --- raw transactions ------------------------------------------------------------------------

    def send_calls(self, sender: Sender, to: str, calls: Iterable[tuple[bytes, int]]) -> list[dict]:
        """Send each (calldata, gas limit) from `sender` to `to` as a raw transaction, in order,
        `transactions_per_block` to a block (by default each in a block of its own, as under
        automine): on anvil with automine, automine is paused, and each group is sent to the pool
        and mined with `evm_mine`; a node that mines on its own (geth, anvil with a block time)
        is left to it, and its receipts are waited for. The next call is taken from `calls` (and
        so encoded) only then, and the receipts are read on a thread of their own while the node
        mines on; a revert stops the sending. Returns the receipts as JSON-RPC objects (hex
        quantities), in order; RuntimeError if one reverted."""
        sender.sync_nonce()  # another writer (a test's web3 path) may have used the key
        per_block = max(1, self.transactions_per_block)
        # restored after (interval mining is left alone)
        automine = self.dev_chain and self.rpc.call("anvil_getAutomine")
        receipts = _ReceiptReader(self.rpc.url, wait=0.0 if automine else RECEIPT_TIMEOUT)
        if automine:
            self.rpc.call("evm_setAutomine", [False])
        try:
            for group in _chunks(calls, per_block):
                if receipts.reverted:
                    break
                # The node's price, as Sender asks it. A group that may spill into later blocks
                # offers twice the next base fee (which rises ≤ 12.5 % a block), but not a multiple
                # of the node's suggestion: that follows the tips paid, and would compound.
                gas_price = int(self.rpc.call("eth_gasPrice"), 16)
                if per_block > 1:
                    block = self.rpc.call("eth_getBlockByNumber", ["pending", False])
                    gas_price = max(gas_price, 2 * int(block["baseFeePerGas"], 16))
                hashes = []
                for data, gas in group:
                    raw, tx_hash = sender.sign_call(to, data, gas=gas, gas_price=gas_price)
                    self.rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()])
                    hashes.append("0x" + tx_hash.hex())
                if automine:
                    self._mine(sender, len(hashes))
                receipts.read(hashes)
        except BaseException:
            receipts.close()
            raise
        finally:
            if automine:
                self.rpc.call("evm_setAutomine", [True])
        return receipts.result()

    def _mine(self, sender: Sender, count: int) -> None:
        """anvil: mine until `sender`'s `count` transactions just sent are in blocks (a block
        takes one at least; more if their gas limits fit)."""
        for _ in range(count):
            self.rpc.call("evm_mine")
            if int(self.rpc.call("eth_getTransactionCount", [sender.address, "latest"]), 16) >= sender.nonce:
                return
        raise RuntimeError(f"transactions from {sender.address} were left unmined")

    # --- ballots -------------------------------------------------------------------------------

    def ballot(
        self,
        poll: SimPoll,
        key: TokenKey,
        choices: list[int] | None = None,
        *,
        sequence: int | None = None,
        plaintext_bytes: bytes | None = None,
        credential: bytes | None = None,
        stratum: int | None = None,
        signer: bytes | None = None,
        ciphertext: bytes | None = None,
    ) -> Ballot:
        """A signed ballot; the keyword arguments exist to build ballots that break one rule."""
        if sequence is None:
            sequence = poll.sequences.get(key.address, 0) + 1
        poll.sequences[key.address] = max(sequence, poll.sequences.get(key.address, 0))
        if plaintext_bytes is None:
            plaintext_bytes = plaintext.encode_choice(choices or [0], poll.option_count, poll.max_choices)
        stratum = key.stratum if stratum is None else stratum
        if ciphertext is None and poll.version == 1:
            ciphertext = sealing.seal_ballot(poll.election_public_key, plaintext_bytes)
        elif ciphertext is None:
            info = hpke.ballot_info(
                self.deployment.chain_id, self.deployment.poll_book, poll.poll_id, stratum, key.address
            )
            ciphertext = hpke.seal_ballot(poll.election_public_key, info, plaintext_bytes)
        unsigned = Ballot(
            poll.poll_id,
            bytes.fromhex(key.address[2:]),
            sequence,
            stratum,
            ciphertext,
            key.credential if credential is None else credential,
        )
        if signer is None:
            return unsigned.sign(key.private_key, self.domain)
        # Signed by another key: a ballot the chain must reject.
        return replace(unsigned, signature=sign_digest(signer, unsigned.digest(self.domain)))

    def random_ballots(self, poll: SimPoll, count: int, stratum: int = 0) -> list[Ballot]:
        """Signed ballots of fresh token keys whose credentials are random bytes of the real
        size: load for the chain alone (the contract does not check credentials; a verifier
        rejects them)."""
        size = token.credential_length(poll.issuer_keys[stratum].public_key)
        return [self.ballot(poll, TokenKey(*new_token_key(), stratum, os.urandom(size))) for _ in range(count)]

    def cast(
        self, poll: SimPoll, ballots: list[Ballot], batch: int | None = None, relayer: Sender | None = None
    ) -> list[dict]:
        """PollBook.castBallots from the relayer (or another relay's `relayer`), `batch` ballots a
        transaction (by default as many as the chain takes); the receipts (JSON-RPC objects)."""
        return self.cast_arguments(poll, call_arguments(ballots), batch, relayer=relayer)

    def cast_arguments(
        self,
        poll: SimPoll,
        arguments: Iterable[tuple],
        batch: int | None = None,
        gas_per_ballot: int = BALLOT_GAS,
        relayer: Sender | None = None,
    ) -> list[dict]:
        """`cast` for ballots already in castBallots' argument form (`call_arguments`); taken
        from `arguments` a batch at a time, as the transactions go (it may be a stream)."""
        calls = (
            (self.cast_data(poll, part), gas_per_ballot * len(part) + CALL_GAS)
            for part in _chunks(arguments, batch or self.ballot_batch)
        )
        return self.send_calls(relayer or self.relayer, self.deployment.poll_book, calls)

    def add_relay(self, name: str = "Partner relay", url: str = "https://relay.partner.example") -> Sender:
        """Another relay: a fresh key, funded by the admin and registered (PollBook.registerRelay)."""
        sender = Sender(self.w3, Account.create())
        self.admin.send({"to": sender.address, "value": 10**18})
        self.admin.transact(self.poll_book.functions.registerRelay(sender.address, name, url))
        return sender

    def cast_data(self, poll: SimPoll, arguments: list[tuple]) -> bytes:
        """castBallots calldata for ballots in its argument form (`call_arguments`)."""
        return encode_cast_ballots(poll.poll_id, [(bytes.fromhex(a[0][2:]), *a[1:]) for a in arguments])

    def send_cast(self, poll: SimPoll, ballots: list[Ballot], *, gas: int) -> bytes:
        """Send one castBallots batch with a fixed gas limit (no estimate run) and do not wait:
        its transaction hash, for tests and benchmarks that keep the chain busy while they
        watch it."""
        data = self.cast_data(poll, call_arguments(ballots))
        return self.relayer.send({"to": self.poll_book.address, "data": data}, gas=gas, wait=False)

    # --- close, release, publish -----------------------------------------------------------------

    def release_shares(self, poll: SimPoll, indices: list[int] | None = None) -> None:
        """Trustees `indices` (by default the first `threshold` members) post their shares: v1
        opens its sealed share; v2 recomputes its x_m from the round-1 messages (COCKTAIL's round
        2 again, with its static key alone)."""
        if poll.version == 2:
            context, keys = self.ceremony_context(poll)
            payloads = [poll.round1[i] for i in poll.members]
            for index in indices if indices is not None else poll.members[: poll.threshold]:
                member = poll.members.index(index) + 1
                key_share = dkg.round2(context, poll.threshold, keys, member, self.static_keys[index], payloads)
                self.post_share(poll, index, key_share.release_payload())
            return
        for index in indices if indices is not None else range(poll.threshold):
            share = key_shares.open_trustee_share(poll.trustee_keys[index].secret_key, poll.sealed_shares[index])
            self.post_share(poll, index, share)

    def post_share(self, poll: SimPoll, index: int, share: bytes) -> None:
        """Trustee `index` signs `share` and the poll administrator relays it (submitKeyShareFor),
        as the API relays trustees' shares: trustees need no funds on any chain."""
        signature = sign_digest(
            bytes(self.trustees[index].key), key_share_digest(self.domain, poll.poll_id, index, share)
        )
        self.poll_admin.transact(self.poll_book.functions.submitKeyShareFor(poll.poll_id, index, share, signature))

    def count(
        self, poll: SimPoll, shares: list[bytes], *, exclude: frozenset[str] = frozenset(), poll_book=None
    ) -> tuple[list[int], list[DatasetRow]]:
        """The city's count: each token's ballot of highest sequence (the first cast, if one
        was cast twice), wherever it stands on chain, decrypted and tallied.

        An implementation apart from the verifier's (its own reading of the raw logs, no
        signature checks); `exclude` names tokens whose ballots an honest count leaves out (e.g.
        a forged token signature).
        """
        if poll.version == 2:  # the members' released shares, each by its member id
            released = {}
            for member, index in enumerate(poll.members, start=1):
                share = self.poll_book.functions.keyShare(poll.poll_id, index).call()
                if share:
                    released[member] = dkg.decode_release_share(share)
            secret = p256.encode_scalar(dkg.combine_shares(released, poll.threshold, poll.election_public_key))
            joint = hpke.Opener(secret)
        else:
            opener = sealing.Opener(key_shares.combine_shares(shares, poll.election_public_key, poll.threshold))
        excluded = {address.lower() for address in exclude}
        latest = self.latest_ballots(poll, poll_book=poll_book)
        counts = [0] * poll.option_count
        rows = []
        for token_address, (_, stratum, ciphertext, block) in latest.items():
            if token_address in excluded:
                continue
            try:
                if poll.version == 2:
                    info = hpke.ballot_info(
                        self.deployment.chain_id, self.deployment.poll_book, poll.poll_id, stratum, token_address
                    )
                    opened = joint.open(ciphertext, info)
                else:
                    opened = opener.open(ciphertext)
                choice = plaintext.decode_choice(opened, poll.option_count, poll.max_choices)
            except Exception:  # noqa: BLE001 - an invalid ballot is listed by the verifier, not counted
                continue
            for option in choice:
                counts[option] += 1
            rows.append(DatasetRow(token_address.lower(), stratum, choice, block))
        return counts, rows

    def latest_ballots(
        self, poll: SimPoll, *, from_block: int | None = None, poll_book=None
    ) -> dict[str, tuple[int, int, bytes, int]]:
        """Token address (lower case) -> (sequence, stratum, ciphertext, block) of its ballot of
        highest sequence (the first cast, if one was cast twice), from `from_block` on."""
        latest: dict[str, tuple[int, int, bytes, int]] = {}
        for token_address, sequence, stratum, ciphertext, block in self._ballots_cast(poll, poll_book, from_block):
            if token_address not in latest or sequence > latest[token_address][0]:
                latest[token_address] = (sequence, stratum, ciphertext, block)
        return latest

    def _ballots_cast(
        self, poll: SimPoll, poll_book=None, from_block: int | None = None
    ) -> Iterator[tuple[str, int, int, bytes, int]]:
        """(token address in lower case, sequence, stratum, ciphertext, block number) of each BallotCast
        of the poll, in chain order: raw eth_getLogs, read by the core's BallotCast reader."""
        address = (poll_book or self.poll_book).address
        topics = [events.BALLOT_CAST.topic, events.uint_topic(poll.poll_id)]
        start = self.deployment.start_block if from_block is None else from_block
        for log in self.rpc.iter_logs(address, topics, start, self.rpc.block_number()):
            cast = events.ballot_cast(log)
            yield "0x" + cast.token.hex(), cast.sequence, cast.stratum, cast.ciphertext, cast.block_number

    def published_shares(self, poll: SimPoll) -> list[bytes]:
        shares = (self.poll_book.functions.keyShare(poll.poll_id, i).call() for i in range(len(poll.trustee_keys)))
        return [share for share in shares if share]

    def publish(
        self,
        poll: SimPoll,
        counts: list[int] | None = None,
        data_hash: bytes | None = None,
        exclude: frozenset[str] = frozenset(),
    ) -> tuple[list[int], list[DatasetRow]]:
        """Count (leaving out `exclude`) and publish; `counts`/`data_hash` override, to lie."""
        recomputed, rows = self.count(poll, self.published_shares(poll), exclude=exclude)
        self.poll_admin.transact(
            self.poll_book.functions.publishResult(
                poll.poll_id, counts if counts is not None else recomputed, data_hash or dataset_hash(rows)
            )
        )
        return recomputed, rows


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class _ReceiptReader:
    """Reads and checks receipts on a thread (and connection) of its own: a 500-ballot receipt
    is ~1 MB of JSON, ~50 ms to fetch and parse, as long as the node takes to mine the next.
    With `wait`, the node mines on its own: a receipt not there yet is asked for again, for up
    to `wait` seconds."""

    def __init__(self, url: str, wait: float = 0.0) -> None:
        self._rpc = RpcClient(url, timeout=120)
        self._wait = wait
        self._thread = ThreadPoolExecutor(1)
        self._parts: list[Future] = []
        self.reverted: str | None = None

    def read(self, hashes: list[str]) -> None:
        self._parts.append(self._thread.submit(self._read, hashes))

    def _read(self, hashes: list[str]) -> list[dict]:
        def fetch() -> list[dict]:
            return self._rpc.batch("eth_getTransactionReceipt", [[h] for h in hashes])

        receipts = (
            fetch()
            if not self._wait
            else eventually(
                fetch,
                self._wait,
                until=lambda found: all(r is not None for r in found),
                interval=0.2,
                what=f"receipts of {len(hashes)} transaction(s)",
            )
        )
        for tx_hash, receipt in zip(hashes, receipts):
            if receipt is None:
                raise RuntimeError(f"transaction {tx_hash} was mined but has no receipt")
            if int(receipt["status"], 16) != 1 and self.reverted is None:
                self.reverted = tx_hash
        return receipts

    def result(self) -> list[dict]:
        try:
            receipts = [receipt for part in self._parts for receipt in part.result()]
        finally:
            self.close()
        if self.reverted:
            raise RuntimeError(f"transaction {self.reverted} reverted")
        return receipts

    def close(self) -> None:
        self._thread.shutdown(cancel_futures=True)
        self._rpc.close()


def call_arguments(ballots: list[Ballot]) -> list[tuple]:
    """Ballots as PollBook.castBallots takes them (its `Ballot` struct)."""
    return [(b.token_address, b.sequence, b.stratum, b.ciphertext, b.token_credential, b.signature) for b in ballots]

"""`veche`: vote in city polls from a terminal, and (for trustees) make a v2 poll's key in its
ceremony and release a key share.

Options are numbered from 1, as `veche polls` shows them. Keys stay in your wallet
(~/.veche, or VECHE_HOME) in standard encrypted keystores; the password is asked for, or read
from VECHE_PASSWORD. Errors from the city's API are shown as the API's own sentence.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click
import httpx
from rich.console import Console
from rich.table import Table

from veche_core import key_shares
from veche_core.errors import VecheError
from veche_core.receipt import Receipt

from . import trustee as trustee_steps
from .sdk import ApiError, ResidentClient, Token, ballot_body, relay_order
from .wallet import Wallet, WalletError

console = Console()


class Session:
    """What every command needs: the API, the wallet and (lazily) the unlocked identity."""

    def __init__(self, api: str, home: Path | None) -> None:
        self.api = api
        self.wallet = Wallet(home)
        self.http = httpx.Client(base_url=api, timeout=60)
        self._password: str | None = os.environ.get("VECHE_PASSWORD")
        self._client: ResidentClient | None = None

    def password(self, confirm: bool = False) -> str:
        if self._password is None:
            self._password = click.prompt("Wallet password", hide_input=True, confirmation_prompt=confirm)
        return self._password

    def client(self) -> ResidentClient:
        if self._client is None:
            self._client = ResidentClient(self.http, self.wallet.identity(self.password()))
        return self._client


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _fail(message: str) -> None:
    console.print(f"[red]{message}[/]")
    sys.exit(1)


def _guard(function):
    """Show API, wallet and network errors as plain sentences, exit 1."""
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ApiError as exc:
            _fail(f"The city's API refused: {exc.message} ({exc.code})")
        except WalletError as exc:
            _fail(str(exc).capitalize() + ".")
        except httpx.HTTPError as exc:
            _fail(f"Cannot reach the city's API: {exc}")
        except VecheError as exc:
            _fail(f"{exc}")

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--api", envvar="VECHE_API", default="http://127.0.0.1:8000", show_default=True, help="The city's API.")
@click.option(
    "--home",
    envvar="VECHE_HOME",
    type=click.Path(file_okay=False, path_type=Path),
    help="Wallet directory (default ~/.veche).",
)
@click.pass_context
def main(ctx, api: str, home: Path | None):
    """Vote in your city's polls, check your receipts, spend your points."""
    ctx.obj = Session(api, home)


# --- keys --------------------------------------------------------------------------------------


@main.group()
def key():
    """Your identity key (create, import, show)."""


@key.command("create")
@click.pass_obj
@_guard
def key_create(session: Session):
    """Make a new identity key, encrypted with a password."""
    account = session.wallet.create_identity(session.password(confirm=True))
    console.print(f"Your identity address is {account.address}. Give it to the city to enrol.")


@key.command("import")
@click.argument("source")
@click.pass_obj
@_guard
def key_import(session: Session, source: str):
    """Import a keystore file (or a 0x private key) as your identity."""
    password = session.password()
    if Path(source).is_file():
        account = session.wallet.import_keystore(json.loads(Path(source).read_text()), password)
    else:
        account = session.wallet.import_identity(source, password)
    console.print(f"Imported {account.address}.")


@key.command("show")
@click.pass_obj
@_guard
def key_show(session: Session):
    """Your identity address."""
    console.print(session.wallet.address())


# --- polls and votes ---------------------------------------------------------------------------


@main.command("polls")
@click.option("--all", "include_closed", is_flag=True, help="Closed polls too.")
@click.pass_obj
@_guard
def polls_command(session: Session, include_closed: bool):
    """The polls you may vote in."""
    found = session.client().polls(include_closed)
    if not found:
        console.print("There is no poll for you right now.")
        return
    for poll in found:
        kind = "choose one" if poll["maxChoices"] == 1 else f"choose up to {poll['maxChoices']}"
        console.print(
            f"[bold]Poll {poll['id']}[/] ({poll['status']}, closes {_when(poll['closesAt'])}, "
            f"{poll['points']} points): {poll['question']} — {kind}"
        )
        for number, option in enumerate(poll["options"], start=1):
            console.print(f"   {number}. {option}")


@main.command("relays")
@click.pass_obj
@_guard
def relays_command(session: Session):
    """The relays you may send your ballot to (PollBook's registry, read from the chain)."""
    table = Table("relay", "URL", "run by", "active")
    for relay in ResidentClient(session.http).relays():  # no identity needed
        table.add_row(
            relay["name"] or relay["address"],
            relay["url"] or "—",
            "the city (it also issues the tokens)" if relay["city"] else "a partner",
            "yes" if relay["active"] else "no (removed)",
        )
    console.print(table)
    console.print("`veche vote` picks a partner's relay at random unless you give --relay URL.")


def _poll_for(session: Session, poll_id: int) -> dict:
    for poll in session.client().polls(include_closed=True):
        if poll["id"] == poll_id:
            return poll
    raise ApiError(404, "poll.not_yours", f"poll {poll_id} is not one you may vote in")


@main.command("vote")
@click.argument("poll_id", type=int)
@click.argument("choices", type=int, nargs=-1, required=True)
@click.option(
    "--max-delay",
    type=float,
    default=5.0,
    show_default=True,
    help="Wait a random 0..N seconds before sending, so the time of your token does not point to your ballot.",
)
@click.option(
    "--relay",
    help="Send the ballot to this relay (its URL). Default: a random registered relay the city does not run "
    "(see `veche relays`), then the others, the city's own last.",
)
@click.pass_obj
@_guard
def vote(session: Session, poll_id: int, choices: tuple[int, ...], max_delay: float, relay: str | None):
    """Vote (or change your vote) in POLL_ID for option numbers CHOICES; keep the receipt.

    Safe to interrupt: a token request and a ballot are saved before they are sent, and sent
    again (the same bytes, which a relay answers as the first time) until answered. The token
    comes from the city; the ballot goes to a relay of your choice, on a connection of its own."""
    poll = _poll_for(session, poll_id)
    if any(not 1 <= c <= len(poll["options"]) for c in choices):
        _fail(f"Options of poll {poll_id} are numbered 1 to {len(poll['options'])}.")
    path = session.wallet.token_path(poll["chainId"], poll["pollBook"], poll_id)
    stored = session.wallet.load_token(path, session.password())
    if stored is None:
        token = _get_token(session, poll, path)
        revote = False
    else:
        account, credential, stratum, sequence = stored
        token = Token(poll, stratum, account, credential, sequence)
        revote = True
    names: dict[str, str] = {}
    if relay is not None:
        relays = [relay.rstrip("/")]
    else:
        listed = session.client().relays()
        names = {r["url"]: r["name"] for r in listed if r["url"] and r["name"]}
        relays = relay_order(listed, session.api.rstrip("/"))
    if _send_pending_ballot(session, token, path, relays):
        revote = True
    if max_delay > 0:
        time.sleep(secrets.SystemRandom().uniform(0, max_delay))
    answer, receipt_path, carrier = _cast(session, token, [c - 1 for c in choices], path, relays)
    picked = ", ".join(poll["options"][c - 1] for c in choices)
    console.print(f"Your {'new ' if revote else ''}vote is recorded: {picked}.")
    shown = "the city's own relay" if carrier == session.api.rstrip("/") else names.get(carrier, "a relay")
    console.print(f"Carried by {shown} ({carrier}), relayer {answer['receipt']['relayer']}.")
    if revote:
        console.print("Only your last vote counts.")
    console.print(f"Receipt {answer['ballotHash'][:18]}… saved in {receipt_path}")


def _get_token(session: Session, poll: dict, path: Path) -> Token:
    """The poll's token, through a lost 201 or a kill: the request is saved (secrets sealed with
    the password) before it is sent, and a saved one is sent again, the same bytes, until the
    API answers it. Only a saved request the API calls expired is replaced: the API answers a
    request it stored whatever its deadline, so an expired one never got there."""
    client, wallet, password = session.client(), session.wallet, session.password()
    kept = wallet.load_token_request(path, password)
    answer = None
    if kept is not None:
        try:
            answer = client.send_token_request(kept.body)
        except ApiError as exc:
            if exc.code != "issuance.expired":
                raise
            wallet.drop_token_request(path)
    if answer is None:
        stratum = poll["residentStratum"]
        body, request, account = client.token_request(poll, stratum)
        kept = wallet.save_token_request(path, account, request, body, stratum, password)
        answer = client.send_token_request(body)
    assert kept is not None  # (sent again, or saved just now)
    token = client.finish_token(poll, kept.stratum, kept.request, kept.account, answer)
    wallet.save_token(path, kept.account.key, token.credential, kept.stratum, 0, password, keystore=kept.keystore)
    return token


def _send_pending_ballot(session: Session, token: Token, path: Path, relays: list[str]) -> bool:
    """A ballot saved and sent by an earlier run that never got its answer goes first, the same
    bytes (a relay answers a copy with its stored receipt; one that never saw it takes it, and a
    ballot two relays carried counts once). True if it is recorded."""
    body = session.wallet.pending_ballot(path)
    if body is None:
        return False
    try:
        answer, carrier = session.client().carry(body, relays)
    except ApiError as exc:
        if exc.status >= 500:
            raise
        session.wallet.drop_pending_ballot(path)  # refused: it was never accepted, and never will be
        console.print(f"An earlier ballot that was never acknowledged was refused: {exc.message} ({exc.code}).")
        return False
    _keep(session, token, path, body["sequence"], answer, carrier)
    console.print(f"Your earlier ballot, whose answer was lost, is recorded (receipt {answer['ballotHash'][:18]}…).")
    return True


# A ballot refused as stale means the relay holds a higher sequence for the token than the wallet
# (an answer lost before ballots were kept, a wallet restored from a copy): the next tries go 1,
# 2, 4, ... above (sequences may skip), within the token's rate limit.
STALE_RETRIES = 11


def _cast(session: Session, token: Token, choices: list[int], path: Path, relays: list[str]) -> tuple[dict, Path, str]:
    """Seal, sign, save, send: the relay's answer, where its receipt is kept, the relay's URL."""
    client, base, attempt = session.client(), token.sequence, 0
    while True:
        ballot = client.make_ballot(token, choices, sequence=base + 2**attempt)
        body = ballot_body(ballot)
        session.wallet.save_pending_ballot(path, body)
        try:
            answer, carrier = client.carry(body, relays)
        except ApiError as exc:
            if exc.status < 500:  # refused: it will never be accepted
                session.wallet.drop_pending_ballot(path)
            if exc.code == "ballot.stale_sequence" and attempt < STALE_RETRIES:
                attempt += 1
                continue
            raise
        return answer, _keep(session, token, path, ballot.sequence, answer, carrier), carrier


def _keep(session: Session, token: Token, path: Path, sequence: int, answer: dict, relay: str) -> Path:
    """An acknowledged ballot: the token's sequence raised to it, the receipt saved, and only
    then the pending ballot dropped (a kill in between sends it once more, and gets the same
    receipt)."""
    token.sequence = max(token.sequence, sequence)
    session.wallet.update_sequence(path, token.sequence)
    receipt_path = session.wallet.save_receipt(answer["receipt"], relay)
    session.wallet.drop_pending_ballot(path)
    return receipt_path


@main.command("receipt")
@click.argument("receipt", required=False)
@click.pass_obj
@_guard
def receipt_command(session: Session, receipt: str | None):
    """Where your ballot is now (RECEIPT: a file or ballot hash; default your last receipt)."""
    if receipt is None:
        saved = session.wallet.receipts()
        if not saved:
            _fail("You have no receipts yet.")
        receipt = str(saved[-1])
    if Path(receipt).is_file():
        ballot_hash = "0x" + Receipt.from_json(Path(receipt).read_text()).ballot_hash.hex()
    else:
        ballot_hash = receipt
    relay = session.wallet.receipt_relay(ballot_hash)
    answer = session.client().ballot_status(ballot_hash, relay)
    status = {
        "accepted": "accepted by the relay, waiting to be sent to the chain",
        "sent": "sent to the chain, waiting for a block",
        "confirmed": f"on chain in block {answer['receipt'].get('blockNumber')}",
        "rejected": f"refused by the chain ({answer.get('reason')})",
        "failed": f"not sent ({answer.get('reason')})",
    }.get(answer["status"], answer["status"])
    console.print(f"Ballot {ballot_hash[:18]}…: {status}.")
    if Path(receipt).is_file():
        session.wallet.save_receipt(answer["receipt"], relay)  # now with transaction and block
    console.print(
        "To check it yourself against any node: veche-verify --rpc URL --deployment FILE receipt RECEIPT_FILE"
    )


# --- points ------------------------------------------------------------------------------------


@main.command("points")
@click.pass_obj
@_guard
def points_command(session: Session):
    """Your points balance and history."""
    points = session.client().points()
    console.print(f"Balance: [bold]{points['balance']}[/] points.")
    for entry in points["history"]:
        what = {
            "PointsCredited": f"poll {entry.get('pollId')}",
            "RewardRedeemed": f"reward {entry.get('rewardId')}",
            "PointsDonated": f"donation to charity {entry.get('charityId')}",
        }.get(entry["event"], entry["event"])
        console.print(f"  block {entry['block']}: {entry['amount']:+} ({what})")


@main.command("rewards")
@click.pass_obj
@_guard
def rewards_command(session: Session):
    """The rewards catalog and the charities you can donate to."""
    table = Table(title="Rewards")
    for column in ("id", "reward", "price", "left"):
        table.add_column(column)
    for reward in session.client().rewards():
        if reward.get("active", True):
            table.add_row(str(reward["id"]), reward["name"], str(reward["price"]), str(reward["stock"]))
    console.print(table)
    charities = Table(title="Charities")
    for column in ("id", "charity"):
        charities.add_column(column)
    for charity in session.client().charities():
        if charity.get("active", True):
            charities.add_row(str(charity["id"]), charity["name"])
    console.print(charities)


def _deployment(session: Session) -> tuple[int, str]:
    deployment = session.client().deployment()
    return deployment["chainId"], deployment["cityPoints"]


@main.command("redeem")
@click.argument("reward_id", type=int)
@click.pass_obj
@_guard
def redeem(session: Session, reward_id: int):
    """Spend points on reward REWARD_ID."""
    chain_id, city_points = _deployment(session)
    answer = session.client().redeem(chain_id, city_points, reward_id)
    console.print(f"Redemption of reward {reward_id} requested (request {answer['id']}, {answer['status']}).")


@main.command("donate")
@click.argument("charity_id", type=int)
@click.argument("amount", type=int)
@click.pass_obj
@_guard
def donate(session: Session, charity_id: int, amount: int):
    """Donate AMOUNT points to charity CHARITY_ID."""
    chain_id, city_points = _deployment(session)
    answer = session.client().donate(chain_id, city_points, charity_id, amount)
    console.print(
        f"Donation of {amount} points to charity {charity_id} requested (request {answer['id']}, {answer['status']})."
    )


# --- trustees ----------------------------------------------------------------------------------


@main.group()
def trustee():
    """For trustees: your keys, v2 polls' key ceremony, and releasing your key share after close."""


@trustee.command("key")
@click.pass_obj
@_guard
def trustee_key(session: Session):
    """Make your trustee keys (or show them again): the static key v2 polls' key ceremonies use
    (register it with `veche trustee register`), and the X25519 key v1 polls seal shares to.

    Your identity key signs what you post as a trustee: without one, it is made too."""
    wallet = session.wallet
    if not wallet.has_identity():
        account = wallet.create_identity(session.password(confirm=True))
        console.print(f"Made your identity key: {account.address} (it signs your messages; `veche key show`).")
    elif not _trustee_complete(wallet):
        wallet.identity(session.password())  # the wallet's one password seals the trustee keys too
    public, static, made = wallet.trustee_keys(session.password(confirm=True))
    console.print(f"Trustee address: {wallet.address()}")
    console.print(f"Trustee static key: 0x{static.hex()}")
    console.print(f"Trustee public key: 0x{public.hex()}")
    if made:
        console.print("Next: `veche trustee register` puts your static key on chain (v2 polls need it).")
    else:
        console.print(f"Your trustee keys exist already ({wallet.trustee_path}): shown again.")


def _trustee_complete(wallet) -> bool:
    try:
        wallet.trustee_static_public_key()
    except WalletError:
        return False
    return True


@trustee.command("register")
@click.option("--rotate", is_flag=True, help="Replace another key registered before (new ceremonies use this one).")
@click.pass_obj
@_guard
def trustee_register(session: Session, rotate: bool):
    """Register your static key on chain (through the city's API), for v2 polls' key ceremonies."""
    key = session.wallet.trustee_static_public_key()
    client = session.client()
    registered = client.trustee_key()
    if registered["key"] == "0x" + key.hex():
        console.print(f"Your static key is registered already (serial {registered['serial']}). Nothing to do.")
        return
    if registered["serial"] and not rotate:
        _fail(
            f"Another static key ({registered['key']}) is registered for {client.address}. "
            "Run `veche trustee register --rotate` to replace it (polls created since use the new one)."
        )
    answer = client.register_trustee_key(key, registered["serial"] + 1)
    console.print(
        f"Registered your static key 0x{key.hex()} for {client.address} (serial {answer['serial']}, "
        f"transaction {answer['transactionHash'][:18]}…). The city can now name you a trustee of v2 polls."
    )


_RPC_OPTION = click.option(
    "--rpc",
    metavar="URL",
    help="Your own node of the chain: what the city's API shows of the ceremony is checked against it first.",
)


@trustee.command("ceremony")
@click.argument("poll_id", type=int)
@_RPC_OPTION
@click.pass_obj
@_guard
def trustee_ceremony(session: Session, poll_id: int, rpc: str | None):
    """Do your next step in POLL_ID's key ceremony: round 1, or (once every member's round 1 is on
    chain) round 2, then a complaint for each fault found or your certification. Run it again
    until it says you are done: it never posts a step twice."""
    static_key = session.wallet.trustee_static_key(session.password())
    try:
        outcome = trustee_steps.step(session.client(), poll_id, static_key, rpc=rpc)
    except trustee_steps.TrusteeError as exc:
        _fail(str(exc)[:1].upper() + str(exc)[1:] + ".")
        return
    for sentence in outcome.done:
        console.print(sentence)
    state, next_step = outcome.state, outcome.next
    if not outcome.done:
        console.print("Nothing to post now.")
    if next_step == "done":
        console.print(
            f"Done: poll {poll_id}'s election key is {state['electionKey']}. Keep your trustee key until the poll "
            f"closes, then run `veche trustee release {poll_id}`."
        )
    elif next_step == "wait":
        waiting = ", ".join(map(str, trustee_steps.waiting_for(state)))
        stage = "round 1" if not all(m["round1"] for m in state["members"]) else "certification"
        console.print(
            f"Next: wait for trustee(s) {waiting} ({stage}), then run `veche trustee ceremony {poll_id}` again."
        )
    elif next_step.startswith(trustee_steps.FROZEN_PREFIX):
        faults = "; ".join(f"trustee {f['index']} {f['cause']}" for f in state["atFault"]) or "see the complaints"
        console.print(
            f"Attempt {state['attempt']} is frozen by a complaint ({faults}). The city's administrator must restart "
            f"the ceremony; then run `veche trustee ceremony {poll_id}` again."
        )
    elif next_step.startswith(trustee_steps.CLOSED_PREFIX):
        _fail(f"Poll {poll_id} opened without a certified key: its ceremony is over.")
    else:
        console.print(f"Next: {next_step}.")


@trustee.command("open")
@click.argument("sealed_share")
@click.pass_obj
@_guard
def trustee_open(session: Session, sealed_share: str):
    """v1 polls: check that SEALED_SHARE (hex, or a file of it) opens with your key."""
    share = key_shares.open_trustee_share(session.wallet.trustee_secret(session.password()), _hex_arg(sealed_share))
    info = key_shares.share_info(share)
    console.print(
        f"Your share opens: member {info.index} of a {info.threshold}-of-n sharing. Keep the sealed share "
        f"until the poll closes."
    )


@trustee.command("release")
@click.argument("poll_id", type=int)
@click.argument("sealed_share", required=False)
@_RPC_OPTION
@click.pass_obj
@_guard
def trustee_release(session: Session, poll_id: int, sealed_share: str | None, rpc: str | None):
    """After POLL_ID closes: publish your key share on chain. v1 polls: open SEALED_SHARE (given
    at creation); v2 polls: your share is recomputed from the ceremony's messages on chain."""
    client = session.client()
    poll = client.poll(poll_id)
    if client.address not in poll["trustees"]:
        _fail(f"You are not a trustee of poll {poll_id}.")
    if poll["status"] not in ("closed", "published") and time.time() < poll["closesAt"]:
        _fail(f"Poll {poll_id} closes at {_when(poll['closesAt'])}; shares are released only after close.")
    if poll.get("version", 1) == 2:
        static_key = session.wallet.trustee_static_key(session.password())
        try:
            seen = trustee_steps.view(client, poll_id, static_key, rpc)
            share = trustee_steps.release_share(seen, static_key)
        except trustee_steps.TrusteeError as exc:
            _fail(str(exc)[:1].upper() + str(exc)[1:] + ".")
            return
    elif sealed_share is None:
        _fail(f"Poll {poll_id} is a v1 poll: give the sealed share the city handed you at its creation.")
        return
    else:
        share = key_shares.open_trustee_share(session.wallet.trustee_secret(session.password()), _hex_arg(sealed_share))
    try:
        answer = client.release_share(poll, poll["trustees"].index(client.address), share)
    except ApiError as exc:
        if exc.code == "chain.PollBookShareAlreadySubmitted":
            console.print(f"Your share of poll {poll_id} is on chain already. Nothing to do.")
            return
        raise
    console.print(f"Your share of poll {poll_id} is on chain (transaction {answer['transactionHash'][:18]}…).")


def _hex_arg(value: str) -> bytes:
    text = Path(value).read_text().strip() if Path(value).is_file() else value
    return bytes.fromhex(text.removeprefix("0x"))

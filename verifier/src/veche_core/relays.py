"""PollBook's relays as the chain holds them (docs/protocol.md §3.8, §7): every key that held
RELAYER_ROLE, the spans it held it (RoleGranted/RoleRevoked, by block time), and what it last
registered (RelayRegistered: who runs it, where it takes ballots). Read by the verifier (check
11, the per-relay counts), the city's API (GET /relays) and the node tooling."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import events
from .calls import role_id
from .errors import EncodingError
from .rpc import RpcClient


@dataclass
class Relay:
    address: str  # EIP-55
    held: list[tuple[int, int | None]] = field(default_factory=list)  # [granted, revoked) block times
    name: str | None = None  # None: never registered (the role granted with grantRole alone)
    url: str | None = None

    def held_at(self, when: int) -> bool:
        return any(start <= when and (end is None or when < end) for start, end in self.held)

    @property
    def active(self) -> bool:
        """It holds the role now."""
        return bool(self.held) and self.held[-1][1] is None

    @property
    def shown(self) -> str:
        return relay_label(self.address, self.name)


def in_listing_order(relays: dict[str, Relay]) -> list[Relay]:
    """Active relays first, registered before unregistered, then by name and address: how
    `GET /relays` and `veche-node relay list` show them."""
    return sorted(relays.values(), key=lambda r: (not r.active, r.name is None, r.name or "", r.address))


def relay_label(address: str, name: str | None) -> str:
    """How reports name a relay: "Name (0x…)", or the address alone if it never registered."""
    return address if name is None else f"{name} ({address})"


def read_relays(
    client: RpcClient, poll_book: str, start: int, head: int, undecodable: list[str] | None = None
) -> dict[str, Relay]:
    """Every key that held the PollBook's RELAYER_ROLE in blocks [start, head], by lower-case
    address. A log that does not decode is skipped, and noted in `undecodable` if given."""
    role = "0x" + role_id("RELAYER_ROLE").hex()
    queries = ([[events.ROLE_GRANTED.topic, events.ROLE_REVOKED.topic], role], [events.RELAY_REGISTERED.topic])
    found = []
    for topics in queries:
        for log in client.iter_logs(poll_book, list(topics), start, head):
            try:
                found.append(events.decode_log(log))
            except EncodingError as exc:
                if undecodable is not None:
                    undecodable.append(f"block {log.get('blockNumber')}: {exc}")
    found.sort(key=lambda e: (e.block_number, e.log_index))
    stamps = client.block_timestamps(sorted({e.block_number for e in found if e.name != "RelayRegistered"}))
    relays: dict[str, Relay] = {}
    for event in found:
        address = event.args["relayer" if event.name == "RelayRegistered" else "account"]
        relay = relays.setdefault(address.lower(), Relay(address))
        if event.name == "RoleGranted" and not relay.active:
            relay.held.append((stamps[event.block_number], None))
        elif event.name == "RoleRevoked" and relay.active:
            relay.held[-1] = (relay.held[-1][0], stamps[event.block_number])
        elif event.name == "RelayRegistered":
            relay.name, relay.url = (_text(event.args[key]) for key in ("name", "url"))
    return relays


def _text(raw: bytes) -> str:
    """A registered string as UTF-8; bytes that are not UTF-8 shown as hex (the contract does not check)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + raw.hex()

"""The protocol core's wire formats are the compiled contracts' own: every event spec in
`veche_core.events` (name, field names and types, which are indexed) equals the ABI's, every
selector in `veche_core.calls` is a function of the contract it calls, and the BallotRejected
reasons, the ceremony's message kinds and complaint reasons are IPollBook's enums' members, value
for value.

The EIP-712 type hashes are compared with the contracts' in test_contract_digests.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from veche_core import calls, ceremony, events
from veche_node.contracts import contract_type

INTERFACE = Path(__file__).resolve().parents[2] / "contracts" / "interfaces" / "IPollBook.sol"


def _kind(parameter: dict) -> str:
    """An ABI parameter's type, a struct spelled as its tuple (as the specs spell it)."""
    return calls.abi_signature({"name": "", "inputs": [parameter]})[1:-1]


def _abi_events(name: str) -> dict[str, tuple]:
    return {
        entry["name"]: tuple((_kind(i), i["name"], i["indexed"]) for i in entry["inputs"])
        for entry in contract_type(name)["abi"]
        if entry["type"] == "event"
    }


def _spec_events(specs) -> dict[str, tuple]:
    return {spec.name: spec.fields for spec in specs}


def _abi_functions(name: str) -> dict[bytes, str]:
    return {
        calls.selector(calls.abi_signature(entry)): calls.abi_signature(entry)
        for entry in contract_type(name)["abi"]
        if entry["type"] == "function"
    }


# Events the contracts emit that no reader of the chain decodes: OpenZeppelin's (roles, ERC-5267)
# and the catalog's administration. A new event fails the test below until it is declared in
# veche_core.events or listed here.
NOT_READ = {
    "PollBook": {"RoleAdminChanged", "EIP712DomainChanged"},
    "IPollBook": set(),
    "CityPoints": {
        "RoleAdminChanged",
        "RoleGranted",
        "RoleRevoked",
        "EIP712DomainChanged",
        "RewardAdded",
        "RewardUpdated",
        "CharityRegistered",
        "CharityUpdated",
    },
    "ICityPoints": {"RewardAdded", "RewardUpdated", "CharityRegistered", "CharityUpdated"},
}


@pytest.mark.parametrize(
    "contract, specs",
    [
        ("PollBook", events.POLL_BOOK_EVENTS + events.ACCESS_CONTROL_EVENTS),
        ("IPollBook", events.POLL_BOOK_EVENTS),
        ("CityPoints", events.CITY_POINTS_EVENTS),
        ("ICityPoints", events.CITY_POINTS_EVENTS),
    ],
)
def test_event_specs_are_the_contracts_events(contract, specs):
    from_abi = _abi_events(contract)
    assert {name: fields for name, fields in from_abi.items() if name not in NOT_READ[contract]} == _spec_events(specs)
    assert NOT_READ[contract] <= set(from_abi)
    for spec in specs:
        entry = next(e for e in contract_type(contract)["abi"] if e["type"] == "event" and e["name"] == spec.name)
        assert spec.signature == calls.abi_signature(entry)


def test_event_forge_emits_poll_books_events():
    """EventForge declares no events of its own: each it emits is IPollBook's (or, for forged
    credits, ICityPoints' PointsCredited)."""
    forged = _abi_events("EventForge")
    assert forged and set(forged) <= set(_abi_events("IPollBook")) | {"PointsCredited"}
    specs = _spec_events(events.POLL_BOOK_EVENTS + events.CITY_POINTS_EVENTS)
    assert forged == {name: fields for name, fields in specs.items() if name in forged}
    assert set(forged) == {
        "PollCreated",
        "RegisterCommitted",
        "TokensIssued",
        "IssuancesRecorded",
        "BallotCast",
        "BallotsRelayed",
        "KeyShareSubmitted",
        "ResultPublished",
        "TrusteeKeyRegistered",
        "CeremonyStarted",
        "CeremonyMessagePosted",
        "ElectionKeyCertified",
        "PointsCredited",
    }


def test_selectors_are_the_contracts_functions():
    poll_book, city_points = _abi_functions("PollBook"), _abi_functions("CityPoints")
    assert poll_book[calls.CAST_BALLOTS_SELECTOR] == calls.CAST_BALLOTS
    assert poll_book[calls.RECORD_ISSUANCES_SELECTOR] == calls.RECORD_ISSUANCES
    assert poll_book[calls.REGISTER_TRUSTEE_KEY_SELECTOR] == calls.REGISTER_TRUSTEE_KEY
    assert poll_book[calls.POST_CEREMONY_MESSAGE_SELECTOR] == calls.POST_CEREMONY_MESSAGE
    assert poll_book[calls.RESTART_CEREMONY_SELECTOR] == calls.RESTART_CEREMONY
    assert all(name.split("(")[0] != "credit" for name in city_points.values())  # PollBook credits
    assert city_points[calls.BALANCE_OF_SELECTOR] == calls.BALANCE_OF
    assert poll_book[calls.EIP712_DOMAIN_SELECTOR] == city_points[calls.EIP712_DOMAIN_SELECTOR] == calls.EIP712_DOMAIN
    # the forge takes the same castBallots and recordIssuances calls
    forge = _abi_functions("EventForge")
    assert calls.CAST_BALLOTS_SELECTOR in forge and calls.RECORD_ISSUANCES_SELECTOR in forge


def _enum_members(name: str) -> list[str]:
    source = re.sub(r"//[^\n]*|/\*.*?\*/", "", INTERFACE.read_text(), flags=re.S)
    body = re.search(rf"enum\s+{name}\s*\{{([^}}]*)\}}", source).group(1)
    return [member.strip() for member in body.split(",") if member.strip()]


@pytest.mark.parametrize(
    "solidity, python",
    [
        ("BallotRejection", events.BallotRejection),
        ("CeremonyMessageKind", ceremony.MessageKind),
        ("ComplaintReason", ceremony.ComplaintReason),
    ],
)
def test_enums_are_the_contracts_member_for_member(solidity, python):
    members = _enum_members(solidity)
    assert members == [member.name for member in sorted(python)]
    assert [member.value for member in sorted(python)] == list(range(len(members)))


def test_rejection_reason_names():
    assert events.rejection_reason(events.BallotRejection.UnknownStratum) == "UnknownStratum"
    assert events.rejection_reason(events.BallotRejection.BadSignature) == "BadSignature"
    assert events.rejection_reason(events.BallotRejection.StaleSequence) == "2"  # retired: never emitted
    assert events.rejection_reason(7) == "7"

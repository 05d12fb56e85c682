"""The receipt's JSON form: every field, camelCase, bytes as 0x hex, and back."""

from __future__ import annotations

from dataclasses import astuple, fields

from eth_account import Account

from veche_core.receipt import RECEIPT_FORMAT_VERSION, Receipt, sign_receipt

POLL_BOOK = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def _camel(name: str) -> str:
    return "".join(w if i == 0 else w.title() for i, w in enumerate(name.split("_")))


def test_to_dict_has_every_field_and_round_trips():
    relayer, token = Account.create(), Account.create()
    receipt = sign_receipt(
        relayer.key, relayer.address, 31337, POLL_BOOK, 4, token.address, 2, bytes(range(32)), 1_790_000_000
    )
    receipt.verify_signature()
    for version in (receipt, receipt.with_inclusion(bytes([7]) * 32, 123)):
        data = version.to_dict()
        expected = {"version": RECEIPT_FORMAT_VERSION}
        for field, value in zip(fields(Receipt), astuple(version)):
            expected[_camel(field.name)] = "0x" + value.hex() if isinstance(value, bytes) else value
        assert data == expected and list(data) == list(expected)
        assert Receipt.from_dict(data) == version == Receipt.from_json(version.to_json())

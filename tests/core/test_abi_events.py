"""The strict event decoder against eth-abi (an independent implementation) and EIP-55."""

from __future__ import annotations

import eth_abi
import pytest
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from veche_core import abi, events
from veche_core.errors import EncodingError

addresses = st.binary(min_size=20, max_size=20)
ballot_data = st.tuples(
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=300),
    st.binary(max_size=300),
    st.binary(max_size=80),
)
poll_data = st.tuples(
    st.binary(min_size=32, max_size=32),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(st.binary(max_size=300), max_size=4),
    st.lists(addresses, max_size=4),
    st.integers(0, 255),
)


def _normal(value):
    if isinstance(value, (list, tuple)):
        return tuple(_normal(v) for v in value)
    if isinstance(value, str):
        return bytes.fromhex(value[2:])
    return value


@settings(max_examples=150, deadline=None)
@given(ballot_data)
def test_ballot_cast_data_matches_eth_abi(values):
    types = events.BALLOT_CAST.data_types
    data = eth_abi.encode(types, list(values))
    assert abi.encode(types, list(values)) == data
    assert abi.decode(types, data) == _normal(eth_abi.decode(types, data))


@settings(max_examples=100, deadline=None)
@given(poll_data)
def test_poll_created_data_matches_eth_abi(values):
    types = events.POLL_CREATED.data_types
    as_eth_abi = [*values[:8], [to_checksum_address(a) for a in values[8]], values[9]]
    data = eth_abi.encode(types, as_eth_abi)
    assert abi.decode(types, data) == _normal(eth_abi.decode(types, data))


# Protocol v2's key-ceremony events: their data decoded as eth-abi decodes it.
ceremony_data = {
    events.TRUSTEE_KEY_REGISTERED: st.tuples(st.integers(0, 2**64 - 1), st.binary(max_size=40)),
    events.CEREMONY_STARTED: st.integers(0, 6).flatmap(
        lambda n: st.tuples(
            st.integers(0, 255),
            st.lists(st.integers(0, 255), min_size=n, max_size=n),
            st.lists(st.binary(max_size=40), min_size=n, max_size=n),
        )
    ),
    events.CEREMONY_MESSAGE_POSTED: st.tuples(
        st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.binary(max_size=700)
    ),
    events.ELECTION_KEY_CERTIFIED: st.tuples(st.integers(0, 255), st.binary(max_size=40)),
}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(ceremony_data, key=lambda spec: spec.name)), st.data())
def test_ceremony_event_data_matches_eth_abi(spec, data):
    values = list(data.draw(ceremony_data[spec]))
    encoded = eth_abi.encode(spec.data_types, values)
    assert abi.encode(spec.data_types, values) == encoded
    assert abi.decode(spec.data_types, encoded) == _normal(eth_abi.decode(spec.data_types, encoded))
    position = data.draw(st.integers(0, len(encoded) - 1))
    mutated = bytearray(encoded)
    mutated[position] ^= 1 << data.draw(st.integers(0, 7))
    try:
        ours = abi.decode(spec.data_types, bytes(mutated))
    except EncodingError:
        return
    assert abi.encode(spec.data_types, list(ours)) == bytes(mutated)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=64), st.text(max_size=300))
def test_relay_registered_data_matches_eth_abi(name, url):
    """Strings (RelayRegistered's name and URL) decode as their UTF-8 bytes, laid out as eth-abi lays them."""
    types = events.RELAY_REGISTERED.data_types
    encoded = eth_abi.encode(types, [name, url])
    assert abi.encode(types, [name, url]) == encoded
    assert abi.decode(types, encoded) == (name.encode(), url.encode())
    assert eth_abi.decode(types, encoded) == (name, url)


@settings(max_examples=200, deadline=None)
@given(ballot_data, st.data())
def test_a_mutation_is_rejected_or_decodes_as_eth_abi_does(values, data):
    types = events.BALLOT_CAST.data_types
    encoded = bytearray(eth_abi.encode(types, list(values)))
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] ^= 1 << data.draw(st.integers(0, 7))
    try:
        ours = abi.decode(types, bytes(encoded))
    except EncodingError:
        return
    assert ours == _normal(eth_abi.decode(types, bytes(encoded)))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([events.BALLOT_CAST, events.POLL_CREATED]), st.data())
def test_only_the_canonical_encoding_decodes(spec, data):
    """One-pass strictness equals the definition: whatever decodes re-encodes to the very same
    bytes, for single bit flips anywhere (offsets, lengths, padding, values)."""
    values = data.draw(ballot_data if spec is events.BALLOT_CAST else poll_data)
    encoded = bytearray(abi.encode(spec.data_types, list(values)))
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(encoded) - 1))
        encoded[position] ^= 1 << data.draw(st.integers(0, 7))
    try:
        decoded = abi.decode(spec.data_types, bytes(encoded))
    except EncodingError:
        return
    assert abi.encode(spec.data_types, list(decoded)) == bytes(encoded)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d + bytes(32),  # trailing data
        lambda d: d[:-1],  # truncated
        lambda d: d[:23] + b"\x01" + d[24:],  # uint64 sequence with bit 64 set
    ],
)
def test_non_canonical_data_is_rejected(mutate):
    types = events.BALLOT_CAST.data_types
    data = eth_abi.encode(types, [1, 2, b"abc", b"d" * 40, b"e" * 65])
    with pytest.raises(EncodingError):
        abi.decode(types, mutate(data))


@settings(max_examples=100)
@given(addresses)
def test_checksum_address_is_eip55(raw):
    assert abi.checksum_address(raw) == to_checksum_address(raw)


def test_malformed_log_objects_are_encoding_errors():
    topic0 = "0x" + events.BALLOT_CAST.topic0.hex()
    for log in (
        {},
        {"topics": [topic0]},
        {"topics": ["0xzz"], "data": "0x"},
        {"topics": [topic0, "0x" + "00" * 32, "0x" + "11" * 32], "data": "0x12"},
    ):
        with pytest.raises(EncodingError):
            events.decode_log(log)

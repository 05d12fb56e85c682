"""The fast bulk-event decoders against the generic strict decoder, events.decode_log.

events.ballot_cast and points_credited read the two per-resident bulk events by their fixed
layout and fall back to decode_log for anything else. So each must accept exactly the logs that
decode_log decodes as its event, reject (EncodingError) everything else, and return the same
values. Checked on valid logs, on logs of other events, and on logs mutated in their hex, their
topics, their data, their keys and their types.
"""

from __future__ import annotations

import copy
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veche_core import abi, events
from veche_core.errors import EncodingError

# --- Building logs as a node sends them --------------------------------------------------------


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


def _uint_topic(value: int) -> str:
    return _hex(value.to_bytes(32, "big"))


def _address_topic(raw: bytes) -> str:
    return _hex(bytes(12) + raw)


def _log(topics: list[str], data: bytes, *, block: int = 9, index: int = 0) -> dict:
    return {
        "address": "0x" + "5f" * 20,
        "topics": topics,
        "data": _hex(data),
        "blockNumber": hex(block),
        "transactionHash": _hex(bytes(range(32))),
        "transactionIndex": "0x0",
        "logIndex": hex(index),
        "blockHash": _hex(b"\xbb" * 32),
        "removed": False,
    }


def ballot_cast_log(
    poll_id=7,
    token=b"\x01" * 20,
    sequence=3,
    stratum=2,
    ciphertext=b"ct",
    token_signature=b"ts",
    signature=b"sig",
    block=9,
    index=0,
) -> dict:
    data = abi.encode(events.BALLOT_CAST.data_types, [sequence, stratum, ciphertext, token_signature, signature])
    return _log([events.BALLOT_CAST_TOPIC, _uint_topic(poll_id), _address_topic(token)], data, block=block, index=index)


def tokens_issued_log(poll_id=7, pseudonyms=(b"\x42" * 32,), strata=(2,)) -> dict:
    data = abi.encode(events.TOKENS_ISSUED.data_types, [list(pseudonyms), list(strata)])
    return _log([events.TOKENS_ISSUED_TOPIC, _uint_topic(poll_id)], data)


def points_credited_log(resident=b"\x02" * 20, poll_id=7, amount=10, block=9, index=0) -> dict:
    data = abi.encode(["uint256"], [amount])
    return _log(
        [events.POINTS_CREDITED_TOPIC, _address_topic(resident), _uint_topic(poll_id)], data, block=block, index=index
    )


_INDEXED_SAMPLE = {"address": _address_topic(b"\x22" * 20), "bytes32": _hex(b"\x33" * 32)}
_DATA_SAMPLE = {
    "bytes32": b"\x44" * 32,
    "bytes": b"xy",
    "string": "Relay",
    "address": b"\x55" * 20,
    "bytes[]": [b"k", b""],
    "address[]": [b"\x66" * 20],
    "uint256[]": [1, 2],
    "bytes32[]": [b"\x77" * 32, b"\x78" * 32],
    "uint32[]": [1, 2],
    "uint8[]": [0, 2],
    events.ISSUANCE_RECORD + "[]": [(b"\x55" * 20, 1, b"\x44" * 32, 9, b"s" * 65, 0, (b"\x77" * 32,))],
}


def any_event_log(spec: events.EventSpec) -> dict:
    """A valid log of any declared event (small sample values)."""
    topics = ["0x" + spec.topic0.hex()] + [_INDEXED_SAMPLE.get(kind, _uint_topic(1)) for kind, _ in spec.indexed_fields]
    data = abi.encode(spec.data_types, [_DATA_SAMPLE.get(kind, 1) for kind in spec.data_types])
    return _log(topics, data)


EVENT_OF = {events.ballot_cast: "BallotCast", events.points_credited: "PointsCredited"}
BUILDER_OF = {
    events.ballot_cast: ballot_cast_log,
    events.points_credited: points_credited_log,
}
DECODERS = list(EVENT_OF)
DECODER_IDS = [EVENT_OF[d] for d in DECODERS]

# --- The reference: decode_log, projected onto what each fast decoder returns -------------------

REJECTED = "rejected"


def expected(decoder, log):
    """What `decoder` must return for `log`, from decode_log (REJECTED for EncodingError or
    another event)."""
    try:
        event = events.decode_log(log)
    except EncodingError:
        return REJECTED
    if event.name != EVENT_OF[decoder]:
        return REJECTED
    a = event.args
    if decoder is events.ballot_cast:
        return (
            a["pollId"],
            bytes.fromhex(a["token"][2:]),
            a["sequence"],
            a["stratum"],
            a["ciphertext"],
            a["tokenSignature"],
            a["signature"],
            event.block_number,
            event.log_index,
            event.transaction_hash,
        )
    return (a["pollId"], bytes.fromhex(a["resident"][2:]), a["amount"])


def observed(decoder, log):
    """What `decoder` returns (REJECTED for EncodingError; any other exception fails the test)."""
    try:
        value = decoder(log)
    except EncodingError:
        return REJECTED
    if decoder is events.ballot_cast:
        assert isinstance(value, events.CastLog)
    assert isinstance(value, tuple)
    for item in value:
        assert isinstance(item, (int, bytes)) and not isinstance(item, bool)
    return tuple(value)


# --- Valid logs ----------------------------------------------------------------------------------

uint256 = st.integers(0, 2**256 - 1)
raw_address = st.binary(min_size=20, max_size=20)


@settings(max_examples=150)
@given(
    uint256,
    raw_address,
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=300),
    st.binary(max_size=300),
    st.binary(max_size=80),
    st.integers(0, 2**40),
    st.integers(0, 2**16),
)
def test_ballot_cast_returns_what_decode_log_decodes(
    poll_id, token, sequence, stratum, ciphertext, token_signature, signature, block, index
):
    log = ballot_cast_log(poll_id, token, sequence, stratum, ciphertext, token_signature, signature, block, index)
    cast = events.ballot_cast(log)
    assert cast == events.CastLog(
        poll_id, token, sequence, stratum, ciphertext, token_signature, signature, block, index, bytes(range(32))
    )
    assert tuple(cast) == expected(events.ballot_cast, log)
    assert type(cast.token) is bytes and len(cast.token) == 20


@settings(max_examples=100)
@given(uint256, st.lists(st.tuples(st.binary(min_size=32, max_size=32), st.integers(0, 2**32 - 1)), max_size=40))
def test_tokens_issued_gives_each_issuance_stratum(poll_id, issuances):
    log = tokens_issued_log(poll_id, [p for p, _ in issuances], [s for _, s in issuances])
    assert events.tokens_issued(log) == (poll_id, tuple(s for _, s in issuances))


@pytest.mark.parametrize(("pseudonyms", "strata"), [((b"\x01" * 32,), ()), ((), (1,)), ((b"\x01" * 32,) * 2, (0,))])
def test_tokens_issued_with_arrays_of_different_lengths_is_an_encoding_error(pseudonyms, strata):
    with pytest.raises(EncodingError, match="differ in length"):
        events.tokens_issued(tokens_issued_log(7, pseudonyms, strata))


@pytest.mark.parametrize("builder", [ballot_cast_log, points_credited_log], ids=["BallotCast", "PointsCredited"])
def test_tokens_issued_refuses_another_event(builder):
    with pytest.raises(EncodingError):
        events.tokens_issued(builder())


@settings(max_examples=150)
@given(raw_address, uint256, uint256)
def test_points_credited_returns_what_decode_log_decodes(resident, poll_id, amount):
    log = points_credited_log(resident, poll_id, amount)
    assert events.points_credited(log) == (poll_id, resident, amount) == expected(events.points_credited, log)


@pytest.mark.parametrize(
    ("decoder", "log"),
    [
        (events.ballot_cast, ballot_cast_log(0, bytes(20), 0, 0, b"", b"", b"", 0, 0)),
        (
            events.ballot_cast,
            ballot_cast_log(2**256 - 1, b"\xff" * 20, 2**64 - 1, 2**32 - 1, b"\x00" * 1000, b"\xff" * 33, b"\x01" * 32),
        ),
        (events.points_credited, points_credited_log(bytes(20), 0, 0)),
        (events.points_credited, points_credited_log(b"\xff" * 20, 2**256 - 1, 2**256 - 1)),
    ],
    ids=["cast-zero", "cast-max", "credited-zero", "credited-max"],
)
def test_extreme_values_decode_as_decode_log_decodes_them(decoder, log):
    assert observed(decoder, log) == expected(decoder, log) != REJECTED


@pytest.mark.parametrize("decoder", DECODERS, ids=DECODER_IDS)
def test_a_log_as_nodes_send_it_takes_the_fast_path(decoder, monkeypatch):
    """The equivalence tests would pass trivially if everything fell back to decode_log."""

    def no_generic(log):
        raise AssertionError("fell back to decode_log")

    log = BUILDER_OF[decoder]()
    monkeypatch.setattr(events, "decode_log", no_generic)
    decoder(log)


def _spaced(value: str) -> str:
    return "0x" + " ".join(value[i : i + 2] for i in range(2, len(value), 2))


@pytest.mark.parametrize("decoder", DECODERS, ids=DECODER_IDS)
@pytest.mark.parametrize(
    "change",
    [
        lambda log: log.update(data="0x" + log["data"][2:].upper()),
        lambda log: log.update(topics=["0x" + t[2:].upper() for t in log["topics"]]),
        lambda log: log.update(data=_spaced(log["data"])),
        lambda log: log.update(topics=[log["topics"][0], _spaced(log["topics"][1]), log["topics"][2]]),
        lambda log: log.update(topics=tuple(log["topics"])),
        lambda log: log.update(blockNumber="0X9", logIndex=" 0x1 "),
        lambda log: log.update(address=None, blockHash=None, transactionIndex=None, removed=True),
    ],
    ids=["data-upper", "topics-upper", "data-spaced", "topic-spaced", "topics-tuple", "odd-numbers", "unread-fields"],
)
def test_forms_left_to_decode_log_decode_the_same(decoder, change):
    """Upper-case hex, spaces between bytes, a topics tuple: not the nodes' form, but accepted by
    decode_log, so by the fast decoders too, with the same values."""
    log = BUILDER_OF[decoder](poll_id=0xABCDEF)
    change(log)
    assert expected(decoder, log) != REJECTED
    assert observed(decoder, log) == expected(decoder, log)


# --- Other events --------------------------------------------------------------------------------

OTHER_EVENTS = [spec for spec in events.POLL_BOOK_EVENTS + events.CITY_POINTS_EVENTS]


_OTHERS = [(decoder, spec) for decoder in DECODERS for spec in OTHER_EVENTS if spec.name != EVENT_OF[decoder]]


@pytest.mark.parametrize(("decoder", "spec"), _OTHERS, ids=[f"{EVENT_OF[d]}-on-{s.name}" for d, s in _OTHERS])
def test_a_valid_log_of_another_event_is_an_encoding_error(decoder, spec):
    log = any_event_log(spec)
    assert events.decode_log(log).name == spec.name
    with pytest.raises(EncodingError):
        decoder(log)


@pytest.mark.parametrize("decoder", DECODERS, ids=DECODER_IDS)
@pytest.mark.parametrize("other", DECODERS, ids=DECODER_IDS)
def test_a_bulk_log_given_to_another_bulk_decoder_is_an_encoding_error(decoder, other):
    log = BUILDER_OF[other]()
    if other is decoder:
        assert observed(decoder, log) == expected(decoder, log) != REJECTED
    else:
        with pytest.raises(EncodingError):
            decoder(log)


# --- Mutations -----------------------------------------------------------------------------------
#
# A mutation is applied through a chooser with two methods, integer(lo, hi) and choice(seq), so
# the same mutations run under hypothesis (which shrinks a failure) and under a seeded
# random.Random (many more cases per second).

# Fields of the log envelope a fast decoder must check as decode_log does (transactionHash,
# blockNumber, logIndex): mutated like every other field, and tested one by one below.
ENVELOPE = ("blockNumber", "logIndex", "transactionHash")

HEX = "0123456789abcdef"
NOT_HEX = "gxXzZ-+.,_\x00\u00e9\u0663\uff10G\u00a0"
WHITESPACE = [" ", "\t", "\n", "  ", "\r\n", "\x0b"]
OTHER_TOPIC0 = ["0x" + topic.hex() for topic in events.BY_TOPIC] + ["0x" + "00" * 32]
WRONG_TYPES = [None, 0, 9, 1.5, True, [], {}, "", "0x", b"0x00", ["0x00"], {"0": "0x"}]


class _Hypothesis:
    def __init__(self, data):
        self._data = data

    def integer(self, lo, hi):
        return self._data.draw(st.integers(lo, hi))

    def choice(self, seq):
        return self._data.draw(st.sampled_from(list(seq)))


class _Random:
    def __init__(self, rng: random.Random):
        self._rng = rng

    def integer(self, lo, hi):
        return self._rng.randint(lo, hi)

    def choice(self, seq):
        return self._rng.choice(list(seq))


def _keys(log):
    return list(log) if isinstance(log, dict) else []


def _string_slots(log):
    """Where a string of the log can be mutated: ("topics", i) or (key,)."""
    slots = []
    if isinstance(log.get("topics"), list):
        slots += [("topics", i) for i, topic in enumerate(log["topics"]) if isinstance(topic, str)]
    slots += [(key,) for key in _keys(log) if isinstance(log[key], str)]
    return slots


def _get(log, slot):
    return log["topics"][slot[1]] if len(slot) == 2 else log[slot[0]]


def _set(log, slot, value):
    if len(slot) == 2:
        log["topics"][slot[1]] = value
    else:
        log[slot[0]] = value


def _string_mutation(value: str, c) -> str:
    kind = c.choice(
        [
            "hex",
            "hex",
            "hex",
            "bit",
            "word",
            "not-hex",
            "space",
            "delete",
            "truncate",
            "extend",
            "upper-all",
            "upper-hex",
            "upper-one",
            "prefix",
        ]
    )
    n = len(value)
    if kind == "hex" and n:
        at = c.integer(0, n - 1)
        return value[:at] + c.choice(HEX) + value[at + 1 :]
    if kind == "bit" and n > 2 and value[:2] == "0x":
        try:
            raw = bytearray(bytes.fromhex(value[2:]))
        except ValueError:
            return value
        if raw:
            raw[c.integer(0, len(raw) - 1)] ^= 1 << c.integer(0, 7)
        return _hex(bytes(raw))
    if kind == "word" and n >= 66:  # an ABI word (offset, length, value, padding) set to a telling value
        word = c.integer(0, (n - 2) // 64 - 1)
        new = c.choice([0, 1, 31, 32, 64, 96, 128, 160, 192, 224, (n - 2) // 2, 2**32, 2**64, 2**255, 2**256 - 1])
        at = 2 + 64 * word
        return value[:at] + f"{new:064x}" + value[at + 64 :]
    if kind == "not-hex":
        at = c.integer(0, n)
        return value[:at] + c.choice(NOT_HEX) + value[at + c.integer(0, 1) :]
    if kind == "space":
        at = c.integer(0, n)
        return value[:at] + c.choice(WHITESPACE) + value[at:]
    if kind == "delete" and n:
        at = c.integer(0, n - 1)
        return value[:at] + value[at + c.integer(1, 4) :]
    if kind == "truncate" and n:
        return value[: c.integer(0, n - 1)]
    if kind == "extend":
        return value + c.choice(
            ["0", "00", "0" * 64, "ff" * 32, "".join(c.choice(HEX) for _ in range(c.integer(1, 70)))]
        )
    if kind == "upper-all":
        return value.upper()
    if kind == "upper-hex":
        return value[:2] + value[2:].upper()
    if kind == "upper-one" and n:
        at = c.integer(0, n - 1)
        return value[:at] + value[at].upper() + value[at + 1 :]
    if kind == "prefix":
        return c.choice(
            [value[2:], "0X" + value[2:], "0x0x" + value[2:], "x" + value[2:], " " + value, "00" + value[2:]]
        )
    return value


def _mutate(log: dict, decoder, c) -> None:
    kind = c.choice(
        ["string"] * 6
        + ["drop-topic", "add-topic", "swap-topics", "topic0", "topics-type", "topic-type", "delete-key", "key-type"]
    )
    topics = log.get("topics")
    if kind == "string":
        slots = _string_slots(log)
        if slots:
            slot = c.choice(slots)
            _set(log, slot, _string_mutation(_get(log, slot), c))
    elif kind == "drop-topic" and isinstance(topics, list) and topics:
        del topics[c.integer(0, len(topics) - 1)]
    elif kind == "add-topic" and isinstance(topics, list):
        candidates = [*topics, _hex(bytes(32)), _uint_topic(c.integer(0, 2**256 - 1))] if topics else []
        new = c.choice(candidates + OTHER_TOPIC0)
        topics.insert(c.integer(0, len(topics)), new)
    elif kind == "swap-topics" and isinstance(topics, list) and len(topics) >= 2:
        i, j = c.integer(0, len(topics) - 1), c.integer(0, len(topics) - 1)
        topics[i], topics[j] = topics[j], topics[i]
    elif kind == "topic0" and isinstance(topics, list) and topics:
        topics[0] = c.choice(OTHER_TOPIC0)
    elif kind == "topics-type" and "topics" in log:
        log["topics"] = c.choice(
            [
                None,
                "",
                "0x",
                3,
                tuple(topics) if isinstance(topics, list) else (),
                {str(i): t for i, t in enumerate(topics)} if isinstance(topics, list) else {},
                ",".join(topics) if isinstance(topics, list) and all(isinstance(t, str) for t in topics) else [],
            ]
        )
    elif kind == "topic-type" and isinstance(topics, list) and topics:
        at = c.integer(0, len(topics) - 1)
        old = topics[at]
        topics[at] = c.choice([*WRONG_TYPES, old.encode() if isinstance(old, str) else old, [old]])
    elif kind == "delete-key":
        keys = _keys(log)
        if keys:
            del log[c.choice(keys)]
    elif kind == "key-type":
        keys = _keys(log)
        if keys:
            key = c.choice(keys)
            old = log[key]
            log[key] = c.choice([*WRONG_TYPES, old.encode() if isinstance(old, str) else old, [old]])


def _mutated(c) -> tuple:
    decoder = c.choice(DECODERS)
    builder = c.choice(
        [BUILDER_OF[decoder]] * 6 + [*BUILDER_OF.values(), lambda: any_event_log(c.choice(OTHER_EVENTS))]
    )
    log = builder()
    if builder is ballot_cast_log:  # data of varied shape, so that truncations and word changes hit everything
        sizes = [c.choice([0, 1, 31, 32, 33, 64, 100]) for _ in range(3)]
        log = ballot_cast_log(
            c.integer(0, 2**256 - 1),
            bytes(c.integer(0, 255) for _ in range(20)),
            c.integer(0, 2**64 - 1),
            c.integer(0, 2**32 - 1),
            b"\xc1" * sizes[0],
            b"\x75" * sizes[1],
            b"\x51" * sizes[2],
        )
    original = copy.deepcopy(log)
    for _ in range(c.integer(1, 3)):
        _mutate(log, decoder, c)
    return decoder, original, log


def _check(decoder, log) -> object:
    want = expected(decoder, log)
    got = observed(decoder, log)
    assert got == want, f"{EVENT_OF[decoder]} decoder on {log!r}: got {got!r}, decode_log gives {want!r}"
    return got


@settings(max_examples=600)
@given(st.data())
def test_a_mutated_log_decodes_exactly_as_decode_log_decodes_it(data):
    decoder, _, log = _mutated(_Hypothesis(data))
    _check(decoder, log)


def test_many_mutated_logs_decode_exactly_as_decode_log_decodes_them():
    """A seeded sweep (bounded: at most 20,000 logs or ~4 s), and a check that it is not vacuous:
    plenty of mutated logs are rejected, and plenty still decode, some to other values than the
    log they came from."""
    rng = _Random(random.Random(20240611))
    outcomes = {"rejected": 0, "same": 0, "changed": 0}
    deadline = time.monotonic() + 4
    for _ in range(20_000):
        if time.monotonic() > deadline:
            break
        decoder, original, log = _mutated(rng)
        got = _check(decoder, log)
        if got == REJECTED:
            outcomes["rejected"] += 1
        else:
            outcomes["same" if got == expected(decoder, original) else "changed"] += 1
    tried = sum(outcomes.values())  # one outcome a mutated log
    assert tried >= 2_000, outcomes
    assert outcomes["rejected"] > tried // 4, outcomes
    assert outcomes["same"] > tried // 20, outcomes
    assert outcomes["changed"] > tried // 100, outcomes


# --- A divergence, kept visible ------------------------------------------------------------------

_ENVELOPE_CASES = [(decoder, key) for decoder in BUILDER_OF for key in ENVELOPE]


@pytest.mark.parametrize(("decoder", "key"), _ENVELOPE_CASES, ids=[f"{EVENT_OF[d]}-{k}" for d, k in _ENVELOPE_CASES])
def test_envelope_fields_decode_log_checks_are_checked_too(decoder, key):
    """decode_log requires transactionHash, blockNumber and logIndex, as hex; so do the fast
    paths, though only the BallotCast's position is used."""
    for change in ("missing", "not-hex"):
        log = BUILDER_OF[decoder]()
        if change == "missing":
            del log[key]
        else:
            log[key] = "0xzz"
        assert expected(decoder, log) == REJECTED
        assert observed(decoder, log) == REJECTED, f"{EVENT_OF[decoder]} accepted a log with {key} {change}"


def test_issuances_recorded_gives_each_item_and_refuses_another_event():
    item = (b"\x55" * 20, 3, b"\x44" * 32, 2**64 - 1, b"s" * 65, 7, (b"\x77" * 32, b"\x78" * 32))
    spec = events.ISSUANCES_RECORDED
    log = _log([spec.topic, _uint_topic(5)], abi.encode(spec.data_types, [[item, item[:6] + ((),)]]))
    poll_id, items = events.issuances_recorded(log)
    assert poll_id == 5 and items == [events.IssuanceItem(*item), events.IssuanceItem(*item[:6], ())]
    with pytest.raises(EncodingError):
        events.issuances_recorded(tokens_issued_log())
    # strict: a byte after the last tail is refused, as everywhere
    with pytest.raises(EncodingError):
        events.issuances_recorded({**log, "data": log["data"] + "00" * 32})

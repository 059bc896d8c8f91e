"""adapters/event_decoding.py gives what the library's mapper gives: the same class, the same
attribute values of the same types, or the same error, for every stored shape.

Compared on every pinned example (tests/fixtures/events), on the events the stories of
test_event_shapes trigger, and on generated states: marker objects (`{"_type_", "_data_"}`) at
any depth, registered or not, well formed or not, and the JSON corners where msgspec and `json`
part ways (NaN, Infinity, huge numbers, lone surrogates, stray bytes).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Mapper, StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clock import ManualClock
from adapters.event_decoding import IDS_KEPT, EventDecoder
from commands.application import BillingApplication
from ledger.invoices import Invoice
from tests.event_examples import FIXTURES, read_example
from tests.unit.given import T0
from tests.unit.test_event_shapes import every_invoice_event, every_payment_and_series_event, every_provider_event

EXAMPLES = sorted(FIXTURES.glob("*/v*.json"))


@pytest.fixture(scope="module")
def mapper() -> Mapper[UUID]:
    app = BillingApplication(clock=ManualClock(T0), env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    return app.mapper


def shape(value: Any) -> Any:
    """A value with its type at every depth, so that 1 and 1.0 and True differ, and NaN equals NaN."""
    if isinstance(value, dict):
        return ("dict", [(shape(k), shape(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [shape(item) for item in value])
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    return (type(value).__name__, value)


def outcome(decode: Any, stored: StoredEvent) -> Any:
    try:
        event = decode(stored)
    except Exception as error:
        return ("error", type(error).__name__, str(error))
    return ("event", type(event), shape(vars(event)))


def assert_same(mapper: Mapper[UUID], decoder: EventDecoder, stored: StoredEvent) -> None:
    expected = outcome(mapper.to_domain_event, stored)
    assert outcome(decoder.to_domain_event, stored) == expected
    # As a row's values, the way a reader that selects the rows itself would call it.
    raw = outcome(lambda s: decoder.decode(s.topic, s.originator_id, s.originator_version, s.state), stored)
    assert raw == expected


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}@{p.stem}")
def test_every_pinned_example_decodes_as_the_library_decodes_it(path: Path, mapper: Mapper[UUID]) -> None:
    example = read_example(path)
    decoder = EventDecoder(mapper)
    for originator_id in (UUID(example["originator_id"]), example["originator_id"]):  # PostgreSQL, SQLite
        stored = StoredEvent(
            originator_id=originator_id,
            originator_version=example["originator_version"],
            topic=example["topic"],
            state=json.dumps(example["state"]).encode(),
        )
        assert outcome(mapper.to_domain_event, stored)[0] == "event"
        assert_same(mapper, decoder, stored)


def test_every_event_the_stories_trigger_decodes_as_the_library_decodes_it(mapper: Mapper[UUID]) -> None:
    decoder = EventDecoder(mapper)
    events = every_invoice_event() + every_payment_and_series_event() + every_provider_event()
    assert len({type(event) for event in events}) > 20
    for event in events:
        stored = mapper.to_stored_event(event)
        assert_same(mapper, decoder, stored)
        text_id = StoredEvent(str(stored.originator_id), stored.originator_version, stored.topic, stored.state)
        assert_same(mapper, decoder, text_id)


def test_ids_read_as_text_stay_right_past_the_ones_kept(mapper: Mapper[UUID]) -> None:
    decoder = EventDecoder(mapper)
    state = b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-03-02T09:00:04+00:00"},"memo":null}'
    ids = [uuid4() for _ in range(IDS_KEPT + 2)]
    for originator_id in [*ids, ids[0], ids[-1]]:
        event = decoder.decode("invoice.details-changed", str(originator_id), 3, state)
        assert type(event) is Invoice.DetailsChanged
        assert event.originator_id == originator_id


@pytest.mark.parametrize(
    "state",
    [
        b'{"timestamp":{"_type_":"no_such_type","_data_":"x"}}',  # an unregistered marker
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"not a date"}}',
        b'{"timestamp":{"_type_":"datetime_iso","_data_":12}}',
        b'{"a":{"_type_":"uuid_hex","_data_":{"_type_":"uuid_hex","_data_":"00"}}}',  # innermost first
        b'{"a":[{"_type_":"decimal_str","_data_":"1.10"},{"_type_":"uuid_hex","_data_":"ab","x":1}]}',
        b'{"a":{"_type_":"decimal_str","_data_":"1.5","x":1},"b":{"_type_":"decimal_str"}}',  # not markers
        b'{"a":NaN,"b":Infinity,"c":-Infinity,"d":1e400}',
        b'{"a":"\\ud800"}',
        b'{"a":123456789012345678901234567890,"b":-0,"c":-0.0,"d":1.0,"e":true}',
        b'\xef\xbb\xbf{"a":1}',
        b'{"a":1} x',
        b' {"a":1} ',
        b'{"a":1,"a":2}',
        b'{"a":"\xff"}',
        b"[1,2]",
        b'{"_type_":"decimal_str","_data_":"1"}',  # the whole state a marker
        b"",
        b'{"class_version":7}',
    ],
)
def test_corners_decode_or_fail_as_the_library_does(state: bytes, mapper: Mapper[UUID]) -> None:
    stored = StoredEvent(uuid4(), 4, "invoice.details-changed", state)
    assert_same(mapper, EventDecoder(mapper), stored)


def test_an_old_class_version_is_upcast_as_the_library_does(mapper: Mapper[UUID]) -> None:
    olds = [path for path in EXAMPLES if read_example(path)["class_version"] > 1]
    assert olds, "a pinned example of a class_version above 1"
    for path in olds:
        example = read_example(path.with_name("v1.json"))
        stored = StoredEvent(UUID(example["originator_id"]), 2, example["topic"], json.dumps(example["state"]).encode())
        event = EventDecoder(mapper).to_domain_event(stored)
        assert getattr(type(event), "class_version", 1) > 1
        assert_same(mapper, EventDecoder(mapper), stored)


MARKERS = st.one_of(
    st.builds(lambda d: {"_type_": "datetime_iso", "_data_": d.isoformat()}, st.datetimes()),
    st.builds(lambda u: {"_type_": "uuid_hex", "_data_": u.hex}, st.uuids()),
    st.builds(lambda d: {"_type_": "decimal_str", "_data_": str(d)}, st.decimals(allow_nan=False)),
    st.fixed_dictionaries({"_type_": st.sampled_from(["uuid_hex", "datetime_iso", "other"]), "_data_": st.text()}),
)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    st.text(),
    MARKERS,
)
TREES = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["_type_", "_data_", "a", "b", "timestamp"]) | st.text(), children, max_size=4
        )
    ),
    max_leaves=12,
)
TOPICS = st.sampled_from(sorted({read_example(path)["topic"] for path in EXAMPLES}))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    state=st.dictionaries(st.text(max_size=8), TREES, max_size=6),
    topic=TOPICS,
    ascii_only=st.booleans(),
    text_id=st.booleans(),
)
def test_generated_states_decode_as_the_library_decodes_them(
    state: dict[str, Any], topic: str, ascii_only: bool, text_id: bool, mapper: Mapper[UUID]
) -> None:
    try:
        data = json.dumps(state, ensure_ascii=ascii_only, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate written as itself: no store holds such bytes
        data = json.dumps(state).encode()
    originator_id = uuid4()
    stored = StoredEvent(str(originator_id) if text_id else originator_id, 5, topic, data)
    assert_same(mapper, EventDecoder(mapper), stored)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=40) | st.builds(lambda s: s.encode(), st.text(alphabet='{}[]":,0123456789.eE-+ \\u')))
def test_arbitrary_bytes_decode_or_fail_as_the_library_does(data: bytes, mapper: Mapper[UUID]) -> None:
    assert_same(mapper, EventDecoder(mapper), StoredEvent(uuid4(), 1, "payment.refunded", data))


def test_decimal_markers_come_back_as_decimals(mapper: Mapper[UUID]) -> None:
    state = b'{"a":{"_type_":"decimal_str","_data_":"1.10"}}'
    event = EventDecoder(mapper).decode("invoice.details-changed", uuid4(), 2, state)
    assert type(event.a) is Decimal
    assert str(event.a) == "1.10"

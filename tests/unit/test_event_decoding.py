"""adapters/event_decoding.py gives what the library's mapper gives: the same class, the same
attribute values of the same types, or the same error, for every stored shape.

Compared on every pinned example (tests/fixtures/events), on the events the stories of
test_event_shapes trigger, and on generated states: marker objects (`{"_type_", "_data_"}`) at
any depth, registered or not, well formed or not, and the JSON corners where msgspec and `json`
part ways (NaN, Infinity, huge numbers, lone surrogates, stray bytes).

Each comparison is made twice: by a decoder that has not met the topic (the general way) and by
one that learned the topic's shape from another row (`taught`): the learned shape's path, or its
fall back where the row is of another shape (a marker where the shape has a plain value and the
other way round, keys missing, added, repeated or in another order, an older class version).
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
from adapters.event_decoding import IDS_KEPT, MISSES_KEPT, EventDecoder
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


class Watched(EventDecoder):
    """A decoder that counts the rows it decodes the general way (not by a learned shape)."""

    general = 0

    def _general(self, topic: str, originator_id: UUID | str, version: int, state: bytes, shape: Any) -> Any:
        self.general += 1
        return super()._general(topic, originator_id, version, state, shape)


def taught(mapper: Mapper[UUID], row: StoredEvent) -> Watched:
    """A decoder that has decoded `row`: it learned the shape of the row's topic from it if it
    decodes (and counted it as decoded the general way)."""
    decoder = Watched(mapper)
    outcome(decoder.to_domain_event, row)  # an error here is the library's (compared elsewhere)
    assert decoder.general == 1
    return decoder


def as_row(stored: StoredEvent, position: int = 7) -> tuple[int, UUID | str, int, str, bytes]:
    return (position, stored.originator_id, stored.originator_version, stored.topic, stored.state)


def assert_same(
    mapper: Mapper[UUID], decoder: EventDecoder, stored: StoredEvent, teacher: StoredEvent | None = None
) -> None:
    """`decoder` and a decoder taught by `teacher` (by default `stored` itself) decode `stored`
    as the library does: one at a time, by its values, and in a batch."""
    expected = outcome(mapper.to_domain_event, stored)
    assert outcome(decoder.to_domain_event, stored) == expected
    # As a row's values, the way a reader that selects the rows itself would call it.
    raw = outcome(lambda s: decoder.decode(s.topic, s.originator_id, s.originator_version, s.state), stored)
    assert raw == expected
    learned = taught(mapper, teacher or stored)
    assert outcome(learned.to_domain_event, stored) == expected
    batch = outcome(lambda s: learned.decode_rows([as_row(s)], ("",), str)[0][1], stored)
    assert batch == expected


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


# ------------------------------------------------------------------------------ learned shapes


def test_a_pinned_example_decodes_by_its_learned_shape_once_met(mapper: Mapper[UUID]) -> None:
    for path in EXAMPLES:
        example = read_example(path)
        stored = StoredEvent(
            example["originator_id"],
            example["originator_version"],
            example["topic"],
            json.dumps(example["state"]).encode(),
        )
        decoder = taught(mapper, stored)
        for _ in range(2):
            assert outcome(decoder.to_domain_event, stored) == outcome(mapper.to_domain_event, stored)
        assert decoder.general == 1, f"{path}: decoded the general way again"


def test_every_story_event_decodes_by_its_learned_shape_once_met(mapper: Mapper[UUID]) -> None:
    events = every_invoice_event() + every_payment_and_series_event() + every_provider_event()
    for event in events:
        stored = mapper.to_stored_event(event)
        decoder = taught(mapper, stored)
        text_id = StoredEvent(str(stored.originator_id), stored.originator_version, stored.topic, stored.state)
        for row in (stored, text_id):
            assert outcome(decoder.to_domain_event, row) == outcome(mapper.to_domain_event, row)
        assert decoder.general == 1, f"{stored.topic}: decoded the general way again"


TEACHER = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-03-02T09:00:04+00:00"},"memo":"x","amount":5,'
    b'"lines":[{"id":{"_type_":"uuid_hex","_data_":"6a2f41a3c54b4e5c8c3f6f1fbd1f4a2e"}}],"rate":{"_type_":"decimal_str","_data_":"0.2"}}'
)


@pytest.mark.parametrize(
    "state",
    [
        TEACHER,
        TEACHER.replace(b'"memo":"x"', b'"memo":"a much longer memo, \\u00e9 \\"quoted\\""'),  # same shape
        TEACHER.replace(b'"memo":"x"', b'"memo":{"_type_":"decimal_str","_data_":"1.5"}'),  # a marker, plain expected
        TEACHER.replace(b'"memo":"x"', b'"memo":{"_type_":"no_such_type","_data_":"1.5"}'),
        TEACHER.replace(b'"memo":"x"', b'"memo":[1,{"_type_":"decimal_str","_data_":"1.5"}]'),  # a container
        TEACHER.replace(b'{"_type_":"datetime_iso","_data_":"2026-03-02T09:00:04+00:00"}', b'"2026-03-02"'),  # plain
        TEACHER.replace(b'{"_type_":"datetime_iso","_data_":"2026-03-02T09:00:04+00:00"}', b"null"),
        TEACHER.replace(b'"_type_":"datetime_iso"', b'"_type_":"uuid_hex"'),  # a marker of another type
        TEACHER.replace(b'"_type_":"datetime_iso"', b'"_type_":"no_such_type"'),
        TEACHER.replace(b'"_data_":"2026-03-02T09:00:04+00:00"', b'"_data_":"not a date"'),
        TEACHER.replace(b'"_data_":"2026-03-02T09:00:04+00:00"', b'"_data_":20260302'),
        TEACHER.replace(b'"_data_":"2026-03-02T09:00:04+00:00"', b'"_data_":"2026-03-02T09:00:04+00:00","x":1'),
        TEACHER.replace(b'"_type_":"datetime_iso",', b""),  # half a marker
        TEACHER.replace(b'"_type_":"datetime_iso"', b'"_type_":"uuid_hex","_type_":"datetime_iso"'),  # json: the last
        TEACHER.replace(b'"_type_":"datetime_iso"', b'"_type_":"datetime_iso","_type_":"uuid_hex"'),
        TEACHER.replace(b'"amount":5', b'"amount":5.0'),
        TEACHER.replace(b'"amount":5', b'"amount":123456789012345678901234567890'),
        TEACHER.replace(b'"amount":5', b'"amount":1e400'),
        TEACHER.replace(b'"amount":5', b'"amount":NaN'),
        TEACHER.replace(b'"amount":5', b'"amount":-0.0'),
        TEACHER.replace(b'"amount":5', b'"amount":true'),
        TEACHER.replace(b'"amount":5', b'"amount":{"_type_":"decimal_str","_data_":"5"}'),
        TEACHER.replace(b'"lines":[', b'"lines":null,"x":['),  # plain where a container was, and a new key
        TEACHER.replace(
            b'"lines":[{"id":{"_type_":"uuid_hex","_data_":"6a2f41a3c54b4e5c8c3f6f1fbd1f4a2e"}}]', b'"lines":[]'
        ),
        TEACHER.replace(b'"lines":[{"id":', b'"lines":{"_type_":"uuid_hex","_data_":"00"},"y":[{"id":'),
        TEACHER.replace(b'"memo":"x",', b""),  # a key missing
        TEACHER.replace(b'"memo":"x",', b'"memo":"x","extra":1,'),  # a key added
        TEACHER.replace(b'"memo":"x",', b'"memo":"x","memo":"y",'),  # a key repeated: json keeps the last value
        TEACHER.replace(b'"memo":"x",', b'"memo":"x","extra":1,"amount":6,'),  # repeated and added: as many keys
        TEACHER.replace(b'"memo":"x",', b'"memo":"x","amount":6,'),
        TEACHER.replace(b'"memo":"x",', b'"memo":"x","class_version":1,'),
        TEACHER.replace(b'"memo":"x",', b'"memo":"x","class_version":7,'),
        TEACHER.replace(b'"memo":"x",', b'"memo":"x","originator_id":"elsewhere",'),
        b'{"memo":"x","amount":5,' + TEACHER[1:].replace(b',"memo":"x","amount":5', b""),  # another key order
        b" " + TEACHER + b" ",
        TEACHER + b" x",
        TEACHER.replace(b'"memo":"x"', b'"memo":"\\ud800"'),
        TEACHER.replace(b'"memo":"x"', b'"memo":"\xff"'),
        b'{"_type_":"decimal_str","_data_":"1"}',
        b"[1,2]",
        b"",
    ],
)
def test_a_row_of_another_shape_decodes_as_the_library_decodes_it(state: bytes, mapper: Mapper[UUID]) -> None:
    teacher = StoredEvent(uuid4(), 4, "invoice.details-changed", TEACHER)
    for originator_id in (uuid4(), str(uuid4())):
        assert_same(
            mapper, EventDecoder(mapper), StoredEvent(originator_id, 4, "invoice.details-changed", state), teacher
        )


def test_an_old_class_version_is_upcast_by_a_learned_shape(mapper: Mapper[UUID]) -> None:
    olds = [path for path in EXAMPLES if read_example(path)["class_version"] > 1]
    assert olds, "a pinned example of a class_version above 1"
    for path in olds:
        rows = []
        for version in range(1, read_example(path)["class_version"] + 1):
            example = read_example(path.with_name(f"v{version}.json"))
            state = json.dumps(example["state"]).encode()
            rows.append(StoredEvent(example["originator_id"], 2, example["topic"], state))
        for teacher in rows:
            decoder = taught(mapper, teacher)
            # The teacher's own version by its learned shape (upcast from the stored class_version
            # or from 1 without one); the others' keys differ: they miss, and decode the general way.
            assert_same(mapper, decoder, teacher, teacher)
            for row in rows:
                assert outcome(decoder.to_domain_event, row) == outcome(mapper.to_domain_event, row)
            assert outcome(decoder.to_domain_event, teacher)[1] is type(decoder.to_domain_event(rows[-1]))


def test_a_shape_that_misses_too_often_is_no_longer_tried(mapper: Mapper[UUID]) -> None:
    decoder = taught(mapper, StoredEvent(uuid4(), 4, "invoice.details-changed", TEACHER))
    teacher = StoredEvent(uuid4(), 4, "invoice.details-changed", TEACHER)
    assert outcome(decoder.to_domain_event, teacher) == outcome(mapper.to_domain_event, teacher)
    assert decoder.general == 1
    for extra in range(MISSES_KEPT + 2):  # each row with another key: a miss, and a shape learned from it
        state = TEACHER.replace(b'"memo":"x",', f'"memo":"x","extra{extra}":1,'.encode())
        row = StoredEvent(uuid4(), 4, "invoice.details-changed", state)
        assert outcome(decoder.to_domain_event, row) == outcome(mapper.to_domain_event, row)
    general = decoder.general
    assert outcome(decoder.to_domain_event, teacher) == outcome(mapper.to_domain_event, teacher)
    assert decoder.general == general + 1  # not tried: the general way


def test_a_miss_of_the_same_keys_widens_the_shape(mapper: Mapper[UUID]) -> None:
    """A value met as plain and as a marker (an optional timestamp, say) is then walked, and both
    kinds decode by the learned shape."""
    decoder = taught(mapper, StoredEvent(uuid4(), 4, "invoice.details-changed", TEACHER))
    other = TEACHER.replace(b'"memo":"x"', b'"memo":{"_type_":"decimal_str","_data_":"1.5"}')
    rows = [StoredEvent(uuid4(), 4, "invoice.details-changed", state) for state in (other, TEACHER, other)]
    for row in rows:
        assert outcome(decoder.to_domain_event, row) == outcome(mapper.to_domain_event, row)
    assert decoder.general == 2  # the teacher, and the first miss


def test_a_batch_decodes_the_wanted_topics_and_hands_the_others_over(mapper: Mapper[UUID]) -> None:
    state = b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-03-02T09:00:04+00:00"},"memo":null}'
    ids = [uuid4() for _ in range(3)]
    rows: list[tuple[int, UUID | str, int, str, bytes]] = [
        (10, str(ids[0]), 1, "invoice.details-changed", state),
        (11, ids[1], 2, "usage-record.recorded", b"not even JSON"),
        (13, str(ids[2]), 3, "invoice.details-changed", state),
        (14, ids[2], 4, "invoice.details-changed", b'{"memo":1}'),
    ]
    decoded = EventDecoder(mapper).decode_rows(rows, ("invoice.",), lambda topic: ("other", topic))
    assert [position for position, _ in decoded] == [10, 11, 13, 14]
    assert decoded[1][1] == ("other", "usage-record.recorded")
    for (_, originator_id, version, topic, stored_state), (_, event) in zip(rows, decoded, strict=True):
        if topic.startswith("invoice."):
            expected = mapper.to_domain_event(StoredEvent(originator_id, version, topic, stored_state))
            assert (type(event), shape(vars(event))) == (type(expected), shape(vars(expected)))


STATES = st.dictionaries(st.text(max_size=8), TREES, min_size=1, max_size=6)


@st.composite
def teacher_and_row(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A state, and another made from it: each value kept, or another of any kind, or dropped;
    keys added; the order shuffled or not."""
    teacher = draw(STATES)
    row: dict[str, Any] = {}
    for key, value in teacher.items():
        action = draw(st.sampled_from(["keep", "keep", "keep", "other", "drop"]))
        if action == "keep":
            row[key] = value
        elif action == "other":
            row[key] = draw(TREES)
    row.update(draw(st.dictionaries(st.text(max_size=8), TREES, max_size=2)))
    if draw(st.booleans()):
        items = draw(st.permutations(list(row.items())))
        row = dict(items)
    return teacher, row


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pair=teacher_and_row(), topic=TOPICS, text_id=st.booleans())
def test_generated_rows_decode_by_a_learned_shape_as_the_library_decodes_them(
    pair: tuple[dict[str, Any], dict[str, Any]], topic: str, text_id: bool, mapper: Mapper[UUID]
) -> None:
    teacher_state, state = (json.dumps(s, separators=(",", ":")).encode() for s in pair)
    originator_id = uuid4()
    stored = StoredEvent(str(originator_id) if text_id else originator_id, 5, topic, state)
    teacher = StoredEvent(uuid4(), 5, topic, teacher_state)
    assert_same(mapper, EventDecoder(mapper), stored, teacher)

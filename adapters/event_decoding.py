"""Stored events decoded with msgspec into exactly the objects the library's mapper makes.

The stored format is the library's (eventsourcing's `JSONTranscoder`): the state is JSON, and a
value of a registered type is an object of exactly two keys, `{"_type_": name, "_data_": ...}`
(a timestamp is `{"_type_": "datetime_iso", "_data_": "2026-03-02T09:00:04+00:00"}`). The
library parses it with `json` and an `object_hook` called on every JSON object, in Python; that,
and building a `Notification` per row, caps a replay near 40k events/s (docs/throughput.md
§Replay). Here msgspec parses the state into plain dicts and lists, and one walk turns the marker
objects into values with the mapper's own transcodings, innermost first as the hook does (the
general way). Once a topic has been decoded so, its later rows are parsed by msgspec typed to the
shape learned from it (`_Shape`: which keys, which hold a marker of which name, which hold plain
values that cannot hide one): the checks of that shape run in C, only the markers and the values
that may hide one are touched in Python, and a row msgspec refuses is decoded the general way.

Equivalence with `Mapper.to_domain_event` (tests/unit/test_event_decoding.py checks it on every
pinned example and on generated events): the same class (from the topic), the same attribute
dictionary (originator id converted the library's way, upcast from the stored `class_version`).
Wherever msgspec and `json` could disagree, msgspec refuses the input (NaN, Infinity, 1e400, a
lone surrogate, a byte-order mark, trailing bytes): on any failure the row is decoded again by
the library's mapper, so its result or its error (`MapperDeserialisationError`) is the one given.
Nothing here writes: events are still encoded by the library, so the format does not change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypedDict
from uuid import UUID

import msgspec
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    Transcoding,
    UUIDAsHex,
    find_id_convertor,
    str_to_uuid_convertor,
)
from eventsourcing.utils import resolve_topic

# A stored row as selected: position, originator id (a UUID, or its text), originator version, topic, state.
Row = tuple[int, UUID | str, int, str, bytes]
_EVERY_TOPIC = ("",)

_TYPE = "_type_"
_DATA = "_data_"
# Originator ids read as text (SQLite) are parsed once per aggregate, not once per event: UUID(str)
# costs about as much as parsing a small event's JSON. A UUID never changes, so events may share it.
IDS_KEPT = 10_000


class _Topic:
    """What decoding one topic needs, resolved once."""

    __slots__ = ("class_version", "cls", "text_ids_are_uuids", "upcasters")

    def __init__(self, topic: str) -> None:
        self.cls: type[Any] = resolve_topic(topic)
        self.class_version: int = getattr(self.cls, "class_version", 1)
        self.upcasters: dict[int, Callable[[dict[str, Any]], None]] = {
            version: getattr(self.cls, f"upcast_v{version}_v{version + 1}")
            for version in range(1, self.class_version)
            if hasattr(self.cls, f"upcast_v{version}_v{version + 1}")
        }
        self.text_ids_are_uuids = find_id_convertor(self.cls, str) is str_to_uuid_convertor


class _Marker(msgspec.Struct, forbid_unknown_fields=True, gc=False, rename={"name": _TYPE, "data": _DATA}):
    """A marker object whose data is text, as msgspec checks it: both keys and no third, the name
    fixed per registered transcoding by a subclass (`_marker`); a repeated key keeps its last
    value, as in json's dict, once every value passed the check (else the row goes the general
    way). Only strings in it: the collector need not track it."""

    name: str
    data: str


# The kinds of a state's top-level values, as learned: plain JSON (a string, number, boolean or
# null: no marker can hide in it), a marker of one registered name with text data (the name), or
# anything (a container or a mix, walked as the whole state was before).
_PLAIN = "plain"
_ANY = "any"
_Plain = str | int | float | bool | None
# A topic whose states come in more shapes than a learned one and its merges cover (old class
# versions beside new ones, optional keys) is no longer tried after this many misses.
MISSES_KEPT = 8


def _transcoded(transcoding: Transcoding) -> Callable[[str], Any]:
    """The transcoding's decode of text data. The library's own three, exactly, by the function
    their `decode` calls after asserting that the data is a str (which msgspec checked): a Python
    method call saved per marker."""
    if type(transcoding) is DatetimeAsISO:
        return datetime.fromisoformat
    if type(transcoding) is UUIDAsHex:
        return UUID
    if type(transcoding) is DecimalAsStr:
        return Decimal
    return transcoding.decode


class _Shape:
    """One topic's state as learned from a row decoded the general way: its keys, the kind of each
    value, and msgspec decoders typed to it. `decoder` gives the dict (a TypedDict: the stored key
    order, a repeated key's last value, as json's dict) with each marker a `_Marker` and refuses a
    missing key or a value of another kind; a TypedDict skips keys it does not name, so `keys`
    (a Struct naming the same keys, which refuses any other) parses the row a second time to refuse
    those. A row that either refuses is decoded the general way (`EventDecoder._decode`)."""

    __slots__ = ("containers", "decoder", "keys", "kinds", "markers", "topic", "upcasts")

    def __init__(
        self, known: _Topic, kinds: dict[str, str], markers: dict[str, type[_Marker]], names: dict[str, Transcoding]
    ) -> None:
        self.topic = known
        self.kinds = kinds
        fields = {
            key: _Plain if kind == _PLAIN else Any if kind == _ANY else markers[kind] for key, kind in kinds.items()
        }
        self.decoder = msgspec.json.Decoder(TypedDict("_State", fields))  # type: ignore[operator]
        renamed = {f"k{index}": key for index, key in enumerate(kinds)}
        keys = msgspec.defstruct(
            "_Keys", [(name, msgspec.Raw) for name in renamed], rename=renamed, forbid_unknown_fields=True, gc=False
        )
        self.keys = msgspec.json.Decoder(keys)
        self.markers = tuple(
            (key, _transcoded(names[kind])) for key, kind in kinds.items() if kind not in (_PLAIN, _ANY)
        )
        self.containers = tuple(key for key, kind in kinds.items() if kind == _ANY)
        # Nothing to upcast from a state without class_version of a class at version 1.
        self.upcasts = "class_version" in kinds or known.class_version > 1


def _marker(name: str) -> type[_Marker]:
    """The marker type of one registered name: msgspec refuses any other name."""
    made: type[_Marker] = msgspec.defstruct(f"_Marker_{name}", [("name", Literal[name])], bases=(_Marker,))  # type: ignore[assignment]
    return made


def _kinds(state: dict[str, Any], names: dict[str, Transcoding]) -> dict[str, str]:
    """The kind of each top-level value of a state as msgspec parsed it (before the walk)."""
    kinds: dict[str, str] = {}
    for key, value in state.items():
        if type(value) is dict:
            name = value.get(_TYPE)
            marker = len(value) == 2 and type(name) is str and name in names and type(value.get(_DATA)) is str
            kinds[key] = value[_TYPE] if marker else _ANY
        elif type(value) is list:
            kinds[key] = _ANY
        else:
            kinds[key] = _PLAIN
    return kinds


def _no_other(topic: str) -> Any:
    raise AssertionError(f"{topic} is among every topic")


class EventDecoder:
    """`decode(topic, originator_id, originator_version, state)` -> the domain event, as
    `mapper.to_domain_event(StoredEvent(...))` gives it, from a row's values as selected.

    A topic's first row is decoded the general way (`_decode`: parse, walk every value), and its
    shape learned from it (`_Shape`); its later rows are decoded by msgspec typed to that shape,
    which turns only the markers where the shape has them, walks only the values that may hide
    one, and refuses any row of another shape, decoded then the general way (and the shape made
    to cover it, `_learn`). The general way falls back to the library's mapper in turn.

    Its caches (topics resolved, shapes learned, ids parsed) only ever hold what the library would
    compute again, so threads may share one decoder."""

    def __init__(self, mapper: Mapper[Any]) -> None:
        if not isinstance(mapper.transcoder, JSONTranscoder):
            raise TypeError(f"stored events decode through a JSONTranscoder, not {type(mapper.transcoder).__name__}")
        self._mapper = mapper
        self._names: dict[str, Transcoding] = mapper.transcoder.names
        self._json = msgspec.json.Decoder()
        self._topics: dict[str, _Topic] = {}
        self._shapes: dict[str, _Shape | None] = {}  # None: not tried (see MISSES_KEPT)
        self._misses: dict[str, int] = {}
        self._markers: dict[str, type[_Marker]] = {name: _marker(name) for name in self._names}
        self._ids: dict[str, UUID] = {}
        # A cipher or a compressor changes the bytes before the JSON: that path stays the library's.
        self._plain = mapper.cipher is None and mapper.compressor is None

    def to_domain_event(self, stored: StoredEvent) -> Any:
        return self.decode(stored.topic, stored.originator_id, stored.originator_version, stored.state)

    def decode(self, topic: str, originator_id: UUID | str, originator_version: int, state: bytes) -> Any:
        return self.decode_rows([(0, originator_id, originator_version, topic, state)], _EVERY_TOPIC, _no_other)[0][1]

    def decode_rows(
        self,
        rows: Iterable[Row],
        topics: tuple[str, ...],
        other: Callable[[str], Any],
        skip: AbstractSet[str] = frozenset(),
    ) -> list[tuple[int, Any]]:
        """`(position, event)` for each row (position, originator id, originator version, topic,
        state): the event decoded where the topic starts with one of `topics` and is not in
        `skip`, else `other(topic)`.
        One loop for a batch, the learned shapes' path inline: a rebuild runs it for every event,
        and a call per row cost as much as a shape's work."""
        shapes, ids, decoded = self._shapes, self._ids, []
        for position, originator_id, originator_version, topic, state in rows:
            if not topic.startswith(topics) or topic in skip:
                decoded.append((position, other(topic)))
                continue
            shape = shapes.get(topic)  # only learned where the stored bytes are plain JSON
            if shape is not None:
                try:
                    event_state = shape.decoder.decode(state)
                    shape.keys.decode(state)
                    for key, transcoded in shape.markers:
                        event_state[key] = transcoded(event_state[key].data)
                    for key in shape.containers:
                        value = event_state[key]
                        if type(value) is dict or type(value) is list:
                            event_state[key] = self._values(value)
                    known = shape.topic
                    if type(originator_id) is str and known.text_ids_are_uuids:
                        event_state["originator_id"] = ids.get(originator_id) or self._uuid(originator_id)
                    else:
                        event_state["originator_id"] = originator_id
                    event_state["originator_version"] = originator_version
                    if shape.upcasts:
                        self._upcast(known, event_state)
                    event = object.__new__(known.cls)
                    object.__setattr__(event, "__dict__", event_state)
                    decoded.append((position, event))
                    continue
                except Exception:  # noqa: S110  (decoded again the general way: its own result or error)
                    pass
            decoded.append((position, self._general(topic, originator_id, originator_version, state, shape)))
        return decoded

    def _general(
        self, topic: str, originator_id: UUID | str, originator_version: int, state: bytes, shape: _Shape | None
    ) -> Any:
        if self._plain:
            try:
                return self._decode(topic, originator_id, originator_version, state, shape)
            except Exception:  # noqa: S110  (the library's mapper decodes it again and gives its own result or error)
                pass
        return self._mapper.to_domain_event(StoredEvent(originator_id, originator_version, topic, state))

    def _decode(
        self, topic: str, originator_id: UUID | str, originator_version: int, state: bytes, shape: _Shape | None
    ) -> Any:
        try:
            known = self._topics[topic]
        except KeyError:
            known = self._topics[topic] = _Topic(topic)
        parsed = self._json.decode(state)
        learn = type(parsed) is dict and (shape is not None or topic not in self._shapes)
        kinds = _kinds(parsed, self._names) if learn else {}
        event_state = self._values(parsed)
        # The library's find_id_convertor: text into a UUID where the class's ids are UUIDs, else as it is.
        if type(originator_id) is str and known.text_ids_are_uuids:
            event_state["originator_id"] = self._uuid(originator_id)
        else:
            event_state["originator_id"] = originator_id
        event_state["originator_version"] = originator_version
        self._upcast(known, event_state)
        event = object.__new__(known.cls)
        object.__setattr__(event, "__dict__", event_state)
        if learn:  # only from a row decoded: its shape is one the store holds
            self._learn(topic, known, shape, kinds)
        return event

    @staticmethod
    def _upcast(known: _Topic, event_state: dict[str, Any]) -> None:
        from_version = event_state.pop("class_version", 1)
        while from_version < known.class_version:
            known.upcasters[from_version](event_state)
            from_version += 1

    def _learn(self, topic: str, known: _Topic, shape: _Shape | None, kinds: dict[str, str]) -> None:
        """The topic's shape from a row decoded the general way: the row's own at first; after a
        miss of the same keys (in any order), every value whose kind differs made `any`; after
        too many misses, none (the topic's rows are then decoded the general way only)."""
        if shape is not None:
            if kinds.keys() == shape.kinds.keys():
                kinds = {key: kind if kind == shape.kinds[key] else _ANY for key, kind in kinds.items()}
            misses = self._misses[topic] = self._misses.get(topic, 0) + 1
            if misses > MISSES_KEPT:
                self._shapes[topic] = None
                return
        self._shapes[topic] = _Shape(known, kinds, self._markers, self._names)

    def _uuid(self, text: str) -> UUID:
        parsed = self._ids.get(text)
        if parsed is None:  # not by KeyError: a rebuild meets a new aggregate every few events
            if len(self._ids) >= IDS_KEPT:
                self._ids.clear()
            parsed = self._ids[text] = UUID(text)
        return parsed

    def _values(self, value: Any) -> Any:
        """Marker objects at any depth turned into their values, innermost first (the order in
        which json's object_hook sees them); containers are changed in place: msgspec made them."""
        kind = type(value)
        if kind is dict:
            for key, item in value.items():
                if type(item) is dict or type(item) is list:
                    value[key] = self._values(item)
            if len(value) == 2 and _TYPE in value and _DATA in value:
                return self._names[value[_TYPE]].decode(value[_DATA])
        elif kind is list:
            for index, item in enumerate(value):
                if type(item) is dict or type(item) is list:
                    value[index] = self._values(item)
        return value

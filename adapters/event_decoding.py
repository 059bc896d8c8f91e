"""Stored events decoded with msgspec into exactly the objects the library's mapper makes.

The stored format is the library's (eventsourcing's `JSONTranscoder`): the state is JSON, and a
value of a registered type is an object of exactly two keys, `{"_type_": name, "_data_": ...}`
(a timestamp is `{"_type_": "datetime_iso", "_data_": "2026-03-02T09:00:04+00:00"}`). The
library parses it with `json` and an `object_hook` called on every JSON object, in Python; that,
and building a `Notification` per row, caps a replay near 40k events/s (docs/throughput.md
§Replay). Here msgspec parses the state into plain dicts and lists, and one walk turns the marker
objects into values with the mapper's own transcodings, innermost first as the hook does.

Equivalence with `Mapper.to_domain_event` (tests/unit/test_event_decoding.py checks it on every
pinned example and on generated events): the same class (from the topic), the same attribute
dictionary (originator id converted the library's way, upcast from the stored `class_version`).
Wherever msgspec and `json` could disagree, msgspec refuses the input (NaN, Infinity, 1e400, a
lone surrogate, a byte-order mark, trailing bytes): on any failure the row is decoded again by
the library's mapper, so its result or its error (`MapperDeserialisationError`) is the one given.
Nothing here writes: events are still encoded by the library, so the format does not change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    StoredEvent,
    Transcoding,
    find_id_convertor,
    str_to_uuid_convertor,
)
from eventsourcing.utils import resolve_topic

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


class EventDecoder:
    """`decode(topic, originator_id, originator_version, state)` -> the domain event, as
    `mapper.to_domain_event(StoredEvent(...))` gives it, from a row's values as selected.

    Its caches (topics resolved, ids parsed) only ever hold what the library would compute again,
    so threads may share one decoder."""

    def __init__(self, mapper: Mapper[Any]) -> None:
        if not isinstance(mapper.transcoder, JSONTranscoder):
            raise TypeError(f"stored events decode through a JSONTranscoder, not {type(mapper.transcoder).__name__}")
        self._mapper = mapper
        self._names: dict[str, Transcoding] = mapper.transcoder.names
        self._json = msgspec.json.Decoder()
        self._topics: dict[str, _Topic] = {}
        self._ids: dict[str, UUID] = {}
        # A cipher or a compressor changes the bytes before the JSON: that path stays the library's.
        self._plain = mapper.cipher is None and mapper.compressor is None

    def to_domain_event(self, stored: StoredEvent) -> Any:
        return self.decode(stored.topic, stored.originator_id, stored.originator_version, stored.state)

    def decode(self, topic: str, originator_id: UUID | str, originator_version: int, state: bytes) -> Any:
        if self._plain:
            try:
                return self._decode(topic, originator_id, originator_version, state)
            except Exception:  # noqa: S110  (the library's mapper decodes it again and gives its own result or error)
                pass
        return self._mapper.to_domain_event(StoredEvent(originator_id, originator_version, topic, state))

    def _decode(self, topic: str, originator_id: UUID | str, originator_version: int, state: bytes) -> Any:
        try:
            known = self._topics[topic]
        except KeyError:
            known = self._topics[topic] = _Topic(topic)
        event_state = self._values(self._json.decode(state))
        # The library's find_id_convertor: text into a UUID where the class's ids are UUIDs, else as it is.
        if type(originator_id) is str and known.text_ids_are_uuids:
            event_state["originator_id"] = self._uuid(originator_id)
        else:
            event_state["originator_id"] = originator_id
        event_state["originator_version"] = originator_version
        from_version = event_state.pop("class_version", 1)
        while from_version < known.class_version:
            known.upcasters[from_version](event_state)
            from_version += 1
        event = object.__new__(known.cls)
        object.__setattr__(event, "__dict__", event_state)
        return event

    def _uuid(self, text: str) -> UUID:
        try:
            return self._ids[text]
        except KeyError:
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

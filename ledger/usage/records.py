"""Usage records: one aggregate per record, keyed by its client identifier, so a repeat collides.

A record's id is uuid5(customer key, client identifier): the same identifier sent again (in
the same batch, a later one, or by a concurrent writer) maps to the same id, and the store's
unique (id, version) refuses the second version 1 (docs/adr/0002-identifiers.md). Records are
written in batches: a `UsageBatch` carries the creation events of its records into the same
transaction, built directly rather than through one aggregate object each (bench/usage.py
measures why: 500 aggregate objects cost more than the insert). Each record is still an
aggregate in the store: loading its id replays it as a `UsageRecord`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.errors import InvalidInputError
from ledger.usage.meters import MAX_RECORD_QUANTITY, key_matches, require_key, require_usage_quantity
from ledger.usage.periods import moment_text
from ledger.validation import canonical_decimal, require_text

_RECORD_NAMESPACE = UUID("8c2d4e6f-1a3b-4c5d-9e7f-0a1b2c3d4e5f")
_NAMESPACE_HASH = hashlib.sha1(_RECORD_NAMESPACE.bytes, usedforsecurity=False)
IDENTIFIER_LIMIT = 100  # Stripe's limit on a meter event's identifier
# Moments the ledger bills: far enough from year 1 and 9999 that a period around one always exists.
EPOCHS = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC))
RECORD_FIELDS = frozenset({"customer", "meter", "quantity", "timestamp", "identifier"})


def record_id_for(customer: str, identifier: str) -> UUID:
    """Keys never contain '/', so customer/identifier names one record unambiguously.
    Equal to uuid5(_RECORD_NAMESPACE, name), computed without re-hashing the namespace."""
    digest = _NAMESPACE_HASH.copy()
    digest.update(f"{customer}/{identifier}".encode())
    return UUID(bytes=digest.digest()[:16], version=5)


@dataclass(frozen=True, slots=True)
class NewUsageRecord:
    """A record as validated, before it is placed in a customer's period."""

    index: int  # its position in the request
    customer: str
    meter: str
    quantity: Decimal
    timestamp: datetime  # aware, UTC
    identifier: str
    record_id: UUID = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "record_id", record_id_for(self.customer, self.identifier))


def read_records(raw: Sequence[object]) -> tuple[list[NewUsageRecord], list[dict[str, str]]]:
    """Each record validated field by field; every error named as `records[i].field`."""
    records: list[NewUsageRecord] = []
    errors: list[dict[str, str]] = []
    for index, item in enumerate(raw):
        # A batch of 500 is read on every request: the common, valid record takes the short
        # road; anything unusual takes the long one, which names each bad field.
        record = _read_plain(item, index)
        if record is None:
            record = _read(item, index, errors)
        if record is not None:
            records.append(record)
    return records, errors


_PLAIN_KEY = key_matches
_REQUIRED = frozenset({"customer", "meter", "timestamp", "identifier"})


def _read_plain(item: object, index: int) -> NewUsageRecord | None:
    """The record if every field is plainly valid, else None (then `_read` says why)."""
    if type(item) is not dict or not _REQUIRED <= item.keys() <= RECORD_FIELDS:
        return None
    customer, meter, identifier, timestamp = item["customer"], item["meter"], item["identifier"], item["timestamp"]
    quantity = item.get("quantity", 1)
    if not (
        type(customer) is str
        and type(meter) is str
        and type(identifier) is str
        and type(timestamp) is str
        and type(quantity) is int
        and 0 <= quantity <= MAX_RECORD_QUANTITY
        and _PLAIN_KEY(customer)
        and _PLAIN_KEY(meter)
        and 0 < len(identifier) <= IDENTIFIER_LIMIT
        and identifier.strip()
        and "\x00" not in identifier
        and len(timestamp) <= 40
    ):
        return None
    try:
        moment = datetime.fromisoformat(timestamp)
        if moment.tzinfo is None or not EPOCHS[0] <= moment < EPOCHS[1]:
            return None
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return NewUsageRecord(index, customer, meter, Decimal(quantity), moment, identifier)


def _read(item: object, index: int, errors: list[dict[str, str]]) -> NewUsageRecord | None:
    prefix = f"records[{index}]"
    if not isinstance(item, dict):
        errors.append({"field": prefix, "message": "must be a JSON object"})
        return None
    before = len(errors)
    for name in sorted(set(item) - RECORD_FIELDS):
        errors.append({"field": f"{prefix}.{name}", "message": "unknown field"})
    for name in ("customer", "meter", "timestamp", "identifier"):
        if name not in item:
            errors.append({"field": f"{prefix}.{name}", "message": "is required"})
    if len(errors) > before:
        return None
    fields: dict[str, Any] = {}
    for name, rule in _RULES:
        try:
            fields[name] = rule(item.get(name, 1) if name == "quantity" else item[name])
        except InvalidInputError as error:
            errors.append({"field": f"{prefix}.{name}", "message": str(error)})
    if len(errors) > before:
        return None
    return NewUsageRecord(index=index, **fields)


def require_timestamp(value: object) -> datetime:
    """An ISO 8601 moment with its offset ('2026-03-01T12:00:00Z'), in UTC, within EPOCHS."""
    if isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is not None and EPOCHS[0] <= moment < EPOCHS[1]:
                return moment.astimezone(UTC)
        except (ValueError, OverflowError):
            pass
    raise InvalidInputError(f"must be an ISO 8601 moment with its offset, such as 2026-03-01T12:00:00Z, got {value!r}")


_RULES = (
    ("customer", lambda v: require_key(v, field="customer")),
    ("meter", lambda v: require_key(v, field="meter")),
    ("quantity", require_usage_quantity),
    ("timestamp", require_timestamp),
    ("identifier", lambda v: require_text(v, field="identifier", limit=IDENTIFIER_LIMIT)),
)


# ------------------------------------------------------------------------------ aggregates


class UsageRecord(Aggregate):
    TOPIC = "usage-record"

    class Event(Aggregate.Event):
        pass

    class Recorded(Event, Aggregate.Created):
        TOPIC = "usage-record.recorded"
        customer: str
        meter: str
        quantity: str  # canonical decimal
        occurred_at: str  # the record's own timestamp, UTC ISO 8601 (moment_text)
        identifier: str  # the client's
        period: str  # the key of the customer's billing period it falls in
        late: bool  # that period was closed already: it is billed as an adjustment on the next invoice

    Created = Recorded  # the library looks for a "Created" event; ours has a domain name

    def __init__(
        self,
        customer: str,
        meter: str,
        quantity: str,
        occurred_at: str,
        identifier: str,
        period: str,
        late: bool,
    ) -> None:
        self.customer = customer
        self.meter = meter
        self.quantity = quantity
        self.occurred_at = occurred_at
        self.identifier = identifier
        self.period = period
        self.late = late


def recorded(record: NewUsageRecord, *, period: str, late: bool, at: datetime) -> UsageRecord.Recorded:
    """The creation event of one record, built without an aggregate object (see the docstring)."""
    event_class: Any = UsageRecord.Recorded  # the library makes it a dataclass at runtime
    event: UsageRecord.Recorded = event_class(
        originator_topic=UsageRecord.TOPIC,
        originator_id=record.record_id,
        originator_version=1,
        timestamp=at,
        customer=record.customer,
        meter=record.meter,
        quantity=canonical_decimal(record.quantity),
        occurred_at=moment_text(record.timestamp),
        identifier=record.identifier,
        period=period,
        late=late,
    )
    return event


class UsageBatch(Aggregate):
    """One accepted request: what it accepted, carrying its records' events into the same save."""

    TOPIC = "usage-batch"

    class Event(Aggregate.Event):
        pass

    class Accepted(Event, Aggregate.Created):
        TOPIC = "usage-batch.accepted"
        accepted: int
        duplicates: int
        customers: list[str]

    Created = Accepted

    def __init__(self, accepted: int, duplicates: int, customers: list[str]) -> None:
        self.accepted = accepted
        self.duplicates = duplicates
        self.customers = list(customers)
        self._records: list[UsageRecord.Recorded] = []

    @classmethod
    def accept(
        cls, *, batch_id: UUID, records: list[UsageRecord.Recorded], duplicates: int, at: datetime
    ) -> UsageBatch:
        customers = sorted({record.customer for record in records})
        batch = cls._create(
            cls.Accepted, id=batch_id, timestamp=at, accepted=len(records), duplicates=duplicates, customers=customers
        )
        batch._records = records
        return batch

    def collect_events(self) -> Sequence[Any]:
        """The batch's own event, then every record's creation: saved in one transaction."""
        events: list[Any] = [*super().collect_events(), *self._records]
        self._records = []
        return events

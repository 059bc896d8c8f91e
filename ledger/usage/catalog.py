"""The usage catalogue: every meter and every metered price, in one aggregate.

Meters and prices are few (tens, not millions) and never change once defined (as Stripe's
prices: a new price is a new key), so one aggregate holds them all: a key is unique by a
check on its state, under optimistic concurrency, and listing them needs no read model.
A customer copies the definitions it is billed with when it subscribes, so a later reading of
the catalogue can never reprice a period.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.currencies import require_currency
from ledger.errors import (
    MeterExistsError,
    MeterNotFoundError,
    PriceExistsError,
    PriceNotFoundError,
    UnknownReferenceError,
)
from ledger.usage.meters import require_key, require_meter
from ledger.usage.pricing import require_terms

_CATALOG_NAMESPACE = UUID("3e1b6a52-7c0d-4b8e-9f21-5a4c3d2e1f07")
CATALOG_ID = uuid5(_CATALOG_NAMESPACE, "usage-catalog")


class UsageCatalog(Aggregate):
    TOPIC = "usage-catalog"

    class Event(Aggregate.Event):
        pass

    class Opened(Event, Aggregate.Created):
        TOPIC = "usage-catalog.opened"

    Created = Opened  # the library looks for a "Created" event; ours has a domain name

    class MeterDefined(Event):
        TOPIC = "usage-catalog.meter-defined"
        key: str
        name: str
        event_name: str
        aggregation: str

        def apply(self, aggregate: UsageCatalog) -> None:
            aggregate.meters[self.key] = {
                "key": self.key,
                "name": self.name,
                "event_name": self.event_name,
                "aggregation": self.aggregation,
                "created_at": self.timestamp.isoformat(),
            }

    class PriceDefined(Event):
        TOPIC = "usage-catalog.price-defined"
        key: str
        meter: str
        currency: str
        terms: dict[str, Any]

        def apply(self, aggregate: UsageCatalog) -> None:
            aggregate.prices[self.key] = {
                "key": self.key,
                "meter": self.meter,
                "currency": self.currency,
                "terms": self.terms,
                "created_at": self.timestamp.isoformat(),
            }

    def __init__(self) -> None:
        self.meters: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, dict[str, Any]] = {}

    @classmethod
    def open(cls, *, at: datetime) -> UsageCatalog:
        return cls._create(cls.Opened, id=CATALOG_ID, timestamp=at)

    def define_meter(
        self, *, key: object, name: object, event_name: object, aggregation: object, at: datetime
    ) -> dict[str, str]:
        meter = require_meter(key, name, event_name, aggregation)
        if meter["key"] in self.meters:
            raise MeterExistsError(meter["key"])
        self.trigger_event(self.MeterDefined, timestamp=at, **meter)
        return meter

    def define_price(
        self, *, key: object, meter: object, currency: object, model: object, terms: dict[str, Any], at: datetime
    ) -> None:
        price_key = require_key(key, field="key")
        meter_key = require_key(meter, field="meter")
        checked_currency = require_currency(currency)
        checked_terms = require_terms(model, terms)
        if meter_key not in self.meters:
            raise UnknownReferenceError(f"meter {meter_key!r} is not defined", field="meter")
        if price_key in self.prices:
            raise PriceExistsError(price_key)
        self.trigger_event(
            self.PriceDefined,
            timestamp=at,
            key=price_key,
            meter=meter_key,
            currency=checked_currency,
            terms=checked_terms,
        )

    def meter(self, key: str) -> dict[str, Any]:
        try:
            return self.meters[key]
        except KeyError:
            raise MeterNotFoundError(key) from None

    def price(self, key: str, *, field: str | None = None) -> dict[str, Any]:
        try:
            return self.prices[key]
        except KeyError:
            if field is not None:  # named in a request body: bad input, not a missing resource
                raise UnknownReferenceError(f"price {key!r} is not defined", field=field) from None
            raise PriceNotFoundError(key) from None

"""A usage customer: who is billed for metered usage, in which timezone, with which prices.

Its state is small whatever the volume: per billing period and meter, the `Stats` of the
records that fell there (sum, count, max, last), not the records themselves. Each accepted
batch adds one `UsageAdded` event per customer; closing a period adds `PeriodClosed`.

Periods are closed one at a time, in order, once each: `next_period` is the first one not yet
closed, and it can be closed only after it ends. Closing prices each meter's quantity for that
period into invoice lines. A record that arrives for a period already closed (late usage) is
added to that period's stats but the closed invoice is never touched: the next close bills the
difference between what the period's quantity now prices at and what was billed, as one
adjustment line naming the period (docs/adr/0012-usage-pricing-and-periods.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.currencies import require_currency
from ledger.errors import (
    CurrencyMismatchError,
    InvalidAmountError,
    InvalidDateError,
    InvalidPriceError,
    InvalidQuantityError,
    InvalidTextError,
    InvalidUsageBatchError,
    PeriodNotEndedError,
)
from ledger.invoices import MAX_LINES, require_customer
from ledger.lines import Line
from ledger.money import MAX_MINOR_UNITS
from ledger.usage.lines import adjustment_line, usage_lines
from ledger.usage.meters import BatchStats, Stats, empty_stats, merge, quantity_of, require_key
from ledger.usage.periods import (
    Period,
    local_dates,
    moment_text,
    next_period,
    parse_moment,
    period_containing,
    require_anchor_day,
    require_timezone,
)
from ledger.usage.pricing import price
from ledger.usage.records import EPOCHS, NewUsageRecord, UsageRecord, recorded
from ledger.validation import canonical_decimal

_CUSTOMER_NAMESPACE = UUID("5b7d9f1e-3c2a-4e6b-8d0f-1e2d3c4b5a69")
MAX_PRICES_PER_CUSTOMER = 10
STRIPE_CUSTOMER_LIMIT = 255
# Stripe refuses meter events more than 5 minutes ahead; so do we, for every customer.
FUTURE_TOLERANCE = timedelta(minutes=5)


def usage_customer_id(key: str) -> UUID:
    return uuid5(_CUSTOMER_NAMESPACE, key)


def usage_invoice_id(key: str, period: str) -> UUID:
    """A period's invoice has a derived id too: a second close of one period would collide."""
    return uuid5(_CUSTOMER_NAMESPACE, f"{key}/invoice/{period}")


class UsageCustomer(Aggregate):
    TOPIC = "usage-customer"

    class Event(Aggregate.Event):
        pass

    class SetUp(Event, Aggregate.Created):
        TOPIC = "usage-customer.set-up"
        key: str
        customer: dict[str, str]  # email, name: as on an invoice
        currency: str
        timezone: str
        billing_anchor_day: int
        prices: dict[str, dict[str, Any]]  # meter key -> {price, meter (its definition), terms}
        stripe_customer_id: str | None
        first_period_start: str
        first_period_end: str

    Created = SetUp  # the library looks for a "Created" event; ours has a domain name

    class UsageAdded(Event):
        TOPIC = "usage-customer.usage-added"
        usage: dict[str, dict[str, Stats]]  # period key -> meter key -> stats of this batch's records
        records: int
        late: list[str]  # the closed periods among them

        def apply(self, aggregate: UsageCustomer) -> None:
            for period, meters in self.usage.items():
                held = aggregate.usage.setdefault(period, {})
                for meter, stats in meters.items():
                    merge(held.setdefault(meter, empty_stats()), stats)
            aggregate.records += self.records

    class PeriodClosed(Event):
        TOPIC = "usage-customer.period-closed"
        period_start: str
        period_end: str
        invoice_id: str
        billed: dict[str, str]  # meter key -> the quantity billed
        adjusted: dict[str, dict[str, str]]  # earlier period -> meter -> the quantity now billed in all
        next_period_start: str
        next_period_end: str

        def apply(self, aggregate: UsageCustomer) -> None:
            aggregate.closed[self.period_start] = {
                "end": self.period_end,
                "invoice_id": self.invoice_id,
                "billed": dict(self.billed),
            }
            for period, quantities in self.adjusted.items():
                aggregate.closed[period]["billed"].update(quantities)
            aggregate.next_period = Period(parse_moment(self.next_period_start), parse_moment(self.next_period_end))

    def __init__(
        self,
        key: str,
        customer: dict[str, str],
        currency: str,
        timezone: str,
        billing_anchor_day: int,
        prices: dict[str, dict[str, Any]],
        stripe_customer_id: str | None,
        first_period_start: str,
        first_period_end: str,
    ) -> None:
        self.key = key
        self.customer = dict(customer)
        self.currency = currency
        self.timezone = timezone
        self.billing_anchor_day = billing_anchor_day
        self.prices = prices
        self.stripe_customer_id = stripe_customer_id
        self.first_period = Period(parse_moment(first_period_start), parse_moment(first_period_end))
        self.next_period = self.first_period
        self.usage: dict[str, dict[str, Stats]] = {}
        self.closed: dict[str, dict[str, Any]] = {}
        self.records = 0

    # ----------------------------------------------------------------------------- commands

    @classmethod
    def set_up(
        cls,
        *,
        key: object,
        customer: object,
        currency: object,
        timezone: object,
        billing_anchor_day: object,
        prices: Sequence[dict[str, Any]],
        meters: dict[str, dict[str, Any]],
        starts_at: datetime,
        stripe_customer_id: object,
        at: datetime,
    ) -> UsageCustomer:
        """`prices` are the catalogue's definitions, `meters` theirs; the first period holds `starts_at`."""
        checked_key = require_key(key, field="key")
        checked_currency = require_currency(currency)
        zone = require_timezone(timezone)
        anchor = require_anchor_day(billing_anchor_day)
        if not EPOCHS[0] <= starts_at < EPOCHS[1]:
            raise InvalidDateError(
                f"starts_at must be from {EPOCHS[0].year} to {EPOCHS[1].year - 1}", field="starts_at"
            )
        first = period_containing(starts_at, zone, anchor)
        return cls._create(
            cls.SetUp,
            id=usage_customer_id(checked_key),
            timestamp=at,
            key=checked_key,
            customer=require_customer(customer),
            currency=checked_currency,
            timezone=zone,
            billing_anchor_day=anchor,
            prices=_billed_prices(prices, meters, checked_currency),
            stripe_customer_id=_stripe_customer(stripe_customer_id),
            first_period_start=first.key,
            first_period_end=moment_text(first.end),
        )

    def refusal(self, record: NewUsageRecord, at: datetime) -> tuple[str, str] | None:
        """(field, message) if this customer cannot take the record, else None."""
        if record.meter not in self.prices:
            return "meter", f"usage customer {self.key!r} is not billed for meter {record.meter!r}"
        if record.timestamp < self.first_period.start:
            return "timestamp", f"is before usage customer {self.key!r}'s first billing period"
        if record.timestamp > at + FUTURE_TOLERANCE:
            return "timestamp", "is more than 5 minutes in the future"
        if self.stripe_customer_id is not None and record.quantity != record.quantity.to_integral_value():
            return "quantity", "Stripe meters count whole units: this customer is billed by Stripe"
        return None

    def add_usage(self, records: Sequence[NewUsageRecord], *, at: datetime) -> list[UsageRecord.Recorded]:
        """Fold accepted records (already checked by `refusal`) into their periods; their events."""
        batch = BatchStats()
        late: set[str] = set()
        events: list[UsageRecord.Recorded] = []
        first: dict[str, int] = {}  # period -> the position in the request of its first record here
        period = self.next_period
        for record in records:
            if not period.contains(record.timestamp):
                period = period_containing(record.timestamp, self.timezone, self.billing_anchor_day)
            is_late = period.key in self.closed
            if is_late:
                late.add(period.key)
            first.setdefault(period.key, record.index)
            event = recorded(record, period=period.key, late=is_late, at=at)
            batch.add(period.key, record.meter, record.quantity, event.occurred_at)
            events.append(event)
        if events:
            self._require_billable(batch.as_json(), first)
            self.trigger_event(
                self.UsageAdded, timestamp=at, usage=batch.as_json(), records=len(events), late=sorted(late)
            )
        return events

    def close_next_period(self, *, invoice_id: UUID, at: datetime) -> list[Line]:
        """Close the next period (it must have ended): the invoice lines that bill it."""
        period = self.next_period
        if period.end > at:
            raise PeriodNotEndedError(self.key, period.key, moment_text(period.end))
        lines, billed, adjusted = self._bill(period.key, self.usage, invoice_id)
        following = next_period(period, self.timezone, self.billing_anchor_day)
        self.trigger_event(
            self.PeriodClosed,
            timestamp=at,
            period_start=period.key,
            period_end=moment_text(period.end),
            invoice_id=str(invoice_id),
            billed=billed,
            adjusted=adjusted,
            next_period_start=following.key,
            next_period_end=moment_text(following.end),
        )
        return lines

    def _bill(
        self, period: str, usage: dict[str, dict[str, Stats]], invoice_id: UUID
    ) -> tuple[list[Line], dict[str, str], dict[str, dict[str, str]]]:
        """What closing `period` with `usage` bills: its lines, the quantities billed, and the
        closed periods adjusted (late usage) with their quantities now."""
        lines: list[Line] = []
        billed: dict[str, str] = {}
        for meter, billing in sorted(self.prices.items()):
            quantity = quantity_of(usage.get(period, {}).get(meter), billing["meter"]["aggregation"])
            billed[meter] = canonical_decimal(quantity)
            lines += usage_lines(billing["meter"]["name"], price(billing["terms"], quantity), invoice_id, len(lines))
        adjusted: dict[str, dict[str, str]] = {}
        for closed_period, closed in sorted(self.closed.items()):
            for meter, before in sorted(closed["billed"].items()):
                billing = self.prices[meter]
                now = quantity_of(usage.get(closed_period, {}).get(meter), billing["meter"]["aggregation"])
                if canonical_decimal(now) == before:
                    continue
                delta = price(billing["terms"], now).total - price(billing["terms"], Decimal(before)).total
                span = self.local_span(Period(parse_moment(closed_period), parse_moment(closed["end"])))
                name = billing["meter"]["name"]
                lines.append(adjustment_line(name, span, before, canonical_decimal(now), delta, invoice_id, len(lines)))
                adjusted.setdefault(closed_period, {})[meter] = canonical_decimal(now)
        return lines, billed, adjusted

    def _require_billable(self, added: dict[str, dict[str, Stats]], first: dict[str, int]) -> None:
        """Refuse usage after which a period could not be closed: its invoice (with the late
        usage adjustments the next close bills) must fit MAX_LINES lines of at most
        MAX_MINOR_UNITS each, and MAX_MINOR_UNITS in all. Accepted, it would answer 422 forever."""
        usage = dict(self.usage)
        for period, meters in added.items():
            held = usage[period] = {meter: dict(stats) for meter, stats in usage.get(period, {}).items()}
            for meter, stats in meters.items():
                merge(held.setdefault(meter, empty_stats()), stats)
        # Each invoice checked, with the records of this batch that feed it (the first of each
        # period): a period's own records, and late records for the next close's adjustments.
        feeding = {period: [first[period]] for period in added if period not in self.closed}
        late = [first[period] for period in added if period in self.closed]
        if late:
            feeding[self.next_period.key] = sorted(feeding.get(self.next_period.key, []) + late)
        for period, indexes in sorted(feeding.items()):
            problem = _unbillable(self._bill, period, usage)
            if problem is not None:
                raise InvalidUsageBatchError([{"field": f"records[{i}].quantity", "message": problem} for i in indexes])

    # ----------------------------------------------------------------------------- queries

    def quantity(self, period: str, meter: str) -> Decimal:
        aggregation = self.prices[meter]["meter"]["aggregation"]
        return quantity_of(self.usage.get(period, {}).get(meter), aggregation)

    def local_span(self, period: Period) -> str:
        first, after = local_dates(period, self.timezone)
        return f"{first.isoformat()} to {after.isoformat()}"

    def invoice_memo(self, period: Period) -> str:
        return f"Usage from {self.local_span(period)} ({self.timezone}); the end date is not included."


_NO_INVOICE = UUID(int=0)  # lines built only to be measured


def _unbillable(bill: Any, period: str, usage: dict[str, dict[str, Stats]]) -> str | None:
    """Why the invoice closing `period` could not be drawn up, or None."""
    try:
        lines: list[Line] = bill(period, usage, _NO_INVOICE)[0]
    except (InvalidAmountError, InvalidQuantityError) as error:
        return f"its billing period could not be invoiced: {error}"
    if len(lines) > MAX_LINES:
        return f"its billing period's invoice would need {len(lines)} lines, beyond the limit of {MAX_LINES}"
    total = sum(line.amount + line.tax for line in lines)
    if abs(total) > MAX_MINOR_UNITS:
        return (
            f"its billing period's invoice would total {total} minor units, "
            f"beyond the limit of {MAX_MINOR_UNITS} an invoice holds"
        )
    return None


def _billed_prices(
    prices: Sequence[dict[str, Any]], meters: dict[str, dict[str, Any]], currency: str
) -> dict[str, dict[str, Any]]:
    if not 1 <= len(prices) <= MAX_PRICES_PER_CUSTOMER:
        raise InvalidTextError(f"give 1 to {MAX_PRICES_PER_CUSTOMER} prices", field="prices")
    billed: dict[str, dict[str, Any]] = {}
    for index, definition in enumerate(prices):
        if definition["currency"] != currency:
            raise CurrencyMismatchError(currency, definition["currency"])
        meter = definition["meter"]
        if meter in billed:
            raise InvalidPriceError(
                f"meter {meter!r} is billed by another of these prices already: one price per meter",
                field=f"prices[{index}]",
            )
        definition_of_meter = {k: v for k, v in meters[meter].items() if k != "created_at"}
        billed[meter] = {"price": definition["key"], "meter": definition_of_meter, "terms": definition["terms"]}
    return billed


def _stripe_customer(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith("cus_") or len(value) > STRIPE_CUSTOMER_LIMIT:
        raise InvalidTextError("stripe_customer_id must be a Stripe customer id (cus_...)", field="stripe_customer_id")
    return value

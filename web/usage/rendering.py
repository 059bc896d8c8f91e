"""The JSON shapes of the usage API (web/usage/models.py): a meter, a price, a usage customer with
its periods, a batch's outcome."""

from __future__ import annotations

from typing import Any

from commands.usage.commands import UsageAccepted
from ledger.usage.customers import UsageCustomer
from ledger.usage.meters import quantity_of
from ledger.usage.periods import Period, local_dates, moment_text, parse_moment, period_containing
from ledger.usage.pricing import price
from ledger.validation import canonical_decimal
from web.usage import models


def meter_json(meter: dict[str, Any]) -> models.Meter:
    return {
        "object": "meter",
        "key": meter["key"],
        "name": meter["name"],
        "event_name": meter["event_name"],
        "aggregation": meter["aggregation"],
        "created_at": meter["created_at"],
    }


def price_json(definition: dict[str, Any]) -> models.Price:
    terms = definition["terms"]
    body: models.Price = {
        "object": "price",
        "key": definition["key"],
        "meter": definition["meter"],
        "currency": definition["currency"],
        "model": terms["model"],
        "created_at": definition["created_at"],
    }
    if "unit_amount" in terms:
        body["unit_amount"] = terms["unit_amount"]
    if "package_size" in terms:
        body["package_size"] = terms["package_size"]
        body["package_amount"] = terms["package_amount"]
    if "tiers" in terms:
        body["tiers"] = terms["tiers"]
    return body


def usage_customer_json(customer: UsageCustomer) -> models.UsageCustomer:
    periods = sorted(set(customer.usage) | set(customer.closed) | {customer.next_period.key})
    return {
        "object": "usage_customer",
        "key": customer.key,
        "customer": dict(customer.customer),
        "currency": customer.currency,
        "timezone": customer.timezone,
        "billing_anchor_day": customer.billing_anchor_day,
        "stripe_customer_id": customer.stripe_customer_id,
        "prices": [
            {"meter": meter, "price": billing["price"], "aggregation": billing["meter"]["aggregation"]}
            for meter, billing in sorted(customer.prices.items())
        ],
        "next_period": _span(customer, customer.next_period),
        "records": customer.records,
        "periods": [_period_json(customer, key) for key in periods],
        "version": customer.version,
    }


def _span(customer: UsageCustomer, period: Period) -> dict[str, str]:
    first, after = local_dates(period, customer.timezone)
    return {
        "start": period.key,
        "end": moment_text(period.end),
        "start_date": first.isoformat(),
        "end_date": after.isoformat(),
    }


def _period_json(customer: UsageCustomer, key: str) -> dict[str, Any]:
    closed = customer.closed.get(key)
    start = parse_moment(key)
    period = period_containing(start, customer.timezone, customer.billing_anchor_day)
    meters = []
    for meter, billing in sorted(customer.prices.items()):
        stats = customer.usage.get(key, {}).get(meter)
        quantity = quantity_of(stats, billing["meter"]["aggregation"])
        breakdown = price(billing["terms"], quantity)
        meters.append(
            {
                "meter": meter,
                "quantity": canonical_decimal(quantity),
                "records": 0 if stats is None else stats["count"],
                "billed_quantity": None if closed is None else closed["billed"].get(meter),
                "breakdown": breakdown.as_json(),
            }
        )
    return {
        **_span(customer, period),
        "status": "closed" if closed is not None else "open",
        "invoice_id": None if closed is None else closed["invoice_id"],
        "usage": meters,
    }


def accepted_json(accepted: UsageAccepted, records: list[object]) -> models.UsageBatch:
    duplicates = set(accepted.duplicates)
    return {
        "object": "usage_batch",
        "accepted": accepted.accepted,
        "duplicates": len(duplicates),
        "records": [
            {
                "id": str(record_id),
                "identifier": _identifier(records[index]),
                "status": "duplicate" if index in duplicates else "accepted",
            }
            for index, record_id in enumerate(accepted.record_ids)
        ],
    }


def _identifier(record: object) -> str:
    return str(record["identifier"]) if isinstance(record, dict) else ""

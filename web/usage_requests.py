"""Usage request bodies checked field by field, every bad field named at once.

As web/requests.py: the rules are the domain's (ledger.usage.meters, ledger.usage.pricing, ledger.usage.periods,
ledger.usage.records); this module walks the JSON, refuses unknown fields and JSON fractions
(a decimal is a string here, never a float), and collects every error. Usage records are
checked by the command itself (ledger.usage.records.read_records, `records[i].field`): a batch
of 500 is read once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from ledger.currencies import require_currency
from ledger.errors import InvalidInputError, InvalidTextError
from ledger.invoices import require_customer
from ledger.usage.meters import AGGREGATIONS, require_key, require_meter
from ledger.usage.periods import require_anchor_day, require_timezone
from ledger.usage.pricing import MODELS, require_terms
from ledger.usage.records import read_records
from web.requests import Errors, FloatNumber, RequestInvalidError, moment

MAX_RECORDS_PER_REQUEST = 1_000
METER_FIELDS = {"key", "name", "aggregation", "event_name"}
PRICE_FIELDS = {"key", "meter", "currency", "model", "unit_amount", "package_size", "package_amount", "tiers"}
CUSTOMER_FIELDS = {
    "key",
    "customer",
    "currency",
    "timezone",
    "billing_anchor_day",
    "prices",
    "starts_at",
    "stripe_customer_id",
}


def _fields(body: object, allowed: set[str], required: list[str], errors: Errors) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise RequestInvalidError([{"field": "body", "message": "must be a JSON object"}])
    for name in sorted(set(body) - allowed):
        errors.add(name, "unknown field")
    for name in required:
        if name not in body:
            errors.add(name, "is required")
    return body


def _no_fractions(value: object, path: str, errors: Errors) -> bool:
    """True if no JSON number with a fraction hides in `value` (decimals are strings)."""
    if isinstance(value, FloatNumber):
        errors.add(path, 'must be an integer or a decimal string such as "0.25", not a JSON fraction')
        return False
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    clean = True
    for name, item in items:  # every one of them, not only up to the first
        inner = f"{path}.{name}" if isinstance(value, dict) else f"{path}[{name}]"
        clean = _no_fractions(item, inner.lstrip("."), errors) and clean
    return clean


@dataclass(frozen=True)
class NewMeter:
    key: str
    name: str
    aggregation: str
    event_name: str | None


def new_meter(body: object) -> NewMeter:
    errors = Errors()
    fields = _fields(body, METER_FIELDS, ["key", "name", "aggregation"], errors)
    _no_fractions(dict(fields), "", errors)
    for name in ("key", "name", "aggregation", "event_name"):
        if name in fields:
            errors.check(name, partial(_meter_field, fields, name))
    errors.raise_if_any()
    return NewMeter(fields["key"], fields["name"], fields["aggregation"], fields.get("event_name"))


def _meter_field(fields: Mapping[str, Any], name: str) -> None:
    """Check one field through the domain's rule, the others given valid stand-ins."""
    sample = {"key": "k", "name": "n", "aggregation": AGGREGATIONS[0], "event_name": None}
    sample[name] = fields.get(name)
    require_meter(sample["key"], sample["name"], sample["event_name"], sample["aggregation"])


@dataclass(frozen=True)
class NewPrice:
    key: str
    meter: str
    currency: str
    model: str
    terms: dict[str, Any]


def new_price(body: object) -> NewPrice:
    errors = Errors()
    fields = _fields(body, PRICE_FIELDS, ["key", "meter", "currency", "model"], errors)
    _no_fractions(dict(fields), "", errors)
    errors.raise_if_any()
    errors.check("key", lambda: require_key(fields["key"], field="key"))
    errors.check("meter", lambda: require_key(fields["meter"], field="meter"))
    errors.check("currency", lambda: require_currency(fields["currency"]))
    model = fields["model"]
    if model not in MODELS:
        errors.add("model", f"must be one of {', '.join(MODELS)}")
    else:
        terms = {name: value for name, value in fields.items() if name not in {"key", "meter", "currency", "model"}}
        _check_terms(model, terms, errors)
    errors.raise_if_any()
    terms = {name: value for name, value in fields.items() if name not in {"key", "meter", "currency", "model"}}
    return NewPrice(fields["key"], fields["meter"], fields["currency"], model, terms)


def _check_terms(model: str, terms: dict[str, Any], errors: Errors) -> None:
    try:
        require_terms(model, terms)
    except InvalidInputError as error:
        errors.add(error.field or "model", str(error))


@dataclass(frozen=True)
class NewUsageCustomer:
    key: str
    customer: dict[str, str]
    currency: str
    timezone: str
    billing_anchor_day: int
    prices: list[str]
    starts_at: datetime | None
    stripe_customer_id: str | None


def new_usage_customer(body: object) -> NewUsageCustomer:
    errors = Errors()
    fields = _fields(body, CUSTOMER_FIELDS, ["key", "customer", "currency", "timezone", "prices"], errors)
    _no_fractions(dict(fields), "", errors)
    errors.raise_if_any()
    errors.check("key", lambda: require_key(fields["key"], field="key"))
    errors.check("customer", lambda: _customer(fields["customer"]))
    errors.check("currency", lambda: require_currency(fields["currency"]))
    errors.check("timezone", lambda: require_timezone(fields["timezone"]))
    errors.check("billing_anchor_day", lambda: require_anchor_day(fields.get("billing_anchor_day", 1)))
    prices = fields["prices"]
    if not isinstance(prices, list) or not prices:
        errors.add("prices", "must be a non-empty list of price keys")
    else:
        for index, price in enumerate(prices):
            errors.check(f"prices[{index}]", partial(require_key, price, field=f"prices[{index}]"))
    starts_at = None
    if fields.get("starts_at") is not None:
        value = fields["starts_at"]
        if not isinstance(value, str):
            errors.add("starts_at", "must be an ISO 8601 date-time with its zone")
        else:
            try:
                starts_at = moment(value, "starts_at")
            except RequestInvalidError as error:
                errors.found.extend(error.errors)
    stripe_customer = fields.get("stripe_customer_id")
    if stripe_customer is not None and not (isinstance(stripe_customer, str) and stripe_customer.startswith("cus_")):
        errors.add("stripe_customer_id", "must be a Stripe customer id (cus_...) or null")
    errors.raise_if_any()
    return NewUsageCustomer(
        key=fields["key"],
        customer=fields["customer"],
        currency=fields["currency"],
        timezone=fields["timezone"],
        billing_anchor_day=fields.get("billing_anchor_day", 1),
        prices=list(prices),
        starts_at=starts_at,
        stripe_customer_id=stripe_customer,
    )


def _customer(value: object) -> None:
    if isinstance(value, dict) and ("email" not in value or "name" not in value):
        raise InvalidTextError("customer needs email and name", field="customer")
    require_customer(value)


def usage_records(body: object) -> list[object]:
    """`{"records": [...]}`: the list, its size, and no JSON fraction in any record."""
    if not isinstance(body, dict):
        raise RequestInvalidError([{"field": "body", "message": "must be a JSON object"}])
    errors = Errors()
    for name in sorted(set(body) - {"records"}):
        errors.add(name, "unknown field")
    records = body.get("records")
    if not isinstance(records, list) or not 1 <= len(records) <= MAX_RECORDS_PER_REQUEST:
        errors.add("records", f"must be a list of 1 to {MAX_RECORDS_PER_REQUEST} usage records")
        errors.raise_if_any()
    assert isinstance(records, list)
    for index, record in enumerate(records):
        if isinstance(record, dict):
            for name, value in record.items():
                if isinstance(value, FloatNumber) or (isinstance(value, str) and type(value) is not str):
                    errors.add(
                        f"records[{index}].{name}", 'must be an integer or a string such as "1.5", not a JSON fraction'
                    )
    if errors.found:  # name the records' other errors too, as the command would
        named = {error["field"] for error in errors.found}
        _, others = read_records(records)
        errors.found.extend(error for error in others if error["field"] not in named)
    errors.raise_if_any()
    return records

"""The usage API's bodies, defined once (as web/models.py for invoices): request models that
decode the input through the domain's rules (ledger.usage.meters, ledger.usage.pricing, ledger.usage.periods,
ledger.usage.records), and the TypedDicts web/usage/rendering.py returns.

A usage record batch is read by the command itself (`read_records`, errors named
`records[i].field`): the model bounds the batch and documents a record, and the command reads a
batch of 1,000 once.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import ConfigDict, Field, PlainValidator, WithJsonSchema, with_config
from typing_extensions import TypedDict

from ledger.errors import InvalidTextError
from ledger.money import MAX_MINOR_UNITS
from ledger.usage.customers import MAX_PRICES_PER_CUSTOMER
from ledger.usage.meters import AGGREGATIONS, EVENT_NAME_LIMIT, KEY_LIMIT, require_key, require_meter
from ledger.usage.periods import TIMEZONE_LIMIT, require_anchor_day, require_timezone
from ledger.usage.pricing import GRADUATED, MAX_PACKAGE_SIZE, MAX_TIERS, MODELS
from ledger.usage.records import IDENTIFIER_LIMIT
from ledger.validation import DECIMAL_TEXT_LIMIT, NAME_LIMIT
from web.decoding import rule
from web.models import CLOSED, Currency, CustomerInput, Invoice, Moment, Request

MAX_RECORDS_PER_REQUEST = 1_000

KEY_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": f"^[A-Za-z0-9][A-Za-z0-9_.:-]{{0,{KEY_LIMIT - 1}}}$",
    "description": f"1 to {KEY_LIMIT} letters, digits, `_ . : -`, starting with a letter or digit.",
}
DECIMAL_SCHEMA: dict[str, Any] = {"type": "string", "maxLength": DECIMAL_TEXT_LIMIT, "pattern": "^[0-9]+(\\.[0-9]+)?$"}


def Key(field: str) -> Any:
    return Annotated[
        str, PlainValidator(rule(lambda value: require_key(value, field=field))), WithJsonSchema(KEY_SCHEMA)
    ]


def _meter_field(name: str) -> Any:
    """One field checked through the domain's rule, the others given valid stand-ins."""

    def check(value: object) -> object:
        sample: dict[str, object] = {"key": "k", "name": "n", "aggregation": AGGREGATIONS[0], "event_name": None}
        sample[name] = value
        require_meter(sample["key"], sample["name"], sample["event_name"], sample["aggregation"])
        return value

    return PlainValidator(rule(check))


class NewMeter(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"key": "api_calls", "name": "API calls", "aggregation": "sum", "event_name": "api_calls"}]
        }
    )

    key: Annotated[str, _meter_field("key"), WithJsonSchema(KEY_SCHEMA)]
    name: Annotated[
        str,
        _meter_field("name"),
        WithJsonSchema(
            {"type": "string", "minLength": 1, "maxLength": NAME_LIMIT, "description": "Shown on invoices."}
        ),
    ]
    aggregation: Annotated[
        str, _meter_field("aggregation"), WithJsonSchema({"type": "string", "enum": list(AGGREGATIONS)})
    ]
    event_name: Annotated[
        str | None,
        _meter_field("event_name"),
        WithJsonSchema(
            {
                "type": ["string", "null"],
                "maxLength": EVENT_NAME_LIMIT,
                "pattern": "^[A-Za-z0-9_.:-]+$",
                "description": "The Stripe Billing Meter's event_name; defaults to the key.",
            }
        ),
    ] = None


UnitAmount = Annotated[
    Any,
    WithJsonSchema(
        {
            "oneOf": [{"type": "integer", "minimum": 0, "maximum": MAX_MINOR_UNITS}, DECIMAL_SCHEMA],
            "description": 'Minor units per unit, 0 or more: an integer or a decimal string such as "0.25".',
        }
    ),
]
Flat = Annotated[Any, WithJsonSchema({"type": "integer", "minimum": 0, "maximum": MAX_MINOR_UNITS})]


class TierInput(Request):
    up_to: Annotated[
        Any,
        WithJsonSchema(
            {
                "oneOf": [{"type": "integer", "minimum": 1}, DECIMAL_SCHEMA, {"type": "null"}],
                "description": "The tier's last unit (inclusive); null for the last tier only.",
            }
        ),
    ]
    unit_amount: UnitAmount = None
    flat_amount: Flat = None


class NewPrice(Request):
    """A metered price. Its terms (by `model`) are checked by the domain's `require_terms`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key": "api-calls-graduated",
                    "meter": "api_calls",
                    "currency": "usd",
                    "model": GRADUATED,
                    "tiers": [
                        {"up_to": 1000, "unit_amount": 0},
                        {"up_to": "100000", "unit_amount": "0.25"},
                        {"up_to": None, "unit_amount": "0.1", "flat_amount": 500},
                    ],
                }
            ]
        }
    )

    key: Key("key")  # type: ignore[valid-type]
    meter: Key("meter")  # type: ignore[valid-type]
    currency: Currency
    model: Annotated[str, WithJsonSchema({"type": "string", "enum": list(MODELS)})]
    unit_amount: UnitAmount = None
    package_size: Annotated[Any, WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_PACKAGE_SIZE})] = None
    package_amount: Flat = None
    tiers: Annotated[
        Any,
        WithJsonSchema({"type": "array", "minItems": 1, "maxItems": MAX_TIERS, "items": TierInput.model_json_schema()}),
    ] = None

    def terms(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set - {"key", "meter", "currency", "model"}}


def _stripe_customer(value: object) -> str | None:
    if value is not None and not (isinstance(value, str) and value.startswith("cus_")):
        raise InvalidTextError("must be a Stripe customer id (cus_...) or null", field="stripe_customer_id")
    return value


class NewUsageCustomer(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key": "acme",
                    "customer": {"email": "ap@acme.example", "name": "Acme Ltd"},
                    "currency": "usd",
                    "timezone": "America/New_York",
                    "billing_anchor_day": 1,
                    "prices": ["api-calls-graduated"],
                    "starts_at": "2026-01-01T05:00:00Z",
                    "stripe_customer_id": None,
                }
            ]
        }
    )

    key: Key("key")  # type: ignore[valid-type]
    customer: CustomerInput
    currency: Currency
    timezone: Annotated[
        str,
        PlainValidator(rule(require_timezone)),
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": TIMEZONE_LIMIT, "description": "IANA name."}),
    ]
    billing_anchor_day: Annotated[
        int, PlainValidator(rule(require_anchor_day)), WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 31})
    ] = 1
    prices: Annotated[list[Key("prices[]")], Field(min_length=1, max_length=MAX_PRICES_PER_CUSTOMER)]  # type: ignore[valid-type]
    starts_at: Moment | None = Field(None, description="The first period is the one holding this moment; default now.")
    stripe_customer_id: Annotated[
        str | None,
        PlainValidator(rule(_stripe_customer)),
        WithJsonSchema({"type": ["string", "null"], "pattern": "^cus_"}),
    ] = None


class UsageRecordInput(Request):
    customer: Annotated[str, WithJsonSchema(KEY_SCHEMA)]
    meter: Annotated[str, WithJsonSchema(KEY_SCHEMA)]
    quantity: Annotated[
        Any,
        WithJsonSchema(
            {
                "oneOf": [{"type": "integer", "minimum": 0}, DECIMAL_SCHEMA],
                "description": "1 when absent; an integer or a decimal string of ASCII digits.",
            }
        ),
    ] = 1
    timestamp: Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
    identifier: Annotated[str, WithJsonSchema({"type": "string", "minLength": 1, "maxLength": IDENTIFIER_LIMIT})]


class NewUsageBatch(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "records": [
                        {
                            "customer": "acme",
                            "meter": "api_calls",
                            "quantity": 3,
                            "timestamp": "2026-01-15T10:00:00Z",
                            "identifier": "req-0001",
                        }
                    ]
                }
            ]
        }
    )

    records: Annotated[
        list[Any],
        Field(min_length=1, max_length=MAX_RECORDS_PER_REQUEST),
        WithJsonSchema(
            {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_RECORDS_PER_REQUEST,
                "items": UsageRecordInput.model_json_schema(),
            }
        ),
    ]


# ------------------------------------------------------------------------------ responses


@with_config(CLOSED)
class Meter(TypedDict):
    object: Literal["meter"]
    key: str
    name: str
    event_name: str | None
    aggregation: str
    created_at: str


@with_config(CLOSED)
class MeterList(TypedDict):
    object: Literal["list"]
    data: list[Meter]


@with_config(CLOSED)
class Price(TypedDict):
    object: Literal["price"]
    key: str
    meter: str
    currency: str
    model: str
    unit_amount: NotRequired[str]
    package_size: NotRequired[int]
    package_amount: NotRequired[int]
    tiers: NotRequired[list[dict[str, Any]]]
    created_at: str


@with_config(CLOSED)
class PriceList(TypedDict):
    object: Literal["list"]
    data: list[Price]


@with_config(CLOSED)
class UsageCustomer(TypedDict):
    object: Literal["usage_customer"]
    key: str
    customer: dict[str, str]
    currency: str
    timezone: str
    billing_anchor_day: int
    stripe_customer_id: str | None
    prices: list[dict[str, str]]
    next_period: dict[str, str]
    records: int
    periods: list[dict[str, Any]]
    version: int


@with_config(CLOSED)
class RecordOutcome(TypedDict):
    id: str
    identifier: str
    status: Literal["accepted", "duplicate"]


@with_config(CLOSED)
class UsageBatch(TypedDict):
    object: Literal["usage_batch"]
    accepted: int
    duplicates: int
    records: list[RecordOutcome]


@with_config(CLOSED)
class PeriodClosed(TypedDict):
    object: Literal["period_closed"]
    invoice_id: str
    period_start: str
    period_end: str
    invoice: Invoice

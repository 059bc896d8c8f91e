"""The usage part of the OpenAPI document (web/openapi.py merges it): schemas and operations
of web/usage.py, with the domain's own limits, answered as web/usage_render.py renders them."""

from __future__ import annotations

from typing import Any

from ledger.money import MAX_MINOR_UNITS
from ledger.usage.customers import MAX_PRICES_PER_CUSTOMER
from ledger.usage.meters import AGGREGATIONS, EVENT_NAME_LIMIT, KEY_LIMIT, MAX_RECORD_QUANTITY
from ledger.usage.periods import TIMEZONE_LIMIT
from ledger.usage.pricing import GRADUATED, MAX_PACKAGE_SIZE, MAX_TIERS, MODELS, PACKAGE, PER_UNIT, VOLUME
from ledger.usage.records import IDENTIFIER_LIMIT
from ledger.validation import NAME_LIMIT
from web.usage_requests import MAX_RECORDS_PER_REQUEST

Schema = dict[str, Any]

KEY: Schema = {
    "type": "string",
    "pattern": f"^[A-Za-z0-9][A-Za-z0-9_.:-]{{0,{KEY_LIMIT - 1}}}$",
    "description": f"1 to {KEY_LIMIT} letters, digits, `_ . : -`, starting with a letter or digit.",
}
MOMENT: Schema = {"type": "string", "format": "date-time"}
DECIMAL_TEXT: Schema = {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"}
UNIT_AMOUNT: Schema = {
    "type": ["integer", "string"],
    "description": 'Minor units per unit, 0 or more: an integer or a decimal string such as "0.25" (a quarter cent).',
}
FLAT: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_MINOR_UNITS, "description": "Integer minor units."}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Schema], required: list[str] | None = None, **extra: Any) -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties) if required is None else required,
        "properties": properties,
        **extra,
    }


TIER_INPUT: Schema = _object(
    {
        "up_to": {
            "type": ["integer", "string", "null"],
            "description": "The tier's last unit (inclusive), above the previous tier's; null for the last tier only.",
        },
        "unit_amount": UNIT_AMOUNT,
        "flat_amount": {**FLAT, "description": "Charged once when any unit reaches the tier."},
    },
    required=["up_to"],
)

NEW_METER: Schema = _object(
    {
        "key": KEY,
        "name": {"type": "string", "minLength": 1, "maxLength": NAME_LIMIT, "description": "Shown on invoices."},
        "aggregation": {"type": "string", "enum": list(AGGREGATIONS)},
        "event_name": {
            "type": ["string", "null"],
            "maxLength": EVENT_NAME_LIMIT,
            "pattern": "^[A-Za-z0-9_.:-]+$",
            "description": "The Stripe Billing Meter's event_name; defaults to the key.",
        },
    },
    required=["key", "name", "aggregation"],
    examples=[{"key": "api_calls", "name": "API calls", "aggregation": "sum", "event_name": "api_calls"}],
)

NEW_PRICE: Schema = _object(
    {
        "key": KEY,
        "meter": KEY,
        "currency": {"type": "string", "pattern": "^[a-z]{3}$"},
        "model": {"type": "string", "enum": list(MODELS)},
        "unit_amount": {**UNIT_AMOUNT, "description": f"`{PER_UNIT}` only. " + UNIT_AMOUNT["description"]},
        "package_size": {"type": "integer", "minimum": 1, "maximum": MAX_PACKAGE_SIZE, "description": f"`{PACKAGE}`."},
        "package_amount": {
            **FLAT,
            "description": f"`{PACKAGE}`: the price of one package; a part package is a whole one.",
        },
        "tiers": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_TIERS,
            "items": _ref("TierInput"),
            "description": f"`{GRADUATED}` (each tier prices its own units) or `{VOLUME}` (the tier the quantity "
            "falls in prices every unit).",
        },
    },
    required=["key", "meter", "currency", "model"],
    examples=[
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
    ],
)

NEW_USAGE_CUSTOMER: Schema = _object(
    {
        "key": KEY,
        "customer": _ref("CustomerInput"),
        "currency": {"type": "string", "pattern": "^[a-z]{3}$"},
        "timezone": {"type": "string", "minLength": 1, "maxLength": TIMEZONE_LIMIT, "description": "IANA name."},
        "billing_anchor_day": {
            "type": "integer",
            "minimum": 1,
            "maximum": 31,
            "description": "Periods start on this day of the month (clamped to the month's length); default 1.",
        },
        "prices": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_PRICES_PER_CUSTOMER,
            "items": KEY,
            "description": "Price keys, one per meter, in the customer's currency.",
        },
        "starts_at": {**MOMENT, "description": "The first period is the one holding this moment; default now."},
        "stripe_customer_id": {
            "type": ["string", "null"],
            "pattern": "^cus_",
            "description": "Set for a customer billed by Stripe: its usage is reported to Stripe's meters.",
        },
    },
    required=["key", "customer", "currency", "timezone", "prices"],
    examples=[
        {
            "key": "acme",
            "customer": {"email": "ap@acme.example", "name": "Acme Ltd"},
            "currency": "usd",
            "timezone": "America/New_York",
            "billing_anchor_day": 1,
            "prices": ["api-calls-graduated"],
            "starts_at": "2026-01-01T05:00:00Z",
        }
    ],
)

USAGE_RECORD: Schema = _object(
    {
        "customer": KEY,
        "meter": KEY,
        "quantity": {
            "type": ["integer", "string"],
            "description": f"0 to {MAX_RECORD_QUANTITY}: an integer or a decimal string; default 1.",
        },
        "timestamp": {**MOMENT, "description": "When the usage happened, with its offset; at most 5 minutes ahead."},
        "identifier": {
            "type": "string",
            "minLength": 1,
            "maxLength": IDENTIFIER_LIMIT,
            "description": "The client's id of this record: a repeat (in any batch) is ignored.",
        },
    },
    required=["customer", "meter", "timestamp", "identifier"],
)

USAGE_BATCH_INPUT: Schema = _object(
    {"records": {"type": "array", "minItems": 1, "maxItems": MAX_RECORDS_PER_REQUEST, "items": _ref("UsageRecord")}},
    examples=[
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
    ],
)

METER: Schema = _object(
    {
        "object": {"const": "meter"},
        "key": {"type": "string"},
        "name": {"type": "string"},
        "event_name": {"type": "string"},
        "aggregation": {"type": "string", "enum": list(AGGREGATIONS)},
        "created_at": MOMENT,
    }
)

PRICE: Schema = _object(
    {
        "object": {"const": "price"},
        "key": {"type": "string"},
        "meter": {"type": "string"},
        "currency": {"type": "string"},
        "model": {"type": "string", "enum": list(MODELS)},
        "unit_amount": {**DECIMAL_TEXT, "description": "Minor units, a canonical decimal string."},
        "package_size": {"type": "integer"},
        "package_amount": {"type": "integer"},
        "tiers": {
            "type": "array",
            "items": _object(
                {"up_to": {"type": ["string", "null"]}, "unit_amount": DECIMAL_TEXT, "flat_amount": {"type": "integer"}}
            ),
        },
        "created_at": MOMENT,
    },
    required=["object", "key", "meter", "currency", "model", "created_at"],
)

PRICE_PART: Schema = _object(
    {
        "tier": {"type": ["integer", "null"]},
        "units": DECIMAL_TEXT,
        "unit_amount": DECIMAL_TEXT,
        "flat_amount": {"type": "integer"},
        "amount": {"type": "integer", "description": "round_half_up(units x unit_amount) + flat_amount."},
        "packages": {"type": ["integer", "null"]},
        "package_size": {"type": ["integer", "null"]},
    }
)

BREAKDOWN: Schema = _object(
    {
        "model": {"type": "string", "enum": list(MODELS)},
        "quantity": DECIMAL_TEXT,
        "parts": {"type": "array", "items": _ref("PricePart")},
        "total": {"type": "integer", "description": "The sum of the parts, in minor units."},
    }
)

SPAN: dict[str, Schema] = {
    "start": {**MOMENT, "description": "Inclusive, UTC."},
    "end": {**MOMENT, "description": "Exclusive, UTC."},
    "start_date": {"type": "string", "format": "date", "description": "The first local day."},
    "end_date": {"type": "string", "format": "date", "description": "The local day after the last."},
}

USAGE_CUSTOMER: Schema = _object(
    {
        "object": {"const": "usage_customer"},
        "key": {"type": "string"},
        "customer": _ref("Customer"),
        "currency": {"type": "string"},
        "timezone": {"type": "string"},
        "billing_anchor_day": {"type": "integer"},
        "stripe_customer_id": {"type": ["string", "null"]},
        "prices": {
            "type": "array",
            "items": _object(
                {"meter": {"type": "string"}, "price": {"type": "string"}, "aggregation": {"type": "string"}}
            ),
        },
        "next_period": _object(SPAN, description="The next period to close."),
        "records": {"type": "integer", "minimum": 0, "description": "Usage records accepted in all."},
        "periods": {
            "type": "array",
            "items": _object(
                {
                    **SPAN,
                    "status": {"type": "string", "enum": ["open", "closed"]},
                    "invoice_id": {"type": ["string", "null"], "format": "uuid"},
                    "usage": {
                        "type": "array",
                        "items": _object(
                            {
                                "meter": {"type": "string"},
                                "quantity": DECIMAL_TEXT,
                                "records": {"type": "integer"},
                                "billed_quantity": {"type": ["string", "null"]},
                                "breakdown": _ref("PriceBreakdown"),
                            }
                        ),
                    },
                }
            ),
        },
        "version": {"type": "integer", "minimum": 1},
    }
)

USAGE_BATCH: Schema = _object(
    {
        "object": {"const": "usage_batch"},
        "accepted": {"type": "integer", "minimum": 0},
        "duplicates": {"type": "integer", "minimum": 0},
        "records": {
            "type": "array",
            "items": _object(
                {
                    "id": {"type": "string", "format": "uuid"},
                    "identifier": {"type": "string"},
                    "status": {"type": "string", "enum": ["accepted", "duplicate"]},
                }
            ),
            "description": "In request order.",
        },
    }
)

PERIOD_CLOSED: Schema = _object(
    {
        "object": {"const": "period_closed"},
        "invoice_id": {"type": "string", "format": "uuid"},
        "period_start": MOMENT,
        "period_end": MOMENT,
        "invoice": _ref("Invoice"),
    }
)


def _list(item: str) -> Schema:
    return _object({"object": {"const": "list"}, "data": {"type": "array", "items": _ref(item)}})


USAGE_SCHEMAS: dict[str, Schema] = {
    "TierInput": TIER_INPUT,
    "NewMeter": NEW_METER,
    "NewPrice": NEW_PRICE,
    "NewUsageCustomer": NEW_USAGE_CUSTOMER,
    "UsageRecord": USAGE_RECORD,
    "UsageBatchInput": USAGE_BATCH_INPUT,
    "Meter": METER,
    "MeterList": _list("Meter"),
    "Price": PRICE,
    "PriceList": _list("Price"),
    "PricePart": PRICE_PART,
    "PriceBreakdown": BREAKDOWN,
    "UsageCustomer": USAGE_CUSTOMER,
    "UsageBatch": USAGE_BATCH,
    "PeriodClosed": PERIOD_CLOSED,
}

USAGE_PARAMETERS: dict[str, Schema] = {
    "Key": {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}, "description": "The key."},
}


def usage_paths() -> dict[str, Schema]:
    """The operations; built when the document is (web.openapi's helpers, imported then)."""
    from web.openapi import BODY, READ, _body, _json, _operation, _param, _responses

    key = [_param("Key")]
    write = [_param("IdempotencyKey")]

    def create(operation_id: str, summary: str, body: str, answer: str, *extra: str) -> Schema:
        return _operation(
            operation_id,
            summary,
            _responses({"201": _json(f"The {answer}.", answer, headers=["Location"])}, *READ, *BODY, *extra),
            tag="usage",
            parameters=write,
            body=_body(body),
        )

    def read(operation_id: str, summary: str, answer: str, *extra: str) -> Schema:
        return _operation(
            operation_id, summary, _responses({"200": _json("Found.", answer)}, *READ, *extra), tag="usage"
        )

    return {
        "/api/meters": {
            "post": create("createMeter", "Define a meter (meters never change)", "NewMeter", "Meter", "409"),
            "get": read("listMeters", "List meters", "MeterList"),
        },
        "/api/meters/{key}": {"parameters": key, "get": read("getMeter", "Read a meter", "Meter", "404")},
        "/api/prices": {
            "post": create("createPrice", "Define a metered price (prices never change)", "NewPrice", "Price", "409"),
            "get": read("listPrices", "List metered prices", "PriceList"),
        },
        "/api/prices/{key}": {"parameters": key, "get": read("getPrice", "Read a metered price", "Price", "404")},
        "/api/usage-customers": {
            "post": create(
                "createUsageCustomer", "Set up a customer billed for usage", "NewUsageCustomer", "UsageCustomer", "409"
            ),
        },
        "/api/usage-customers/{key}": {
            "parameters": key,
            "get": read(
                "getUsageCustomer", "A usage customer, its periods and their priced usage", "UsageCustomer", "404"
            ),
        },
        "/api/usage-customers/{key}/close-period": {
            "parameters": key,
            "post": _operation(
                "closeUsagePeriod",
                "Close the next billing period into a draft invoice",
                _responses(
                    {"201": _json("The draft invoice billing the period.", "PeriodClosed", headers=["Location"])},
                    *READ,
                    *BODY,
                    "404",
                    "409",
                ),
                tag="usage",
                description="Periods close in order, once each, after they end (409 before). Late usage for a "
                "closed period is billed on the next draft as an adjustment line naming that period.",
                parameters=write,
                body=_body("Empty", required=False),
            ),
        },
        "/api/usage": {
            "post": _operation(
                "recordUsage",
                "Record a batch of usage records",
                _responses({"200": _json("Each record, accepted or duplicate.", "UsageBatch")}, *READ, *BODY),
                tag="usage",
                description=f"Up to {MAX_RECORDS_PER_REQUEST} records in one transaction. A record whose identifier "
                "was seen before for its customer is a duplicate: ignored, and named so. Any bad record refuses "
                "the whole batch (422, nothing stored) with `errors` naming each `records[i].field`.",
                parameters=write,
                body=_body("UsageBatchInput"),
            ),
        },
    }

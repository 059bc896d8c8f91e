"""The OpenAPI 3.1 document of the API: every route of web/app.py, web/invoices.py and (merged
from web/usage_openapi.py) web/usage.py.

The limits come from the domain's own constants (ledger.validation, ledger.money, ledger.lines,
ledger.currencies, ledger.invoices) and the web layer's (web.requests, web.body), so the document
cannot drift from the checks it describes. The response schemas follow web/render.py field by
field; tests/e2e/test_schemathesis.py holds the served API to them.
"""

from __future__ import annotations

import copy
import inspect
from functools import cache
from typing import Any

from commands.idempotency import KEY_LIMIT
from ledger.currencies import EXPONENTS
from ledger.invoices import DELETED, DRAFT, MAX_LINES, OPEN, PAID, UNCOLLECTIBLE, VOID
from ledger.lines import MAX_QUANTITY, QUANTITY_DECIMALS, TAX_RATE_DECIMALS
from ledger.money import MAX_MINOR_UNITS
from ledger.payments import CANCELED, FAILED, PENDING, PROCESSING, SUCCEEDED
from ledger.validation import (
    DESCRIPTION_LIMIT,
    EMAIL_LIMIT,
    MEMO_LIMIT,
    METADATA_KEY_LIMIT,
    METADATA_KEYS_LIMIT,
    METADATA_VALUE_LIMIT,
    NAME_LIMIT,
)
from projections.paging import MAX_PAGE
from web import requests
from web.body import MAX_BODY_BYTES
from web.checkout import URL_LIMIT
from web.problems import PROBLEM_JSON, TYPE_BASE
from web.requests import MAX_LINES_PER_REQUEST, REFERENCE_LIMIT
from web.usage_openapi import USAGE_PARAMETERS, USAGE_SCHEMAS, usage_paths

# A realistic create-invoice body: the document's example, and the one tests and the bench send.
EXAMPLE_INVOICE: dict[str, Any] = {
    "customer": {"email": "ap@acme.example", "name": "Acme Ltd"},
    "currency": "usd",
    "due_date": "2026-04-01",
    "memo": "March services",
    "metadata": {"po": "PO-1138"},
    "lines": [
        {"description": "Platform fee", "quantity": 1, "unit_amount": 50_000},
        {"description": "Seats", "quantity": "12", "unit_amount": 2_500, "tax_rate": "20"},
    ],
}

Schema = dict[str, Any]

JSON = "application/json"
INVOICE_STATUSES = [DRAFT, OPEN, PAID, VOID, UNCOLLECTIBLE, DELETED]
PAYMENT_STATUSES = [PENDING, PROCESSING, SUCCEEDED, FAILED, CANCELED]
CURRENCIES = sorted(EXPONENTS)
TAX_RATE_MAX = 100  # a percentage
DEFAULT_LIMIT: int = inspect.signature(requests.limit).parameters["default"].default


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    """`schema` or null: `type: [<type>, "null"]` (OpenAPI 3.1 / JSON Schema 2020-12)."""
    nullable = copy.deepcopy(schema)
    kind = nullable["type"]
    nullable["type"] = [*kind, "null"] if isinstance(kind, list) else [kind, "null"]
    if "enum" in nullable:
        nullable["enum"] = [*nullable["enum"], None]
    return nullable


# ------------------------------------------------------------------------------ scalars

# Free text: the domain refuses NUL characters in every string it stores. Whitespace is spelled
# out as Python's `str.isspace()` knows it (ECMA-262's `\\s`, which JSON Schema patterns use, lacks
# \\x1c-\\x1f and \\x85): a text of those only is blank to the domain.
SPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NO_NUL = "^[^\\u0000]*$"
NOT_BLANK = f"^[^\\u0000]*[^{SPACE}\\u0000][^\\u0000]*$"


def _text(limit: int, description: str, *, required: bool = False) -> Schema:
    return {
        "type": "string",
        "maxLength": limit,
        **({"minLength": 1} if required else {}),
        "pattern": NOT_BLANK if required else NO_NUL,
        "description": description,
    }


def _amount(description: str, *, minimum: int = -MAX_MINOR_UNITS) -> Schema:
    exact = " Written as a JSON integer: a number with a fraction or exponent (`100.0`, `1e2`) is refused."
    return {"type": "integer", "minimum": minimum, "maximum": MAX_MINOR_UNITS, "description": description + exact}


def _positive_decimal_pattern(maximum: int, decimals: int) -> str:
    """Decimal strings in (0, maximum] with at most `decimals` places (leading zeros allowed)."""
    digits = len(str(maximum)) - 1  # every integer part of up to `digits` digits is below `maximum`
    below = f"0*[1-9][0-9]{{0,{digits - 1}}}(\\.[0-9]{{0,{decimals}}})?"
    fraction = f"0*\\.[0-9]{{0,{decimals - 1}}}[1-9]"
    exact = f"0*{maximum}(\\.0{{0,{decimals}}})?"
    return f"^\\+?({below}|{fraction}|{exact})$"


def _percentage_pattern(decimals: int) -> str:
    """Decimal strings in [0, 100] with at most `decimals` places."""
    digits = len(str(TAX_RATE_MAX)) - 1
    below = f"0*[0-9]{{1,{digits}}}(\\.[0-9]{{0,{decimals}}})?"
    fraction = f"0*\\.[0-9]{{1,{decimals}}}"
    exact = f"0*{TAX_RATE_MAX}(\\.0{{0,{decimals}}})?"
    return f"^\\+?({below}|{fraction}|{exact})$"


MAX_QUANTITY_INT = int(MAX_QUANTITY)
DECIMAL_TEXT_LIMIT = 40  # ledger.validation.parse_decimal reads at most 40 characters

CURRENCY: Schema = {
    "type": "string",
    "enum": CURRENCIES,
    "pattern": "^[a-z]{3}$",
    "description": "A lowercase ISO 4217 currency code, as Stripe writes them (e.g. `usd`).",
}
DATE: Schema = {"type": "string", "format": "date", "description": "A date as YYYY-MM-DD."}
MOMENT: Schema = {"type": "string", "format": "date-time", "description": "An ISO 8601 moment in UTC."}
UUID: Schema = {"type": "string", "format": "uuid"}
EMAIL: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": EMAIL_LIMIT,
    "pattern": f"^[^@{SPACE}\\u0000]+@[^@{SPACE}\\u0000]+\\.[^@{SPACE}\\u0000]+$",
    "description": "An email address.",
    "examples": ["ap@acme.example"],
}
METADATA: Schema = {
    "type": "object",
    "maxProperties": METADATA_KEYS_LIMIT,
    "propertyNames": {"minLength": 1, "maxLength": METADATA_KEY_LIMIT, "pattern": NO_NUL},
    "additionalProperties": {"type": "string", "maxLength": METADATA_VALUE_LIMIT, "pattern": NO_NUL},
    "description": (
        f"Up to {METADATA_KEYS_LIMIT} string keys of 1 to {METADATA_KEY_LIMIT} characters, with string values "
        f"of at most {METADATA_VALUE_LIMIT} characters (Stripe's limits)."
    ),
}
QUANTITY: Schema = {
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY_INT},
        {
            "type": "string",
            "maxLength": DECIMAL_TEXT_LIMIT,
            "pattern": _positive_decimal_pattern(MAX_QUANTITY_INT, QUANTITY_DECIMALS),
        },
    ],
    "description": (
        f"Greater than zero, at most {MAX_QUANTITY_INT}: an integer, or a decimal STRING with up to "
        f'{QUANTITY_DECIMALS} decimal places such as "1.5" (a JSON number with a fraction is refused).'
    ),
}
TAX_RATE: Schema = {
    "oneOf": [
        {"type": "null"},
        {"type": "integer", "minimum": 0, "maximum": TAX_RATE_MAX},
        {"type": "string", "maxLength": DECIMAL_TEXT_LIMIT, "pattern": _percentage_pattern(TAX_RATE_DECIMALS)},
    ],
    "description": (
        f"A percentage from 0 to {TAX_RATE_MAX}: an integer or a decimal string with up to "
        f'{TAX_RATE_DECIMALS} decimal places such as "20" or "7.25"; null or absent means untaxed.'
    ),
}

# ------------------------------------------------------------------------------ request bodies

CUSTOMER_INPUT: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["email", "name"],
    "properties": {
        "email": EMAIL,
        "name": {"type": "string", "maxLength": NAME_LIMIT, "pattern": NO_NUL, "description": "May be empty."},
    },
    "examples": [{"email": "ap@acme.example", "name": "Acme Ltd"}],
}

NEW_LINE: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["description", "quantity", "unit_amount"],
    "properties": {
        "description": _text(DESCRIPTION_LIMIT, "What is billed; not blank.", required=True),
        "quantity": QUANTITY,
        "unit_amount": _amount("The price of one unit in integer minor units (negative for a discount)."),
        "tax_rate": TAX_RATE,
    },
    "examples": [{"description": "Seats", "quantity": "12", "unit_amount": 2500, "tax_rate": "20"}],
}

NEW_INVOICE: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["customer", "currency"],
    "properties": {
        "customer": _ref("CustomerInput"),
        "currency": CURRENCY,
        "due_date": _nullable(DATE),
        "memo": _text(MEMO_LIMIT, "Free text printed on the invoice."),
        "metadata": _nullable(METADATA),
        "lines": {
            "type": "array",
            "maxItems": min(MAX_LINES_PER_REQUEST, MAX_LINES),
            "items": _ref("NewLine"),
            "description": f"At most {min(MAX_LINES_PER_REQUEST, MAX_LINES)} lines; more can be added later.",
        },
    },
    "examples": [EXAMPLE_INVOICE],
}

INVOICE_CHANGES: Schema = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "customer": _ref("CustomerInput"),
        "due_date": {**_nullable(DATE), "description": "YYYY-MM-DD; null removes the due date."},
        "memo": _text(MEMO_LIMIT, "Free text printed on the invoice."),
        "metadata": {**_nullable(METADATA), "description": "Replaces the metadata; null clears it."},
    },
    "description": "Only the fields given change.",
    "examples": [{"memo": "March services, revised", "due_date": "2026-04-15"}],
}

ISSUE_OPTIONS: Schema = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {"due_date": {**_nullable(DATE), "description": "Sets the due date as the invoice opens."}},
    "examples": [{"due_date": "2026-04-01"}],
}

EMPTY: Schema = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "maxProperties": 0,
    "description": "Nothing: no body, or an empty object.",
}

NEW_PAYMENT: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["amount"],
    "properties": {
        "amount": _amount("What was received, in integer minor units.", minimum=1),
        "currency": {**CURRENCY, "description": "Defaults to the invoice's; another one is refused."},
        "reference": _text(REFERENCE_LIMIT, "The bank transfer's or cheque's reference."),
    },
    "examples": [{"amount": 80000, "currency": "usd", "reference": "BT-2026-0042"}],
}

CHECKOUT_OPTIONS: Schema = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        name: {
            "type": "string",
            "maxLength": URL_LIMIT,
            "pattern": "^https?://[\\x21-\\x7e]+$",
            "description": f"An absolute http(s) URL; by default the portal's invoice page ({outcome}).",
        }
        for name, outcome in (("success_url", "after paying"), ("cancel_url", "when the customer gives up"))
    },
    "description": "Where Stripe sends the customer back. No body: the defaults.",
    "examples": [{"success_url": "https://acme.example/paid", "cancel_url": "https://acme.example/invoices"}],
}

# ------------------------------------------------------------------------------ responses


def _object(properties: dict[str, Schema], *, required: list[str] | None = None) -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties) if required is None else required,
        "properties": properties,
    }


def _const(value: str) -> Schema:
    return {"type": "string", "const": value}


MONEY: Schema = {"type": "integer", "description": "Integer minor units of the invoice's currency."}
DECIMAL_TEXT: Schema = {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"}

CUSTOMER: Schema = _object(
    {"email": {"type": "string", "maxLength": EMAIL_LIMIT}, "name": {"type": "string", "maxLength": NAME_LIMIT}}
)

LINE: Schema = _object(
    {
        "id": UUID,
        "description": {"type": "string", "maxLength": DESCRIPTION_LIMIT},
        "quantity": {**DECIMAL_TEXT, "description": "As a canonical decimal string: `12`, `1.5`."},
        "unit_amount": MONEY,
        "tax_rate": {**_nullable(DECIMAL_TEXT), "description": "Percent, as a canonical decimal string."},
        "amount": {**MONEY, "description": "quantity x unit_amount, rounded half-up once."},
        "tax": MONEY,
    }
)

FAILED_ATTEMPT: Schema = _object(
    {
        "payment_id": {"type": "string"},
        "code": {"type": "string"},
        "message": {"type": "string"},
        "at": {"type": "string", "format": "date-time"},
    }
)

INVOICE: Schema = _object(
    {
        "id": UUID,
        "object": _const("invoice"),
        "number": {"type": ["string", "null"], "description": "Null while draft."},
        "status": {"type": "string", "enum": INVOICE_STATUSES},
        "overdue": {"type": "boolean", "description": "Open or uncollectible past its due date."},
        "currency": CURRENCY,
        "customer": _ref("Customer"),
        "lines": {"type": "array", "maxItems": MAX_LINES, "items": _ref("Line")},
        "subtotal": MONEY,
        "tax": MONEY,
        "total": MONEY,
        "amount_paid": MONEY,
        "amount_refunded": MONEY,
        "amount_due": MONEY,
        "amount_overpaid": MONEY,
        "amount_disputed": MONEY,
        "amount_dispute_lost": MONEY,
        "written_off": MONEY,
        "due_date": _nullable(DATE),
        "memo": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "failed_attempts": {"type": "array", "items": _ref("FailedAttempt")},
        "version": {"type": "integer", "minimum": 1, "description": "Send it back as If-Match."},
        "created_at": MOMENT,
        "updated_at": MOMENT,
        "issued_at": _nullable(MOMENT),
        "paid_at": _nullable(MOMENT),
    }
)

INVOICE_SUMMARY: Schema = _object(
    {
        "id": UUID,
        "object": _const("invoice_summary"),
        "number": {"type": ["string", "null"]},
        "status": {"type": "string", "enum": INVOICE_STATUSES},
        "customer": _ref("Customer"),
        "currency": CURRENCY,
        "subtotal": MONEY,
        "tax": MONEY,
        "total": MONEY,
        "amount_paid": MONEY,
        "amount_refunded": MONEY,
        "amount_due": MONEY,
        "due_date": _nullable(DATE),
        "failed_attempts": {"type": "integer", "minimum": 0, "description": "How many payment attempts failed."},
        "version": {"type": "integer", "minimum": 1},
        "created_at": MOMENT,
        "issued_at": _nullable(MOMENT),
        "paid_at": _nullable(MOMENT),
    }
)

INVOICE_LIST: Schema = _object(
    {
        "object": _const("list"),
        "data": {"type": "array", "maxItems": MAX_PAGE, "items": _ref("InvoiceSummary")},
        "has_more": {"type": "boolean"},
        "next_cursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page."},
    }
)

PAYMENT: Schema = _object(
    {
        "id": UUID,
        "object": _const("payment"),
        "invoice_id": UUID,
        "provider": {"type": "string", "description": "`offline` for money received outside a processor."},
        "reference": {"type": "string", "description": "The provider's id; the given reference offline."},
        "status": {"type": "string", "enum": PAYMENT_STATUSES},
        "currency": CURRENCY,
        "amount": MONEY,
        "amount_captured": MONEY,
        "amount_refunded": MONEY,
        "fee": MONEY,
        "version": {"type": "integer", "minimum": 1},
        "created_at": MOMENT,
    }
)

PAYMENT_RECORDED: Schema = _object({"payment": _ref("Payment"), "invoice": _ref("Invoice")})

CHECKOUT_STARTED: Schema = _object(
    {
        "checkout_url": {"type": "string", "description": "Send the customer here: Stripe's hosted payment page."},
        "session_id": {"type": "string", "description": "The Checkout Session's id (`cs_...`)."},
        "expires_at": {**MOMENT, "description": "When the session stops accepting payment."},
        "invoice": _ref("Invoice"),
    }
)

EVENT: Schema = _object(
    {
        "version": {"type": "integer", "minimum": 1},
        "type": {"type": "string", "description": "The event's topic, e.g. `invoice.issued`."},
        "at": MOMENT,
        "data": {"type": "object", "description": "The event's own fields."},
    }
)

EVENT_LIST: Schema = _object(
    {
        "object": _const("list"),
        "invoice_id": UUID,
        "data": {"type": "array", "items": _ref("Event")},
    }
)

PROBLEM: Schema = _object(
    {
        "type": {
            "type": "string",
            "format": "uri",
            "description": f"`{TYPE_BASE}<slug>` (e.g. `{TYPE_BASE}stale-version`), or `about:blank`.",
        },
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": _object({"field": {"type": "string"}, "message": {"type": "string"}}),
            "description": "For invalid input: each bad field, by its path (`lines[2].unit_amount`).",
        },
        "database": {**_const("down"), "description": "`GET /healthz` only: the database does not answer."},
    },
    required=["type", "title", "status", "detail"],
)

HEALTH: Schema = _object(
    {
        "status": _const("ok"),
        "database": _const("up"),
    }
)

SCHEMAS: dict[str, Schema] = {
    "CustomerInput": CUSTOMER_INPUT,
    "NewLine": NEW_LINE,
    "NewInvoice": NEW_INVOICE,
    "InvoiceChanges": INVOICE_CHANGES,
    "IssueOptions": ISSUE_OPTIONS,
    "Empty": EMPTY,
    "NewPayment": NEW_PAYMENT,
    "Customer": CUSTOMER,
    "Line": LINE,
    "FailedAttempt": FAILED_ATTEMPT,
    "Invoice": INVOICE,
    "InvoiceSummary": INVOICE_SUMMARY,
    "InvoiceList": INVOICE_LIST,
    "Payment": PAYMENT,
    "PaymentRecorded": PAYMENT_RECORDED,
    "CheckoutOptions": CHECKOUT_OPTIONS,
    "CheckoutStarted": CHECKOUT_STARTED,
    "Event": EVENT,
    "EventList": EVENT_LIST,
    "Problem": PROBLEM,
    "Health": HEALTH,
    **USAGE_SCHEMAS,
}

# ------------------------------------------------------------------------------ parameters and headers

PARAMETERS: dict[str, Schema] = {
    "InvoiceId": {
        "name": "invoice_id",
        "in": "path",
        "required": True,
        "schema": UUID,
        "description": "The invoice's id (an id that cannot exist is answered 404).",
    },
    "LineId": {"name": "line_id", "in": "path", "required": True, "schema": UUID, "description": "The line's id."},
    "IdempotencyKey": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": KEY_LIMIT},
        "description": (
            "Makes the write safe to retry: a repeat is answered as the first request was (with the invoice "
            "as that request left it); the same key with a different request is refused (422)."
        ),
    },
    "IfMatch": {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "pattern": '^(W/)?"?0*[1-9][0-9]*"?$'},
        "description": 'The invoice\'s version (its ETag, e.g. `"3"`): a stale one is answered 412.',
    },
    **USAGE_PARAMETERS,
}

HEADERS: dict[str, Schema] = {
    "ETag": {"schema": {"type": "string"}, "description": 'The invoice\'s version, quoted: `"3"`.', "required": True},
    "Location": {"schema": {"type": "string"}, "description": "The created resource's URL.", "required": True},
    "WWW-Authenticate": {"schema": {"type": "string"}, "required": True},
    "Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait before retrying.", "required": True},
}


def _header(name: str) -> Schema:
    return {"$ref": f"#/components/headers/{name}"}


def _problem(description: str, headers: list[str] | None = None) -> Schema:
    response: Schema = {"description": description, "content": {PROBLEM_JSON: {"schema": _ref("Problem")}}}
    if headers:
        response["headers"] = {name: _header(name) for name in headers}
    return response


RESPONSES: dict[str, Schema] = {
    "MalformedJson": _problem("The body is not JSON (broken, NaN or Infinity, a key twice, not UTF-8)."),
    "Unauthorized": _problem("No bearer token, or not the right one.", ["WWW-Authenticate"]),
    "NotFound": _problem("No such invoice (or line)."),
    "RuleViolated": _problem("The request is valid, but the invoice's state forbids it (e.g. editing an issued one)."),
    "StaleVersion": _problem("If-Match names a version that is not the invoice's current one."),
    "TooLarge": _problem(f"The body is over {MAX_BODY_BYTES:,} bytes."),
    "UnsupportedMediaType": _problem("The body is not sent as application/json."),
    "InvalidInput": _problem(
        "Invalid input: `errors` names each bad field (also: an idempotency key reused for another request, "
        "a currency other than the invoice's)."
    ),
    "Unavailable": _problem("The event store cannot answer or commit right now: retry.", ["Retry-After"]),
    "PaymentDeclined": _problem("The payment provider declined the payment."),
    "ProviderUnavailable": _problem(
        "The payment provider is not configured (no STRIPE_API_KEY, or a key Stripe refuses), cannot be "
        "reached or is rate limiting, or the event store cannot commit: nothing was recorded.",
        ["Retry-After"],
    ),
}


def _responses(ok: dict[str, Schema], *errors: str) -> dict[str, Schema]:
    statuses = {
        "400": "MalformedJson",
        "401": "Unauthorized",
        "404": "NotFound",
        "409": "RuleViolated",
        "412": "StaleVersion",
        "413": "TooLarge",
        "415": "UnsupportedMediaType",
        "422": "InvalidInput",
        "503": "Unavailable",
    }
    wanted = {status: name for status, name in statuses.items() if status in errors}
    return {**ok, **{status: {"$ref": f"#/components/responses/{name}"} for status, name in sorted(wanted.items())}}


def _json(description: str, schema: str, *, headers: list[str] | None = None) -> Schema:
    response: Schema = {"description": description, "content": {JSON: {"schema": _ref(schema)}}}
    if headers:
        response["headers"] = {name: _header(name) for name in headers}
    return response


def _body(schema: str, *, required: bool = True) -> Schema:
    return {"required": required, "content": {JSON: {"schema": _ref(schema)}}}


# ------------------------------------------------------------------------------ operations

AUTH: list[dict[str, list[str]]] = [{"bearerAuth": []}]
READ = ("401", "503")
BODY = ("400", "413", "415", "422")
ON_INVOICE = ("401", "404", "503")
UPDATE = (*ON_INVOICE, *BODY, "409", "412")


def _invoice_ok(status: str, description: str) -> dict[str, Schema]:
    headers = ["ETag", "Location"] if status == "201" else ["ETag"]
    return {status: _json(description, "Invoice", headers=headers)}


def _operation(
    operation_id: str,
    summary: str,
    responses: dict[str, Schema],
    *,
    tag: str = "invoices",
    description: str | None = None,
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
    secured: bool = True,
) -> Schema:
    operation: Schema = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    operation["responses"] = responses
    operation["security"] = AUTH if secured else []
    return operation


def _param(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _transition(operation_id: str, summary: str, description: str) -> Schema:
    return _operation(
        operation_id,
        summary,
        _responses(_invoice_ok("200", "The invoice after the change."), *UPDATE),
        description=description,
        parameters=[_param("IfMatch"), _param("IdempotencyKey")],
        body=_body("Empty", required=False),
    )


def _paths() -> dict[str, Schema]:
    invoice_id = [_param("InvoiceId")]
    list_parameters = [
        _query(
            "status",
            {"type": "string", "enum": [s for s in INVOICE_STATUSES if s != DELETED]},
            "Only invoices in this status (a deleted draft is in no list).",
        ),
        _query(
            "customer",
            {"type": "string", "maxLength": EMAIL_LIMIT, "pattern": NO_NUL},
            "Only this customer's (by email).",
        ),
        _query("currency", CURRENCY, "Only invoices in this currency."),
        _query("created_from", MOMENT, "Created at or after this moment (with its zone)."),
        _query("created_to", MOMENT, "Created before this moment (with its zone)."),
        _query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_LIMIT},
            f"Page size, 1 to {MAX_PAGE}.",
        ),
        _query("cursor", {"type": "string", "pattern": "^[A-Za-z0-9_=-]*$"}, "`next_cursor` of the previous page."),
    ]
    return {
        "/healthz": {
            "get": _operation(
                "health",
                "Health check",
                {
                    "200": _json("The database answers.", "Health"),
                    "503": _problem('The database does not answer (`"database": "down"`).', ["Retry-After"]),
                },
                tag="service",
                secured=False,
            )
        },
        "/openapi.json": {
            "get": _operation(
                "openapi",
                "This OpenAPI document",
                {
                    "200": {
                        "description": "The OpenAPI 3.1 document.",
                        "content": {JSON: {"schema": {"type": "object"}}},
                    }
                },
                tag="service",
                secured=False,
            )
        },
        "/docs": {
            "get": _operation(
                "docs",
                "Human-readable API documentation",
                {"200": {"description": "An HTML page.", "content": {"text/html": {"schema": {"type": "string"}}}}},
                tag="service",
                secured=False,
            )
        },
        "/webhooks/stripe": {
            "post": _operation(
                "stripeWebhook",
                "Receive a Stripe webhook delivery",
                {
                    "200": {
                        "description": "The event is durably recorded (or was already: `duplicate`).",
                        "content": {
                            JSON: {
                                "schema": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["received", "duplicate", "id", "outcome"],
                                    "properties": {
                                        "received": {"const": True},
                                        "duplicate": {"type": "boolean"},
                                        "id": {"type": "string"},
                                        "outcome": {
                                            "type": "string",
                                            "enum": ["applied", "unmatched", "refused", "ignored"],
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "400": _problem(
                        "Not a genuine event: missing or bad Stripe-Signature, a timestamp over 300 s old, or a body "
                        "that is not an event. Nothing is recorded."
                    ),
                    "413": {"$ref": "#/components/responses/TooLarge"},
                    "503": _problem(
                        "The event could not be recorded (store unavailable), or no signing secret is configured: "
                        "Stripe retries.",
                        ["Retry-After"],
                    ),
                },
                tag="stripe",
                description="Authenticated by the `Stripe-Signature` header (HMAC-SHA256 of the raw body with the "
                "endpoint's signing secret), not by the bearer token. The raw body is kept as evidence.",
                parameters=[
                    {
                        "name": "Stripe-Signature",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "`t=<unix time>,v1=<hex HMAC>` as Stripe sends it.",
                    }
                ],
                body={"required": False, "content": {JSON: {"schema": {"type": "object"}}}},
                secured=False,
            )
        },
        "/api/invoices": {
            "post": _operation(
                "createInvoice",
                "Create a draft invoice",
                _responses(_invoice_ok("201", "The draft, with its lines priced."), *READ, *BODY),
                parameters=[_param("IdempotencyKey")],
                body=_body("NewInvoice"),
            ),
            "get": _operation(
                "listInvoices",
                "List invoices, newest first",
                _responses(
                    {"200": _json("A page of invoices.", "InvoiceList")},
                    *READ,
                    "422",
                ),
                description="Filters combine; pages follow `next_cursor`. Unknown query parameters are refused.",
                parameters=list_parameters,
            ),
        },
        "/api/invoices/{invoice_id}": {
            "parameters": invoice_id,
            "get": _operation(
                "getInvoice",
                "Read an invoice",
                _responses(_invoice_ok("200", "The invoice."), *ON_INVOICE, "422"),
                parameters=[_query("as_of", MOMENT, "The invoice as it stood at this moment (with its zone).")],
            ),
            "patch": _operation(
                "updateInvoice",
                "Change a draft's details",
                _responses(_invoice_ok("200", "The invoice after the change."), *UPDATE),
                parameters=[_param("IfMatch"), _param("IdempotencyKey")],
                body=_body("InvoiceChanges"),
            ),
            "delete": _operation(
                "deleteInvoice",
                "Delete a draft",
                _responses({"204": {"description": "Deleted."}}, *UPDATE),
                parameters=[_param("IfMatch"), _param("IdempotencyKey")],
                body=_body("Empty", required=False),
            ),
        },
        "/api/invoices/{invoice_id}/lines": {
            "parameters": invoice_id,
            "post": _operation(
                "addLine",
                "Add a line to a draft",
                _responses(_invoice_ok("201", "The invoice with the new line."), *UPDATE),
                parameters=[_param("IfMatch"), _param("IdempotencyKey")],
                body=_body("NewLine"),
            ),
        },
        "/api/invoices/{invoice_id}/lines/{line_id}": {
            "parameters": [*invoice_id, _param("LineId")],
            "delete": _operation(
                "removeLine",
                "Remove a line from a draft",
                _responses(_invoice_ok("200", "The invoice without the line."), *UPDATE),
                parameters=[_param("IfMatch"), _param("IdempotencyKey")],
                body=_body("Empty", required=False),
            ),
        },
        "/api/invoices/{invoice_id}/issue": {
            "parameters": invoice_id,
            "post": _operation(
                "issueInvoice",
                "Issue a draft: it is numbered and opens for payment",
                _responses(_invoice_ok("200", "The open invoice (paid at once if its total is zero)."), *UPDATE),
                parameters=[_param("IfMatch"), _param("IdempotencyKey")],
                body=_body("IssueOptions", required=False),
            ),
        },
        "/api/invoices/{invoice_id}/void": {
            "parameters": invoice_id,
            "post": _transition("voidInvoice", "Void an open invoice", "Only an open invoice without payments."),
        },
        "/api/invoices/{invoice_id}/mark-uncollectible": {
            "parameters": invoice_id,
            "post": _transition(
                "markUncollectible",
                "Mark an open invoice uncollectible",
                "Writes the amount due off; a later payment still settles it.",
            ),
        },
        "/api/invoices/{invoice_id}/payments": {
            "parameters": invoice_id,
            "post": _operation(
                "recordPayment",
                "Record an offline payment",
                _responses(
                    {"201": _json("The payment and the invoice after it.", "PaymentRecorded", headers=["ETag"])},
                    *ON_INVOICE,
                    *BODY,
                    "409",
                ),
                description="Money received outside any processor (bank transfer, cheque), posted to the bank.",
                parameters=[_param("IdempotencyKey")],
                body=_body("NewPayment"),
            ),
        },
        "/api/invoices/{invoice_id}/checkout": {
            "parameters": invoice_id,
            "post": _operation(
                "createCheckout",
                "Pay an invoice on Stripe Checkout",
                {
                    **_responses(
                        {"201": _json("The hosted page to send the customer to.", "CheckoutStarted", headers=["ETag"])},
                        "401",
                        "404",
                        "409",
                        *BODY,
                    ),
                    "402": {"$ref": "#/components/responses/PaymentDeclined"},
                    "503": {"$ref": "#/components/responses/ProviderUnavailable"},
                },
                description=(
                    "Opens a Stripe Checkout Session for the amount due of an open or uncollectible invoice "
                    "(409 otherwise) and records it on the invoice (`invoice.checkout-started`); the payment is "
                    "recorded when Stripe's webhooks report it. Retrying with the same "
                    "Idempotency-Key (or, without one, the same request on the same invoice version) returns "
                    "the same session."
                ),
                parameters=[_param("IdempotencyKey")],
                body=_body("CheckoutOptions", required=False),
            ),
        },
        "/api/invoices/{invoice_id}/events": {
            "parameters": invoice_id,
            "get": _operation(
                "invoiceEvents",
                "The invoice's audit trail",
                _responses({"200": _json("Every event of the invoice, oldest first.", "EventList")}, *ON_INVOICE),
            ),
        },
    }


@cache
def _document() -> Schema:
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "Billing ledger API",
            "version": "1",
            "description": (
                "Invoices and payments over an event-sourced ledger. Money is an integer count of minor units "
                "beside its `currency`; moments are ISO 8601 in UTC; dates are YYYY-MM-DD. Errors are "
                "`application/problem+json` (RFC 9457) with `type`, `title`, `status`, `detail` and, for invalid "
                f"input, `errors` naming each field. Bodies are JSON of at most {MAX_BODY_BYTES:,} bytes."
            ),
        },
        "tags": [
            {"name": "invoices", "description": "Invoices, their lines, payments and audit trail."},
            {"name": "usage", "description": "Meters, metered prices, usage customers, usage records, periods."},
            {"name": "service", "description": "Health and documentation, without a token."},
        ],
        "paths": {**_paths(), **usage_paths()},
        "components": {
            "schemas": SCHEMAS,
            "parameters": PARAMETERS,
            "headers": HEADERS,
            "responses": RESPONSES,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`Authorization: Bearer <LEDGER_API_TOKEN>` on every /api route.",
                }
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    """The document (built once; a deep copy, so a caller cannot alter the cached one)."""
    return copy.deepcopy(_document())

"""The invoice API's bodies, defined once: requests as pydantic models that decode the input
(web/decoding.py), responses as TypedDicts that web/render.py returns (so mypy holds the
rendering to them). web/openapi.py generates the OpenAPI document from both.

The limits are the domain's constants (ledger.validation, ledger.money, ledger.lines, ...), and
each field with a domain rule is checked by that rule: nothing here restates a rule.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NotRequired
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
    with_config,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from ledger.currencies import EXPONENTS, require_currency
from ledger.errors import InvalidInputError
from ledger.invoices import DRAFT, MAX_LINES, OPEN, PAID, UNCOLLECTIBLE, VOID
from ledger.lines import MAX_QUANTITY, QUANTITY_DECIMALS, TAX_RATE_DECIMALS, require_quantity, require_tax_rate
from ledger.money import MAX_MINOR_UNITS
from ledger.payments import CANCELED, FAILED, PENDING, PROCESSING, REFERENCE_LIMIT, SUCCEEDED
from ledger.validation import (
    DECIMAL_TEXT_LIMIT,
    DESCRIPTION_LIMIT,
    EMAIL_LIMIT,
    MEMO_LIMIT,
    METADATA_KEY_LIMIT,
    METADATA_KEYS_LIMIT,
    METADATA_VALUE_LIMIT,
    NAME_LIMIT,
    require_date,
    require_email,
    require_metadata,
    require_text,
)
from projections.paging import MAX_PAGE
from web.decoding import rule

MAX_LINES_PER_REQUEST = MAX_LINES  # a new invoice can be created whole

URL_LIMIT = 2048
TAX_RATE_MAX = 100  # a percentage
INVOICE_STATUSES = [DRAFT, OPEN, PAID, VOID, UNCOLLECTIBLE]  # what a list shows and reads answer: not deleted drafts
PAYMENT_STATUSES = [PENDING, PROCESSING, SUCCEEDED, FAILED, CANCELED]
CURRENCIES = sorted(EXPONENTS)

# Whitespace as Python's `str.isspace()` knows it (ECMA-262's `\s`, which JSON Schema patterns
# use, lacks \x1c-\x1f and \x85): a text of those only is blank to the domain.
SPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NO_NUL = "^[^\\u0000]*$"
NOT_BLANK = f"^[^\\u0000]*[^{SPACE}\\u0000][^\\u0000]*$"

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


class Request(BaseModel):
    """A request body: unknown fields are refused, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


# ------------------------------------------------------------------------------ request fields


def Text(limit: int, description: str, *, field: str, required: bool = False) -> Any:
    """Free text checked by the domain's `require_text` (no NUL, not blank when required)."""
    return Annotated[
        str,
        PlainValidator(rule(lambda value: require_text(value, field=field, limit=limit, required=required))),
        WithJsonSchema(
            {
                "type": "string",
                "maxLength": limit,
                **({"minLength": 1} if required else {}),
                "pattern": NOT_BLANK if required else NO_NUL,
                "description": description,
            }
        ),
    ]


Currency = Annotated[
    str,
    PlainValidator(rule(require_currency)),
    WithJsonSchema(
        {
            "type": "string",
            "enum": CURRENCIES,
            "description": "A lowercase ISO 4217 currency code, as Stripe writes them (e.g. `usd`).",
        }
    ),
]


def _date_text(value: object) -> str:
    return require_date(value).isoformat()


Date = Annotated[
    str,
    PlainValidator(rule(_date_text)),
    WithJsonSchema({"type": "string", "format": "date", "description": "A date as YYYY-MM-DD."}),
]

Email = Annotated[
    str,
    PlainValidator(rule(require_email)),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": EMAIL_LIMIT,
            "pattern": f"^[^@{SPACE}\\u0000]+@[^@{SPACE}\\u0000]+\\.[^@{SPACE}\\u0000]+$",
            "examples": ["ap@acme.example"],
        }
    ),
]

METADATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "maxProperties": METADATA_KEYS_LIMIT,
    "propertyNames": {"minLength": 1, "maxLength": METADATA_KEY_LIMIT, "pattern": NO_NUL},
    "additionalProperties": {"type": "string", "maxLength": METADATA_VALUE_LIMIT, "pattern": NO_NUL},
    "description": (
        f"Up to {METADATA_KEYS_LIMIT} string keys of 1 to {METADATA_KEY_LIMIT} characters, with string values "
        f"of at most {METADATA_VALUE_LIMIT} characters (Stripe's limits)."
    ),
}
# null is no metadata (`require_metadata(None)` is {}): on a PATCH it clears them.
Metadata = Annotated[
    dict[str, str],
    PlainValidator(rule(require_metadata)),
    WithJsonSchema({**METADATA_SCHEMA, "type": ["object", "null"]}),
]


def Amount(description: str, *, minimum: int = -MAX_MINOR_UNITS) -> Any:
    exact = " Written as a JSON integer: a number with a fraction or exponent (`100.0`, `1e2`) is refused."
    return Annotated[int, Field(ge=minimum, le=MAX_MINOR_UNITS, description=description + exact)]


def _positive_decimal_pattern(maximum: int, decimals: int) -> str:
    """Decimal strings in (0, maximum] with at most `decimals` places (leading zeros allowed)."""
    digits = len(str(maximum)) - 1  # every integer part of up to `digits` digits is below `maximum`
    below = f"0*[1-9][0-9]{{0,{digits - 1}}}(\\.[0-9]{{0,{decimals}}})?"
    fraction = f"0*\\.[0-9]{{0,{decimals - 1}}}[1-9]"
    exact = f"0*{maximum}(\\.0{{0,{decimals}}})?"
    return f"^({below}|{fraction}|{exact})$"


def _percentage_pattern(decimals: int) -> str:
    """Decimal strings in [0, 100] with at most `decimals` places."""
    digits = len(str(TAX_RATE_MAX)) - 1
    below = f"0*[0-9]{{1,{digits}}}(\\.[0-9]{{0,{decimals}}})?"
    fraction = f"0*\\.[0-9]{{1,{decimals}}}"
    exact = f"0*{TAX_RATE_MAX}(\\.0{{0,{decimals}}})?"
    return f"^({below}|{fraction}|{exact})$"


Quantity = Annotated[
    int | str,
    PlainValidator(rule(require_quantity, keep=True)),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "integer", "minimum": 1, "maximum": int(MAX_QUANTITY)},
                {
                    "type": "string",
                    "maxLength": DECIMAL_TEXT_LIMIT,
                    "pattern": _positive_decimal_pattern(int(MAX_QUANTITY), QUANTITY_DECIMALS),
                },
            ],
            "description": (
                f"Greater than zero, at most {int(MAX_QUANTITY)}: an integer, or a decimal STRING of ASCII digits "
                f'with up to {QUANTITY_DECIMALS} decimal places such as "1.5" (a JSON number with a fraction is '
                "refused)."
            ),
        }
    ),
]

TaxRate = Annotated[
    int | str | None,
    PlainValidator(rule(require_tax_rate, keep=True)),
    WithJsonSchema(
        {
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
    ),
]


def _url(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInputError("must be a string")
    if len(value) > URL_LIMIT:
        raise InvalidInputError(f"must be at most {URL_LIMIT} characters")
    if not value.isascii() or any(not character.isprintable() or character.isspace() for character in value):
        raise InvalidInputError("must be a URL without spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise InvalidInputError("is not a URL") from None
    if not value.startswith(("http://", "https://")) or not parts.hostname:
        raise InvalidInputError("must be an absolute http or https URL")
    return value


def ReturnUrl(outcome: str) -> Any:
    return Annotated[
        str | None,
        PlainValidator(rule(lambda value: None if value is None else _url(value))),
        WithJsonSchema(
            {
                "type": ["string", "null"],
                "maxLength": URL_LIMIT,
                "pattern": "^https?://[\\x21-\\x7e]+$",
                "description": (
                    f"An absolute http(s) URL ({outcome}); by default the invoice's page in the client portal, "
                    "under a link made for its customer. Required when the portal is off (no LEDGER_SECRET_KEY)."
                ),
            }
        ),
    ]


# ------------------------------------------------------------------------------ request bodies


def _not_null(value: object) -> object:
    """For a field that may be absent but not null (a default is not validated; null is)."""
    if value is None:
        raise PydanticCustomError("not_null", "must not be null; leave the field out instead")
    return value


def _absent_not_null(*names: str, **extra: Any) -> Callable[[dict[str, Any]], None]:
    """The schema of fields that may be left out but not sent as null (`_not_null`): pydantic
    writes `X | None` as "X or null"; the document says X."""

    def adjust(schema: dict[str, Any]) -> None:
        for name in names:
            field = schema["properties"][name]
            options = [option for option in field.pop("anyOf", []) if option.get("type") != "null"]
            if len(options) == 1:
                field.update(options[0])
        schema.update(extra)

    return adjust


class CustomerInput(Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "ap@acme.example", "name": "Acme Ltd"}]})

    email: Email
    name: Text(NAME_LIMIT, "May be empty.", field="customer.name")  # type: ignore[valid-type]


class NewLine(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"description": "Seats", "quantity": "12", "unit_amount": 2500, "tax_rate": "20"}]
        }
    )

    description: Text(DESCRIPTION_LIMIT, "What is billed; not blank.", field="description", required=True)  # type: ignore[valid-type]
    quantity: Quantity
    unit_amount: Amount("The price of one unit in integer minor units (negative for a discount).")  # type: ignore[valid-type]
    tax_rate: TaxRate = None


class NewInvoice(Request):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_INVOICE]})

    customer: CustomerInput
    currency: Currency
    due_date: Date | None = None
    memo: Text(MEMO_LIMIT, "Free text printed on the invoice.", field="memo") = ""  # type: ignore[valid-type]
    metadata: Metadata = Field(default_factory=dict)
    lines: list[NewLine] = Field(
        default_factory=list,
        max_length=MAX_LINES_PER_REQUEST,
        description=f"At most {MAX_LINES_PER_REQUEST} lines; more can be added later.",
    )


class InvoiceChanges(Request):
    """Only the fields given change."""

    model_config = ConfigDict(
        json_schema_extra=_absent_not_null(
            "customer", examples=[{"memo": "March services, revised", "due_date": "2026-04-15"}], minProperties=1
        )
    )

    customer: CustomerInput | None = None  # absent: unchanged; null is refused (`_given`)
    due_date: Date | None = Field(None, description="YYYY-MM-DD; null removes the due date.")
    memo: Text(MEMO_LIMIT, "Free text printed on the invoice.", field="memo") = ""  # type: ignore[valid-type]
    metadata: Metadata = Field(default_factory=dict, description="Replaces the metadata; null clears them.")

    _given = field_validator("customer", mode="before")(lambda value: _not_null(value))

    @model_validator(mode="after")
    def _something(self) -> InvoiceChanges:
        if not self.model_fields_set:
            names = ", ".join(sorted(type(self).model_fields))
            raise PydanticCustomError("empty", "give at least one of: {names}", {"names": names})
        return self

    def changes(self) -> dict[str, Any]:
        """The fields given, as the command takes them."""
        given = {name: getattr(self, name) for name in self.model_fields_set}
        if "customer" in given and isinstance(given["customer"], CustomerInput):
            given["customer"] = given["customer"].model_dump()
        return given


class IssueOptions(Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"due_date": "2026-04-01"}]})

    due_date: Date | None = Field(None, description="Sets the due date as the invoice opens.")


class Empty(Request):
    """Nothing: no body, or an empty object."""

    model_config = ConfigDict(json_schema_extra={"maxProperties": 0})


class NewPayment(Request):
    """An offline payment (bank transfer, cheque). The same `reference` on the same invoice is the
    same payment: a retry records nothing twice."""

    model_config = ConfigDict(
        json_schema_extra=_absent_not_null(
            "currency", examples=[{"amount": 80000, "currency": "usd", "reference": "BT-2026-0042"}]
        )
    )

    amount: Amount("What was received, in integer minor units.", minimum=1)  # type: ignore[valid-type]
    _given = field_validator("currency", mode="before")(lambda value: _not_null(value))
    currency: Currency | None = Field(None, description="Defaults to the invoice's; another one is refused.")
    reference: Text(  # type: ignore[valid-type]
        REFERENCE_LIMIT,
        "The bank transfer's or cheque's reference. The same reference on the same invoice is the same payment: "
        "sent again with the same amount it is answered as the first time, with another amount 409.",
        field="reference",
        required=True,
    )


class CheckoutOptions(Request):
    """Where Stripe sends the customer back. No body: the defaults."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"success_url": "https://acme.example/paid", "cancel_url": "https://acme.example/invoices"}]
        }
    )

    success_url: ReturnUrl("after paying") = None  # type: ignore[valid-type]
    cancel_url: ReturnUrl("when the customer gives up") = None  # type: ignore[valid-type]


# ------------------------------------------------------------------------------ query strings


class Query(BaseModel):
    """A query string: every value is text; unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid")


def _moment(value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidInputError("must be an ISO 8601 date-time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError("must be an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise InvalidInputError("must carry a time zone (Z or +hh:mm)")
    try:
        parsed.astimezone(UTC)  # 0001-01-01T00:00+01:00 is before the first moment Python can hold in UTC
    except OverflowError:
        raise InvalidInputError("is out of range") from None
    return parsed


Moment = Annotated[
    datetime,
    PlainValidator(rule(_moment)),
    WithJsonSchema({"type": "string", "format": "date-time", "description": "An ISO 8601 moment with its zone."}),
]


def _status(value: object) -> str:
    if value not in INVOICE_STATUSES:
        raise InvalidInputError(f"must be one of {', '.join(INVOICE_STATUSES)}")
    return str(value)


def _limit(value: object) -> int:
    text = str(value)
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PAGE:  # "²".isdigit(), int() refuses it
        raise InvalidInputError(f"must be an integer from 1 to {MAX_PAGE}")
    return int(text)


class InvoiceListQuery(Query):
    status: Annotated[
        str | None, PlainValidator(rule(_status)), WithJsonSchema({"type": "string", "enum": INVOICE_STATUSES})
    ] = None
    customer: Annotated[str | None, PlainValidator(rule(require_email)), WithJsonSchema({"type": "string"})] = Field(
        None, description="The customer's email."
    )
    currency: Currency | None = None
    created_from: Moment | None = Field(None, description="Created at or after this moment.")
    created_to: Moment | None = Field(None, description="Created before this moment.")
    limit: Annotated[
        int, PlainValidator(rule(_limit)), WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_PAGE})
    ] = Field(50, description="How many invoices on a page.")
    cursor: str | None = Field(None, description="`next_cursor` of the previous page.")


class InvoiceReadQuery(Query):
    as_of: Moment | None = Field(None, description="The invoice as it stood at this moment (audit).")


# ------------------------------------------------------------------------------ responses


# A response body: the fields rendered, nothing else.
CLOSED = ConfigDict(extra="forbid")


@with_config(CLOSED)
class Customer(TypedDict):
    email: str
    name: str


@with_config(CLOSED)
class Line(TypedDict):
    id: str
    description: str
    quantity: Annotated[str, Field(description="A canonical decimal string: `12`, `1.5`.")]
    unit_amount: int
    tax_rate: Annotated[str | None, Field(description="Percent, as a canonical decimal string.")]
    amount: Annotated[int, Field(description="quantity x unit_amount, rounded half-up once.")]
    tax: int


@with_config(CLOSED)
class FailedAttempt(TypedDict):
    payment_id: str
    code: str
    message: str
    at: str


InvoiceStatus = Annotated[str, Field(json_schema_extra={"enum": INVOICE_STATUSES})]


@with_config(CLOSED)
class Invoice(TypedDict):
    id: Annotated[str, Field(json_schema_extra={"format": "uuid"})]
    object: Literal["invoice"]
    number: Annotated[str | None, Field(description="Null while draft.")]
    status: InvoiceStatus
    overdue: Annotated[bool | None, Field(description="Open or uncollectible past its due date.")]
    currency: str
    customer: Customer
    lines: Annotated[list[Line], Field(max_length=MAX_LINES)]
    subtotal: int
    tax: int
    total: int
    amount_paid: int
    amount_refunded: int
    amount_due: int
    amount_overpaid: int
    amount_disputed: int
    amount_dispute_lost: int
    written_off: int
    due_date: str | None
    memo: str
    metadata: dict[str, str]
    failed_attempts: list[FailedAttempt]
    version: Annotated[int, Field(ge=1, description="Send it back as If-Match.")]
    created_at: str | None
    updated_at: str | None
    issued_at: str | None
    paid_at: str | None


@with_config(CLOSED)
class InvoiceSummary(TypedDict):
    id: str
    object: Literal["invoice_summary"]
    number: str | None
    status: InvoiceStatus
    customer: Customer
    currency: str
    subtotal: int
    tax: int
    total: int
    amount_paid: int
    amount_refunded: int
    amount_due: int
    due_date: str | None
    failed_attempts: Annotated[int, Field(ge=0, description="How many payment attempts failed.")]
    version: Annotated[int, Field(ge=1)]
    created_at: str | None
    issued_at: str | None
    paid_at: str | None


@with_config(CLOSED)
class InvoiceList(TypedDict):
    object: Literal["list"]
    data: Annotated[list[InvoiceSummary], Field(max_length=MAX_PAGE)]
    has_more: bool
    next_cursor: Annotated[str | None, Field(description="Pass as `cursor` for the next page.")]


@with_config(CLOSED)
class Payment(TypedDict):
    id: str
    object: Literal["payment"]
    invoice_id: str | None
    provider: Annotated[str, Field(description="`offline` for money received outside a processor.")]
    reference: Annotated[str | None, Field(description="The provider's id; the given reference offline.")]
    status: Annotated[str, Field(json_schema_extra={"enum": PAYMENT_STATUSES})]
    currency: str
    amount: int
    amount_captured: int
    amount_refunded: int
    fee: int
    version: Annotated[int, Field(ge=1)]
    created_at: str | None


@with_config(CLOSED)
class PaymentRecorded(TypedDict):
    payment: Payment
    invoice: Invoice


@with_config(CLOSED)
class CheckoutStarted(TypedDict):
    checkout_url: Annotated[str, Field(description="Send the customer here: Stripe's hosted payment page.")]
    session_id: Annotated[str, Field(description="The Checkout Session's id (`cs_...`).")]
    expires_at: Annotated[str, Field(description="When the session stops accepting payment.")]
    invoice: Invoice


@with_config(CLOSED)
class Event(TypedDict):
    version: Annotated[int, Field(ge=1)]
    type: Annotated[str, Field(description="The event's topic, e.g. `invoice.issued`.")]
    at: str | None
    data: Annotated[dict[str, Any], Field(description="The event's own fields.")]


@with_config(CLOSED)
class EventList(TypedDict):
    object: Literal["list"]
    invoice_id: str
    data: list[Event]


@with_config(CLOSED)
class FieldError(TypedDict):
    field: Annotated[str, Field(description="The field's path in the request, e.g. `lines[0].quantity`.")]
    message: str


class Problem(TypedDict):
    """An error as `application/problem+json` (RFC 9457); `errors` names each bad field."""

    type: str
    title: str
    status: int
    detail: str
    errors: NotRequired[list[FieldError]]
    database: NotRequired[Annotated[Literal["down"], Field(description="/healthz only: the database does not answer.")]]


@with_config(CLOSED)
class Health(TypedDict):
    """Up, and the database answers. Nothing more: /healthz answers anyone."""

    status: Literal["ok"]
    database: Literal["up"]


@with_config(CLOSED)
class WebhookReceived(TypedDict):
    received: Literal[True]
    duplicate: bool
    id: str
    outcome: Annotated[
        str, Field(description="`applied`, `duplicate`, `waiting`, `unmatched`, `refused` or `ignored`.")
    ]

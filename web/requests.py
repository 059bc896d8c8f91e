"""Request bodies and query strings checked field by field, every bad field named at once.

The rules are the domain's own (ledger.validation, ledger.money, ledger.lines, ...): this module
only walks the JSON, calls them on each field with the field's path (`lines[2].unit_amount`),
refuses fields it does not know and collects every error instead of stopping at the first.
A body that passes is handed to a command, which checks it again: one set of rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from commands.messages import NewLine
from ledger.currencies import require_currency
from ledger.errors import InvalidInputError
from ledger.invoices import DRAFT, OPEN, PAID, UNCOLLECTIBLE, VOID
from ledger.lines import require_quantity, require_tax_rate
from ledger.money import require_minor_units
from ledger.validation import (
    DESCRIPTION_LIMIT,
    MEMO_LIMIT,
    NAME_LIMIT,
    require_date,
    require_email,
    require_metadata,
    require_text,
)

MAX_LINES_PER_REQUEST = 250
INVOICE_STATUSES = (DRAFT, OPEN, PAID, VOID, UNCOLLECTIBLE)  # what a list shows: not deleted drafts
REFERENCE_LIMIT = 255


class FloatNumber(str):
    """A JSON number written with a fraction or exponent, kept as its text: never a float."""


class RequestInvalidError(InvalidInputError):
    """One or more fields are bad; `errors` names each one."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first['field']}: {first['message']}{more}", field=first["field"])
        self.errors = errors


@dataclass
class Errors:
    found: list[dict[str, str]] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        self.found.append({"field": path, "message": message})

    def check(self, path: str, rule: Callable[[], Any]) -> Any:
        """The rule's result, or None with the rule's error recorded under `path`."""
        try:
            return rule()
        except InvalidInputError as error:
            self.add(path, _message(error))
            return None

    def raise_if_any(self) -> None:
        if self.found:
            raise RequestInvalidError(self.found)


def _message(error: InvalidInputError) -> str:
    text = str(error)
    # The domain's messages often start with their field's own name; the path says it already.
    if error.field and text.startswith(f"{error.field} "):
        return text[len(error.field) + 1 :]
    return text


def _object(value: object, path: str, errors: Errors) -> Mapping[str, Any] | None:
    if not isinstance(value, dict):
        errors.add(path or "body", "must be a JSON object")
        return None
    return value


def _unknown(body: Mapping[str, Any], allowed: set[str], prefix: str, errors: Errors) -> None:
    for name in sorted(set(body) - allowed):
        errors.add(f"{prefix}{name}", "unknown field")


def _required(body: Mapping[str, Any], names: list[str], prefix: str, errors: Errors) -> None:
    for name in names:
        if name not in body:
            errors.add(f"{prefix}{name}", "is required")


def _integer(value: object, path: str, errors: Errors, *, allow_negative: bool = False) -> int | None:
    if isinstance(value, FloatNumber):
        errors.add(path, "must be an integer count of minor units, not a number with a fraction or exponent")
        return None
    return errors.check(path, lambda: require_minor_units(value, field=path, allow_negative=allow_negative))  # type: ignore[no-any-return]


def _decimal_text(value: object) -> object:
    """Quantities and tax rates: an integer or a decimal STRING; a JSON fraction is refused."""
    if isinstance(value, FloatNumber):
        raise InvalidInputError('must be an integer or a decimal string such as "1.5", not a JSON fraction')
    return value


# ------------------------------------------------------------------------------ invoices


@dataclass(frozen=True)
class NewInvoice:
    customer: dict[str, str]
    currency: str
    lines: list[NewLine]
    due_date: str | None
    memo: str
    metadata: dict[str, str]


CREATE_FIELDS = {"customer", "currency", "lines", "due_date", "memo", "metadata"}
LINE_FIELDS = {"description", "quantity", "unit_amount", "tax_rate"}
PATCH_FIELDS = {"customer", "due_date", "memo", "metadata"}


def new_invoice(body: object) -> NewInvoice:
    errors = Errors()
    fields = _object(body, "", errors)
    errors.raise_if_any()
    assert fields is not None
    _unknown(fields, CREATE_FIELDS, "", errors)
    _required(fields, ["customer", "currency"], "", errors)
    customer = _customer(fields.get("customer"), errors) if "customer" in fields else None
    currency = errors.check("currency", lambda: require_currency(fields["currency"])) if "currency" in fields else None
    lines = _lines(fields.get("lines", []), errors)
    due_date = _due_date(fields.get("due_date"), errors)
    memo = errors.check(
        "memo", lambda: require_text(fields.get("memo", ""), field="memo", limit=MEMO_LIMIT, required=False)
    )
    metadata = errors.check("metadata", lambda: require_metadata(fields.get("metadata", {})))
    errors.raise_if_any()
    return NewInvoice(customer or {}, currency or "", lines, due_date, memo or "", metadata or {})


def invoice_changes(body: object) -> dict[str, Any]:
    """A PATCH: only the fields given, each checked; `due_date: null` removes the due date."""
    errors = Errors()
    fields = _object(body, "", errors)
    errors.raise_if_any()
    assert fields is not None
    _unknown(fields, PATCH_FIELDS, "", errors)
    if not set(fields) & PATCH_FIELDS and not errors.found:
        errors.add("body", f"give at least one of: {', '.join(sorted(PATCH_FIELDS))}")
    changes: dict[str, Any] = {}
    if "customer" in fields:
        changes["customer"] = _customer(fields["customer"], errors)
    if "due_date" in fields:
        changes["due_date"] = _due_date(fields["due_date"], errors)
    if "memo" in fields:
        changes["memo"] = errors.check(
            "memo", lambda: require_text(fields["memo"], field="memo", limit=MEMO_LIMIT, required=False)
        )
    if "metadata" in fields:
        changes["metadata"] = errors.check("metadata", lambda: require_metadata(fields["metadata"]))
    errors.raise_if_any()
    return changes


def new_line(body: object) -> NewLine:
    errors = Errors()
    line = _line(body, "", errors)
    errors.raise_if_any()
    assert line is not None
    return line


def _customer(value: object, errors: Errors) -> dict[str, str] | None:
    customer = _object(value, "customer", errors)
    if customer is None:
        return None
    _unknown(customer, {"email", "name"}, "customer.", errors)
    _required(customer, ["email", "name"], "customer.", errors)
    email = errors.check("customer.email", lambda: require_email(customer["email"])) if "email" in customer else None
    name = (
        errors.check(
            "customer.name",
            lambda: require_text(customer["name"], field="customer.name", limit=NAME_LIMIT, required=False),
        )
        if "name" in customer
        else None
    )
    if email is None or name is None:
        return None
    return {"email": email, "name": name}


def _lines(value: object, errors: Errors) -> list[NewLine]:
    if not isinstance(value, list):
        errors.add("lines", "must be a JSON array of lines")
        return []
    if len(value) > MAX_LINES_PER_REQUEST:
        errors.add("lines", f"at most {MAX_LINES_PER_REQUEST} lines per request")
        return []
    lines = [_line(item, f"lines[{i}].", errors) for i, item in enumerate(value)]
    return [line for line in lines if line is not None]


def _line(value: object, prefix: str, errors: Errors) -> NewLine | None:
    line = _object(value, prefix.rstrip("."), errors)
    if line is None:
        return None
    before = len(errors.found)
    _unknown(line, LINE_FIELDS, prefix, errors)
    _required(line, ["description", "quantity", "unit_amount"], prefix, errors)
    if "description" in line:
        errors.check(
            f"{prefix}description",
            lambda: require_text(line["description"], field="description", limit=DESCRIPTION_LIMIT),
        )
    if "quantity" in line:
        errors.check(f"{prefix}quantity", lambda: require_quantity(_decimal_text(line["quantity"])))
    if "unit_amount" in line:
        _integer(line["unit_amount"], f"{prefix}unit_amount", errors, allow_negative=True)
    if line.get("tax_rate") is not None:
        errors.check(f"{prefix}tax_rate", lambda: require_tax_rate(_decimal_text(line["tax_rate"])))
    if len(errors.found) > before:
        return None
    return NewLine(
        description=line["description"],
        quantity=line["quantity"],
        unit_amount=line["unit_amount"],
        tax_rate=line.get("tax_rate"),
    )


def _due_date(value: object, errors: Errors) -> str | None:
    if value is None:
        return None
    checked = errors.check("due_date", lambda: require_date(value))
    return None if checked is None else checked.isoformat()


# ------------------------------------------------------------------------------ payments


@dataclass(frozen=True)
class OfflinePayment:
    amount: int
    currency: str | None
    reference: str


def offline_payment(body: object) -> OfflinePayment:
    errors = Errors()
    fields = _object(body, "", errors)
    errors.raise_if_any()
    assert fields is not None
    _unknown(fields, {"amount", "currency", "reference"}, "", errors)
    _required(fields, ["amount"], "", errors)
    amount = _integer(fields["amount"], "amount", errors) if "amount" in fields else None
    if amount is not None and amount <= 0:
        errors.add("amount", "must be greater than zero")
    currency = None
    if "currency" in fields:
        currency = errors.check("currency", lambda: require_currency(fields["currency"]))
    reference = errors.check(
        "reference",
        lambda: require_text(fields.get("reference", ""), field="reference", limit=REFERENCE_LIMIT, required=False),
    )
    errors.raise_if_any()
    assert amount is not None
    return OfflinePayment(amount, currency, reference or "")


def empty(body: object) -> None:
    """Bodies of issue / void / mark-uncollectible: nothing, or an empty object."""
    if body is None:
        return
    errors = Errors()
    fields = _object(body, "", errors)
    if fields is not None:
        _unknown(fields, set(), "", errors)
    errors.raise_if_any()


def issue_options(body: object) -> str | None:
    """An issue may set the due date: {"due_date": "YYYY-MM-DD"}."""
    if body is None:
        return None
    errors = Errors()
    fields = _object(body, "", errors)
    errors.raise_if_any()
    assert fields is not None
    _unknown(fields, {"due_date"}, "", errors)
    due_date = _due_date(fields.get("due_date"), errors)
    errors.raise_if_any()
    return due_date


# ------------------------------------------------------------------------------ query strings


def moment(value: str, name: str) -> datetime:
    """An ISO 8601 moment with its zone (`?as_of=2026-03-01T12:00:00Z`)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise RequestInvalidError([{"field": name, "message": "must be an ISO 8601 date-time"}]) from None
    if parsed.tzinfo is None:
        raise RequestInvalidError([{"field": name, "message": "must carry a time zone (Z or +hh:mm)"}])
    try:
        parsed.astimezone(UTC)  # 0001-01-01T00:00+01:00 is before the first moment Python can hold in UTC
    except OverflowError:
        raise RequestInvalidError([{"field": name, "message": "is out of range"}]) from None
    return parsed


def invoice_filters(status: str | None, customer: str | None, currency: str | None) -> dict[str, str | None]:
    """The list's filters, checked: a status we do not have or a currency that does not exist is
    a mistake to name, not an empty list."""
    errors = Errors()
    if status and status not in INVOICE_STATUSES:
        errors.add("status", f"must be one of {', '.join(INVOICE_STATUSES)}")
    if customer:
        errors.check("customer", lambda: require_email(customer))
    if currency:
        errors.check("currency", lambda: require_currency(currency))
    errors.raise_if_any()
    return {"status": status or None, "customer": customer or None, "currency": currency or None}


def limit(value: str | None, *, default: int = 50, maximum: int = 200) -> int:
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= maximum:  # "²".isdigit(), int() refuses it
        raise RequestInvalidError([{"field": "limit", "message": f"must be an integer from 1 to {maximum}"}])
    return int(value)


def version(value: str | None) -> int | None:
    """`If-Match: 7` or `If-Match: "7"` (an ETag); None when absent."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise RequestInvalidError([{"field": "If-Match", "message": 'must be the invoice\'s version, e.g. "3"'}])
    return int(text)

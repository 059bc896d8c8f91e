"""Checks of free-form input shared by the aggregates: text, metadata, dates, decimals.

The limits follow Stripe's where Stripe has one, so whatever we accept can also be sent there.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ledger.errors import InvalidDateError, InvalidMetadataError, InvalidTextError

DESCRIPTION_LIMIT = 500
MEMO_LIMIT = 5000
NAME_LIMIT = 200
EMAIL_LIMIT = 254
METADATA_KEYS_LIMIT = 50
METADATA_KEY_LIMIT = 40
METADATA_VALUE_LIMIT = 500

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def require_text(value: object, *, field: str, limit: int, required: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidTextError(f"{field} must be a string, got {type(value).__name__}", field=field)
    if required and not value.strip():
        raise InvalidTextError(f"{field} must not be empty", field=field)
    if len(value) > limit:
        raise InvalidTextError(f"{field} is {len(value)} characters long; the limit is {limit}", field=field)
    if "\x00" in value:
        raise InvalidTextError(f"{field} must not contain NUL characters", field=field)
    return value


def require_email(value: object, *, field: str = "customer.email") -> str:
    email = require_text(value, field=field, limit=EMAIL_LIMIT)
    if not _EMAIL.fullmatch(email):
        raise InvalidTextError(f"{field} {email!r} is not an email address", field=field)
    return email


def require_metadata(value: object, *, field: str = "metadata") -> dict[str, str]:
    """Stripe's rules: up to 50 string keys of 40 characters with string values of 500."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidMetadataError(f"{field} must be an object of strings", field=field)
    if len(value) > METADATA_KEYS_LIMIT:
        raise InvalidMetadataError(f"{field} has {len(value)} keys; the limit is {METADATA_KEYS_LIMIT}", field=field)
    checked: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > METADATA_KEY_LIMIT:
            raise InvalidMetadataError(
                f"{field} keys must be strings of 1 to {METADATA_KEY_LIMIT} characters: {key!r}",
                field=field,
            )
        if not isinstance(item, str) or len(item) > METADATA_VALUE_LIMIT or "\x00" in key + item:
            raise InvalidMetadataError(
                f"{field}.{key} must be a string of at most {METADATA_VALUE_LIMIT} characters, without NUL",
                field=f"{field}.{key}",
            )
        checked[key] = item
    return checked


# ASCII digits only, with an optional point; no padding, no exponent. `\d` would also match "٣"
# (which Decimal reads as 3) and `$` a trailing newline, so neither is used: a quantity is
# stored as the characters the client meant, or refused.
_UNSIGNED_DECIMAL = re.compile(r"([0-9]+(\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_SIGNED_DECIMAL = re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)", re.ASCII)
DECIMAL_TEXT_LIMIT = 40


def require_date(value: object, *, field: str = "due_date") -> date:
    if isinstance(value, datetime):  # a moment is not a date: which timezone's day would it be?
        raise InvalidDateError(f"{field} must be a date as YYYY-MM-DD, not a timestamp", field=field)
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidDateError(f"{field} must be a date as YYYY-MM-DD, got {value!r}", field=field)


def parse_decimal(value: object, *, signed: bool = False) -> Decimal | None:
    """An int or a decimal string as a finite Decimal; None for anything else (floats too).

    A string is ASCII digits with an optional point, at most DECIMAL_TEXT_LIMIT characters, and
    a leading "-" only when `signed` (where negatives are allowed); an int keeps its sign, the
    caller's range check decides.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    pattern = _SIGNED_DECIMAL if signed else _UNSIGNED_DECIMAL
    if isinstance(value, str) and len(value) <= DECIMAL_TEXT_LIMIT and pattern.fullmatch(value):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def canonical_decimal(number: Decimal) -> str:
    """A stable text form of a decimal: no exponent, no trailing zeros ('1.50' -> '1.5').

    Text only, no arithmetic: `normalize()` would round to the calling thread's precision.
    """
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text != "-0" else "0"


def decimal_places(number: Decimal) -> int:
    """How many decimals `number` needs ('1.50' -> 1, '100' -> 0), read from its digits, so that
    no decimal context (which could round) is involved."""
    _, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int) or exponent >= 0 or not any(digits):
        return 0
    trailing = len(digits) - len(bytes(digits).rstrip(b"\0"))
    return max(0, -exponent - trailing)


def as_json_value(value: Any) -> Any:
    """Deep-copy plain JSON data (dicts, lists, str, int, bool, None): stored state is plain."""
    if isinstance(value, dict):
        return {str(k): as_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json_value(v) for v in value]
    return value

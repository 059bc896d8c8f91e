"""Decoding a request into its typed model, every bad field named at once.

The models (web/models.py, web/usage/models.py) are pydantic models in strict mode: a JSON value
of the wrong type is refused, never coerced (`"100"` is not an amount, `true` is not 1). Where a
field has a rule in the domain (ledger.validation, ledger.lines, ...) the model calls that rule
(`rule(...)`), so the domain's check and its message are the API's; the domain checks again when
the command runs (defence in depth), with the same code.

pydantic reports each bad field with its location (`("lines", 0, "quantity")`); `errors_of`
writes it as the API always has: `lines[0].quantity`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from ledger.errors import InvalidInputError
from web.body import BodyError, FloatNumber

M = TypeVar("M", bound=BaseModel)

FRACTION = 'must be an integer or a decimal string such as "1.5", not a JSON number with a fraction or exponent'


class RequestInvalidError(InvalidInputError):
    """One or more fields are bad; `errors` names each one."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first['field']}: {first['message']}{more}", field=first["field"])
        self.errors = errors


def decode(model: type[M], body: object) -> M:
    """The body as `model`; no body is an empty object. A body that is not a JSON object is not a
    request at all (400); an object with bad fields names each of them (422)."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise BodyError(400, "Malformed body", f"the body must be a JSON object, not {_json_type(body)}")
    try:
        return model.model_validate(body, strict=True)
    except ValidationError as error:
        raise RequestInvalidError(errors_of(error)) from None


def errors_of(error: ValidationError) -> list[dict[str, str]]:
    return [{"field": path_of(found["loc"]), "message": _said(found)} for found in error.errors(include_url=False)]


def path_of(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def _said(found: Any) -> str:
    kind = found["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "is required"
    if isinstance(found.get("input"), FloatNumber) and kind in {"int_type", "string_type"}:
        return FRACTION
    message: str = found["msg"]
    return message


def rule(check: Callable[[Any], object], *, keep: bool = False) -> Callable[[Any], Any]:
    """A domain rule as a field validator: its InvalidInputError becomes the field's error (with
    the message the domain wrote). The validator returns the rule's result, or with `keep` the
    value as given (a line keeps its quantity's text; the domain canonicalizes it)."""

    def validate(value: Any) -> Any:
        if isinstance(value, FloatNumber):
            raise PydanticCustomError("fraction", FRACTION)
        try:
            result = check(value)
        except InvalidInputError as error:
            raise PydanticCustomError("domain", "{message}", {"message": _message(error)}) from None
        return value if keep else result

    return validate


def _message(error: InvalidInputError) -> str:
    text = str(error)
    # The domain's messages often start with their field's own name; the path says it already.
    if error.field and text.startswith(f"{error.field} "):
        return text[len(error.field) + 1 :]
    return text


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"

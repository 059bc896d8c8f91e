"""Reading a request's JSON body: size-limited, strict JSON, numbers kept exact.

- over MAX_BODY_BYTES -> 413 (checked on Content-Length and again while streaming);
- a body that is not `application/json` -> 415; broken JSON -> 400 naming line and column;
- NaN / Infinity and duplicate keys are refused (JSON that means two things is not accepted);
- a number with a fraction or exponent becomes `FloatNumber` (its text), never a float: money
  fields then refuse it by name, and decimal fields ask for a string.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

MAX_BODY_BYTES = 1024 * 1024


class FloatNumber:
    """A JSON number written with a fraction or exponent, kept as its text: never a float, and
    not a str either, so that no field that wants text or an integer takes it."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class BodyError(Exception):
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


async def read_json(request: Request) -> Any:
    """The body's JSON value; None for an empty body."""
    raw = await read_raw(request)
    if not raw.strip():
        return None
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise BodyError(415, "Unsupported media type", "send the body as application/json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError(400, "Malformed JSON", "the body is not UTF-8") from None
    try:
        value = json.loads(
            text, parse_float=FloatNumber, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys
        )
    except json.JSONDecodeError as error:
        raise BodyError(400, "Malformed JSON", f"{error.msg} at line {error.lineno}, column {error.colno}") from None
    except _Refused as error:
        raise BodyError(400, "Malformed JSON", str(error)) from None
    except RecursionError:
        raise BodyError(400, "Malformed JSON", "the body nests too deeply") from None
    try:  # a "\ud800" escape decodes to a lone surrogate: not a character, and no store can keep it
        json.dumps(value, ensure_ascii=False, default=repr).encode("utf-8")
    except UnicodeEncodeError:
        raise BodyError(400, "Malformed JSON", "a \\u escape names a lone surrogate, not a character") from None
    return value


class _Refused(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


async def read_raw(request: Request) -> bytes:
    """The body's bytes, refused past MAX_BODY_BYTES (declared, or while streaming)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> BodyError:
    return BodyError(413, "Body too large", f"the body must be at most {MAX_BODY_BYTES:,} bytes")

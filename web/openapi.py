"""The OpenAPI 3.1 document, generated: the paths from the route table (each `Endpoint` carries
its `Operation`, web/operations.py), the schemas from the models that decode the requests and the
TypedDicts the responses are rendered as (web/models.py, web/usage/models.py), by pydantic as
JSON Schema 2020-12, which OpenAPI 3.1 uses as it is.

Nothing here describes a field: a change to a model changes the document, and
tests/e2e/test_openapi.py and tests/e2e/test_schemathesis.py hold the served API to it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode
from starlette.routing import BaseRoute

from commands.idempotency import KEY_LIMIT
from web import models
from web.body import MAX_BODY_BYTES
from web.operations import Endpoint, Operation
from web.problems import PROBLEM_JSON
from web.routes import route_table

Schema = dict[str, Any]
REF = "#/components/schemas/{model}"

PROBLEMS: dict[int, tuple[str, str, tuple[str, ...]]] = {
    400: ("MalformedBody", "The body does not decode: not JSON, not UTF-8, nested too deeply, or not an object.", ()),
    401: ("Unauthorized", "No bearer token, or not the right one.", ("WWW-Authenticate",)),
    402: ("PaymentDeclined", "The payment provider declined the payment.", ()),
    404: ("NotFound", "No such resource.", ()),
    409: ("RuleViolated", "The request is valid, but the state forbids it (e.g. editing an issued invoice).", ()),
    412: ("StaleVersion", "If-Match names a version that is not the invoice's current one.", ()),
    413: ("TooLarge", f"The body is over {MAX_BODY_BYTES:,} bytes.", ()),
    415: ("UnsupportedMediaType", "The body is not sent as application/json.", ()),
    422: ("InvalidInput", "Invalid input: `errors` names each bad field.", ()),
    503: ("Unavailable", "The store or the payment provider cannot answer right now: retry.", ("Retry-After",)),
}

HEADERS: dict[str, Schema] = {
    "ETag": {"schema": {"type": "string"}, "description": 'The invoice\'s version, quoted: `"3"`.', "required": True},
    "Location": {"schema": {"type": "string"}, "description": "The created resource's URL.", "required": True},
    "Content-Disposition": {
        "schema": {"type": "string"},
        "description": 'A download, named after the invoice: `attachment; filename="INV-000042.pdf"`.',
        "required": True,
    },
    "WWW-Authenticate": {"schema": {"type": "string"}, "required": True},
    "Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait before retrying.", "required": True},
}

REQUEST_HEADERS: dict[str, Schema] = {
    "Idempotency-Key": {
        "name": "Idempotency-Key",
        "in": "header",
        "description": "A retry with the same key is answered as the first request was, and changes nothing.",
        "schema": {"type": "string", "minLength": 1, "maxLength": KEY_LIMIT},
    },
    "If-Match": {
        "name": "If-Match",
        "in": "header",
        "description": (
            "The invoice's version (its ETag): 412 if it has changed since (on checkout, a session "
            "opened or closed since does not count: it changes nothing that is due)."
        ),
        "schema": {"type": "string", "pattern": '^(W/)?"?[1-9][0-9]{0,17}"?$'},
    },
    "Stripe-Signature": {
        "name": "Stripe-Signature",
        "in": "header",
        "required": True,
        "description": "Stripe's signature of the raw body (300 s tolerance).",
        "schema": {"type": "string"},
    },
}


def openapi_document() -> dict[str, Any]:
    """The document of the app's route table (built once; a deep copy, so a caller cannot alter
    the kept one)."""
    return copy.deepcopy(_document())


@cache
def _document() -> Schema:
    return document_for(route_table())


def document_for(routes: Iterable[BaseRoute]) -> Schema:
    endpoints = [route for route in routes if isinstance(route, Endpoint)]
    schemas = _schemas(endpoints)
    paths: dict[str, Schema] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, schemas)
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
                f"input, `errors` naming each field. Bodies are JSON objects of at most {MAX_BODY_BYTES:,} bytes."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "headers": HEADERS,
            "responses": {
                name: _problem_response(description, headers) for name, description, headers in PROBLEMS.values()
            },
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`Authorization: Bearer <LEDGER_API_TOKEN>` on every /api route.",
                }
            },
        },
    }


def _schemas(endpoints: list[Endpoint]) -> dict[str, Schema]:
    """Every body's schema under its model's name, as pydantic generates it."""
    kinds: list[tuple[Any, JsonSchemaMode]] = [(models.Problem, "serialization")]
    for endpoint in endpoints:
        operation = endpoint.operation
        if operation.body is not None:
            kinds.append((operation.body, "validation"))
        kinds.extend((kind, "validation") for kind in operation.schemas)
        if operation.response is not None:
            kinds.append((operation.response, "serialization"))
    inputs = [(kind, mode, TypeAdapter(kind)) for kind, mode in dict.fromkeys(kinds)]
    tops, definitions = TypeAdapter.json_schemas(inputs, ref_template=REF)
    schemas: dict[str, Schema] = definitions.get("$defs", {})
    for (kind, _mode), schema in tops.items():
        if "$ref" not in schema:
            schemas[kind.__name__] = schema
    cleaned: dict[str, Schema] = _without_null_defaults(schemas)
    return cleaned


def _without_null_defaults(schema: Any) -> Any:
    """`= None` on a field means "absent", not a value the field takes: not a documented default
    (where the field refuses null, a null default would contradict its own schema)."""
    if isinstance(schema, dict):
        return {
            key: _without_null_defaults(value) for key, value in schema.items() if (key, value) != ("default", None)
        }
    if isinstance(schema, list):
        return [_without_null_defaults(value) for value in schema]
    return schema


def _operation(endpoint: Endpoint, schemas: dict[str, Schema]) -> Schema:
    operation = endpoint.operation
    summary, _, description = (endpoint.endpoint.__doc__ or "").strip().partition("\n\n")
    document: Schema = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "tags": [_tag(endpoint.path)],
        "security": [{"bearerAuth": []}] if operation.secured else [],
        "parameters": _parameters(endpoint, operation),
        "responses": _responses(operation),
    }
    if summary:
        document["description"] = " ".join(f"{summary}\n\n{description}".split()) if description else summary
    if operation.body is not None:
        document["requestBody"] = {
            "required": operation.body_required,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=operation.body.__name__)}}},
        }
    elif endpoint.method != "GET" and not operation.secured:
        document["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
    return document


def _tag(path: str) -> str:
    if path.startswith("/api/invoices"):
        return "invoices"
    if path.startswith("/webhooks/") or path.startswith("/api/webhook-events"):
        return "webhooks"
    if path.startswith("/api/"):
        return "usage"
    return "service"


def _parameters(endpoint: Endpoint, operation: Operation) -> list[Schema]:
    parameters: list[Schema] = [
        {"name": name, "in": "path", "required": True, "schema": _path_schema(name)}
        for name in endpoint.param_convertors
    ]
    if operation.query is not None:
        parameters.extend(_query_parameters(operation.query))
    parameters.extend(REQUEST_HEADERS[name] for name in operation.headers)
    return parameters


def _path_schema(name: str) -> Schema:
    if name == "invoice_id":
        return {"type": "string", "format": "uuid"}
    return {"type": "string", "minLength": 1}


def _query_parameters(model: type[BaseModel]) -> list[Schema]:
    schema = model.model_json_schema(ref_template=REF)
    parameters = []
    for name, field in schema["properties"].items():
        field = {key: value for key, value in field.items() if key not in {"title", "default"}}
        described = field.pop("description", None)
        if "anyOf" in field:  # `X | None = None`: absent is the null
            field = next(option for option in field["anyOf"] if option.get("type") != "null")
        parameter: Schema = {"name": name, "in": "query", "required": False, "schema": field}
        if described:
            parameter["description"] = described
        parameters.append(parameter)
    return parameters


def _responses(operation: Operation) -> Schema:
    answer: Schema = {"description": operation.summary}
    if operation.response is not None:
        name = operation.response.__name__
        answer["content"] = {operation.media_type: {"schema": {"$ref": REF.format(model=name)}}}
    if operation.response_headers:
        answer["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in operation.response_headers}
    responses: Schema = {str(operation.status): answer}
    for status in sorted(set(operation.problems)):
        responses[str(status)] = {"$ref": f"#/components/responses/{PROBLEMS[status][0]}"}
    return responses


def _problem_response(description: str, headers: tuple[str, ...]) -> Schema:
    response: Schema = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": REF.format(model="Problem")}}},
    }
    if headers:
        response["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in headers}
    return response

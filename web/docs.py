"""Human-readable API docs rendered from the OpenAPI document: one self-contained HTML page.

No script, no stylesheet or font from elsewhere (the page must work offline); every value taken
from the document is HTML-escaped.
"""

from __future__ import annotations

import json
import shlex
from html import escape
from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")
BASE_URL = "http://127.0.0.1:8000"
PATTERN_SHOWN = 40  # longer patterns (email, decimals) are named, not shown
ENUM_SHOWN = 12  # longer enums (the currencies) are cut short; /openapi.json has them all

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 62rem; padding: 1rem 2rem; color: #1d1d1f; }
h1 { margin-bottom: 0; }
h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; }
section.op { border: 1px solid #ddd; border-radius: 6px; padding: 0 1rem 1rem; margin: 1.5rem 0; }
h3 code { font-size: 1rem; }
.method { display: inline-block; min-width: 4.5rem; font-weight: bold; text-transform: uppercase; }
.get { color: #0b6bcb; } .post { color: #1a7f37; } .patch { color: #9a6700; } .delete { color: #cf222e; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { text-align: left; vertical-align: top; padding: .25rem .5rem; border-bottom: 1px solid #eee; }
th { font-weight: 600; background: #f6f8fa; }
pre { background: #f6f8fa; padding: .75rem; overflow-x: auto; border-radius: 4px; }
code { font-family: ui-monospace, monospace; font-size: .9em; }
.muted { color: #57606a; }
nav ul { columns: 2; }
"""


def docs_page(spec: dict[str, Any]) -> str:
    """The whole page: an index of operations, then each one in full, then the schemas."""
    info = spec.get("info", {})
    title = str(info.get("title", "API"))
    operations = list(_operations(spec))
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">Version {escape(str(info.get("version", "")))}'
        f" · OpenAPI {escape(str(spec.get('openapi', '')))}"
        ' · machine-readable: <a href="/openapi.json"><code>/openapi.json</code></a></p>',
        f"<p>{escape(str(info.get('description', '')))}</p>",
        "<nav><h2>Operations</h2><ul>",
    ]
    for method, path, operation in operations:
        anchor = _anchor(method, path)
        parts.append(
            f'<li><a href="#{escape(anchor)}"><span class="method {escape(method)}">{escape(method)}</span>'
            f"<code>{escape(path)}</code></a> {escape(str(operation.get('summary', '')))}</li>"
        )
    parts.append("</ul></nav>")
    tags = [tag["name"] for tag in spec.get("tags", [])]
    for tag in [*tags, *sorted({t for _, _, op in operations for t in op.get("tags", [])} - set(tags))]:
        in_tag = [(m, p, op) for m, p, op in operations if tag in op.get("tags", [])]
        if in_tag:
            parts.append(f"<h2>{escape(tag)}</h2>")
            parts.extend(_operation_html(spec, method, path, operation) for method, path, operation in in_tag)
    untagged = [(m, p, op) for m, p, op in operations if not op.get("tags")]
    if untagged:
        parts.append("<h2>Other</h2>")
        parts.extend(_operation_html(spec, method, path, operation) for method, path, operation in untagged)
    parts.append(_schemas_html(spec))
    parts.append("</body></html>")
    return "\n".join(parts)


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, item in spec.get("paths", {}).items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method in item:
                operation = dict(item[method])
                operation["parameters"] = [*shared, *operation.get("parameters", [])]
                found.append((method, path, operation))
    return found


def _anchor(method: str, path: str) -> str:
    return f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", "").replace(".", "-")


def _resolve(spec: dict[str, Any], node: Any) -> Any:
    """Follow local `$ref`s (`#/components/...`) until a concrete node."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 20:
        target: Any = spec
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node = target
        seen += 1
    return node


def _ref_name(node: Any) -> str | None:
    if isinstance(node, dict) and "$ref" in node:
        return str(node["$ref"]).rsplit("/", 1)[-1]
    return None


def _type_text(spec: dict[str, Any], schema: Any) -> str:
    """A short, plain description of a schema's type and limits: `string, ≤ 500 chars`."""
    name = _ref_name(schema)
    if name is not None:
        return name
    if not isinstance(schema, dict):
        return ""
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            return " or ".join(_type_text(spec, option) for option in schema[combinator])
    kind = schema.get("type", "any")
    words = [" or ".join(kind) if isinstance(kind, list) else str(kind)]
    if "format" in schema:
        words.append(f"format {schema['format']}")
    if "const" in schema:
        words.append(f"always {json.dumps(schema['const'])}")
    if "enum" in schema:
        values = [json.dumps(value) for value in schema["enum"]]
        shown = values if len(values) <= ENUM_SHOWN else [*values[:ENUM_SHOWN], f"… ({len(values)} in all)"]
        words.append("one of " + ", ".join(shown))
    if "minimum" in schema or "maximum" in schema:
        words.append(f"{schema.get('minimum', '…')} to {schema.get('maximum', '…')}")
    if "minLength" in schema:
        words.append(f"≥ {schema['minLength']} chars")
    if "maxLength" in schema:
        words.append(f"≤ {schema['maxLength']} chars")
    if "pattern" in schema and "enum" not in schema:
        pattern = str(schema["pattern"])
        words.append(
            f"matching {pattern}" if len(pattern) <= PATTERN_SHOWN else "matching a pattern (see /openapi.json)"
        )
    if "maxItems" in schema:
        words.append(f"≤ {schema['maxItems']} items")
    if "items" in schema:
        words.append(f"of {_type_text(spec, schema['items'])}")
    if "maxProperties" in schema:
        words.append(f"≤ {schema['maxProperties']} keys")
    return ", ".join(words)


def _parameters_html(spec: dict[str, Any], parameters: list[Any]) -> str:
    if not parameters:
        return ""
    rows = []
    for raw in parameters:
        parameter = _resolve(spec, raw)
        rows.append(
            "<tr>"
            f"<td><code>{escape(str(parameter.get('name', '')))}</code></td>"
            f"<td>{escape(str(parameter.get('in', '')))}</td>"
            f"<td>{'yes' if parameter.get('required') else 'no'}</td>"
            f"<td>{escape(_type_text(spec, parameter.get('schema', {})))}</td>"
            f"<td>{escape(str(parameter.get('description', '')))}</td>"
            "</tr>"
        )
    return (
        "<h4>Parameters</h4><table><tr><th>Name</th><th>In</th><th>Required</th><th>Type</th><th>Description</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _fields_html(spec: dict[str, Any], schema: Any) -> str:
    resolved = _resolve(spec, schema)
    if not isinstance(resolved, dict) or not resolved.get("properties"):
        return '<p class="muted">No fields.</p>' if isinstance(resolved, dict) else ""
    required = set(resolved.get("required", []))
    rows = []
    for name, field in resolved["properties"].items():
        description = _resolve(spec, field).get("description", "") if isinstance(field, dict) else ""
        rows.append(
            "<tr>"
            f"<td><code>{escape(name)}</code></td>"
            f"<td>{'yes' if name in required else 'no'}</td>"
            f"<td>{escape(_type_text(spec, field))}</td>"
            f"<td>{escape(str(description))}</td>"
            "</tr>"
        )
    extra = "" if resolved.get("additionalProperties", True) else '<p class="muted">Other fields are refused.</p>'
    return (
        "<table><tr><th>Field</th><th>Required</th><th>Type</th><th>Description</th></tr>"
        + "".join(rows)
        + "</table>"
        + extra
    )


def _body_html(spec: dict[str, Any], body: Any) -> str:
    body = _resolve(spec, body)
    if not isinstance(body, dict) or "content" not in body:
        return ""
    parts = [f"<h4>Request body{'' if body.get('required') else ' (optional)'}</h4>"]
    for media_type, content in body["content"].items():
        schema = content.get("schema", {})
        name = _ref_name(schema)
        label = f" — <a href='#schema-{escape(name)}'>{escape(name)}</a>" if name else ""
        parts.append(f"<p><code>{escape(media_type)}</code>{label}</p>")
        resolved = _resolve(spec, schema)
        if isinstance(resolved, dict) and resolved.get("description"):
            parts.append(f"<p>{escape(str(resolved['description']))}</p>")
        parts.append(_fields_html(spec, schema))
    return "".join(parts)


def _responses_html(spec: dict[str, Any], responses: dict[str, Any]) -> str:
    rows = []
    for status, raw in responses.items():
        response = _resolve(spec, raw)
        bodies = []
        for media_type, content in response.get("content", {}).items():
            name = _ref_name(content.get("schema"))
            shown = f"<a href='#schema-{escape(name)}'>{escape(name)}</a>" if name else ""
            bodies.append(f"<code>{escape(media_type)}</code> {shown}".strip())
        headers = ", ".join(escape(header) for header in response.get("headers", {}))
        rows.append(
            "<tr>"
            f"<td><code>{escape(str(status))}</code></td>"
            f"<td>{escape(str(response.get('description', '')))}</td>"
            f"<td>{'<br>'.join(bodies)}</td>"
            f"<td>{headers}</td>"
            "</tr>"
        )
    return (
        "<h4>Responses</h4><table><tr><th>Status</th><th>Meaning</th><th>Body</th><th>Headers</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def example_of(spec: dict[str, Any], schema: Any, depth: int = 0) -> Any:
    """An example value for `schema`: its own example if it has one, else a minimal made-up one."""
    schema = _resolve(spec, schema)
    if not isinstance(schema, dict) or depth > 8:
        return None
    if schema.get("examples"):
        return schema["examples"][0]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return next((value for value in schema["enum"] if value is not None), None)
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            options = [o for o in schema[combinator] if _resolve(spec, o).get("type") != "null"]
            return example_of(spec, options[0], depth + 1) if options else None
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: example_of(spec, properties[name], depth + 1) for name in schema.get("required", [])}
    if kind == "array":
        return [example_of(spec, schema.get("items", {}), depth + 1)]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "boolean":
        return True
    if kind == "string":
        return {"date": "2026-04-01", "date-time": "2026-03-01T12:00:00Z"}.get(schema.get("format", ""), "text")
    return None


def _curl(spec: dict[str, Any], method: str, path: str, operation: dict[str, Any]) -> str:
    url = BASE_URL + path
    for raw in operation.get("parameters", []):
        parameter = _resolve(spec, raw)
        if parameter.get("in") == "path":
            url = url.replace("{" + parameter["name"] + "}", f"${parameter['name'].upper()}")
    words = ["curl"]
    if method != "get":
        words += ["-X", method.upper()]
    words.append(url)
    command = " ".join(shlex.quote(word) if "$" not in word else f'"{word}"' for word in words)
    lines = [command]
    if operation.get("security"):
        lines.append('-H "Authorization: Bearer $LEDGER_API_TOKEN"')
    body = _resolve(spec, operation.get("requestBody"))
    if isinstance(body, dict) and body.get("required"):
        schema = body.get("content", {}).get("application/json", {}).get("schema")
        example = example_of(spec, schema)
        lines.append("-H 'Content-Type: application/json'")
        lines.append("-d " + shlex.quote(json.dumps(example, ensure_ascii=False)))
    return " \\\n  ".join(lines)


def _operation_html(spec: dict[str, Any], method: str, path: str, operation: dict[str, Any]) -> str:
    auth = "Bearer token required." if operation.get("security") else "No token needed."
    parts = [
        f'<section class="op" id="{escape(_anchor(method, path))}">',
        f'<h3><span class="method {escape(method)}">{escape(method)}</span><code>{escape(path)}</code></h3>',
        f"<p><strong>{escape(str(operation.get('summary', '')))}</strong></p>",
    ]
    if operation.get("description"):
        parts.append(f"<p>{escape(str(operation['description']))}</p>")
    parts.append(
        f'<p class="muted">{escape(auth)} Operation id: '
        f"<code>{escape(str(operation.get('operationId', '')))}</code></p>"
    )
    parts.append(_parameters_html(spec, operation.get("parameters", [])))
    parts.append(_body_html(spec, operation.get("requestBody")))
    parts.append(_responses_html(spec, operation.get("responses", {})))
    parts.append(f"<h4>Example</h4><pre><code>{escape(_curl(spec, method, path, operation))}</code></pre>")
    parts.append("</section>")
    return "\n".join(part for part in parts if part)


def _schemas_html(spec: dict[str, Any]) -> str:
    schemas = spec.get("components", {}).get("schemas", {})
    if not schemas:
        return ""
    parts = ["<h2>Schemas</h2>"]
    for name, schema in schemas.items():
        parts.append(f'<section id="schema-{escape(name)}"><h3><code>{escape(name)}</code></h3>')
        if schema.get("description"):
            parts.append(f"<p>{escape(str(schema['description']))}</p>")
        if schema.get("properties"):
            parts.append(_fields_html(spec, schema))
        else:
            parts.append(f"<p>{escape(_type_text(spec, schema))}</p>")
        parts.append("</section>")
    return "\n".join(parts)

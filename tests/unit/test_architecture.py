"""The dependency rule of DESIGN.md, checked on every import in the source tree.

ledger <- commands <- projections; adapters and web depend on those, never the other way.
The domain imports the standard library and eventsourcing only; only adapters/stripe imports
stripe; SQL stays in projections and adapters.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STDLIB = set(sys.stdlib_module_names)

ALLOWED: dict[str, set[str]] = {
    "ledger": {"ledger", "eventsourcing"},
    "commands": {"ledger", "commands", "eventsourcing"},
    "projections": {"ledger", "commands", "projections", "eventsourcing", "sqlalchemy", "psycopg", "alembic"},
    "adapters": {
        "ledger",
        "commands",
        "projections",
        "adapters",
        "web",
        "eventsourcing",
        "sqlalchemy",
        "psycopg",
        "psycopg_pool",  # its PoolTimeout: the wait for a connection ran out (adapters/postgres_store.py)
        "stripe",
        "dotenv",
        "uvicorn",
        "starlette",
    },
    "web": {"ledger", "commands", "projections", "web", "adapters", "eventsourcing", "starlette"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found - STDLIB - {"__future__"}


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_layer_imports_only_what_the_dependency_rule_allows(package: str) -> None:
    offences = {
        str(path.relative_to(ROOT)): sorted(_imports(path) - ALLOWED[package])
        for path in _modules(package)
        if _imports(path) - ALLOWED[package]
    }
    assert offences == {}


def test_only_the_stripe_adapter_imports_stripe() -> None:
    importers = [
        str(path.relative_to(ROOT))
        for package in ALLOWED
        for path in _modules(package)
        if "stripe" in _imports(path) and "adapters/stripe" not in str(path.relative_to(ROOT))
    ]
    assert importers == []


def test_web_never_touches_sql_or_the_event_store_directly() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in _modules("web")
        if _imports(path) & {"sqlalchemy", "psycopg", "sqlite3"} or "eventsourcing.persistence" in path.read_text()
    ]
    assert offenders == []


def test_the_rule_itself_catches_an_offence(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlalchemy\nfrom adapters.bootstrap import bootstrap\nimport json\n")
    assert _imports(bad) - ALLOWED["ledger"] == {"sqlalchemy", "adapters"}

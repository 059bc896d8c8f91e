"""The dependency rule of docs/architecture.md, checked on every import in the source tree.

ledger <- commands <- projections; adapters and web depend on those, never the other way.
The domain imports the standard library and eventsourcing only; only adapters/stripe imports
stripe; SQL stays in projections and adapters. No two modules import each other, directly or
through others.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Sequence
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
        "msgspec",  # adapters/stripe/payloads.py, listing.py: Stripe's payloads and lists, typed (ADR 0014)
        "dotenv",
        "uvicorn",
        "starlette",
        "rich",
        "argon2",  # admin users' password hashes (adapters/admin/passwords.py)
        "fpdf",  # invoice PDFs (adapters/pdf/)
        "aiosmtpd",  # the demo's local mail capture server (adapters/mail/)
    },
    "web": {
        "ledger",
        "commands",
        "projections",
        "web",
        "adapters",
        "eventsourcing",
        "starlette",
        "pydantic",  # the request models and the OpenAPI schema (docs/adr/0015)
        "pydantic_core",
        "typing_extensions",
        "jinja2",  # the admin dashboard's templates (web/admin/)
        "limits",  # login attempts limited per account and per address (web/admin/)
    },
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


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _import_graph(root: Path, packages: Sequence[str]) -> dict[str, set[str]]:
    """Each module of `packages` and the modules of `packages` it imports, the packages whose
    `__init__` an import runs included.

    Every import counts wherever it stands (under `if TYPE_CHECKING:` or inside a function too: a
    circle hidden there is still a circle), and `from package import name` counts as importing
    the submodule when `name` is one.
    """
    paths = {_module_name(root, path): path for package in packages for path in sorted((root / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                targets.update(
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base for alias in node.names
                )
        graph[name] = set()
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, len(name.split(".")))}
        for target in targets:
            while target and target not in paths:  # `import a.b.c` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
            # Importing a.b.c runs a/__init__.py and a/b/__init__.py first: edges to those packages,
            # except the importer's own, which are always initialised before it runs.
            parent = target.rpartition(".")[0]
            while parent:
                if parent in paths and parent not in ancestors and parent != name:
                    graph[name].add(parent)
                parent = parent.rpartition(".")[0]
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that reach each other through imports (Tarjan's strongly connected
    components of more than one module), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph[module]):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group: list[str] = []
            while not group or group[-1] != module:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


# A circle that must be lived with for a while is listed here, with why; the second test below
# fails once it is gone, so the list never outlives the circles. None is known today.
KNOWN_CIRCLES: list[list[str]] = []


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


def test_no_import_circle_among_the_projects_modules() -> None:
    circles = _circles(_import_graph(ROOT, sorted(ALLOWED)))
    assert [circle for circle in circles if circle not in KNOWN_CIRCLES] == []


def test_every_known_circle_still_exists() -> None:
    circles = _circles(_import_graph(ROOT, sorted(ALLOWED)))
    assert [circle for circle in KNOWN_CIRCLES if circle not in circles] == []


def test_the_circle_check_sees_a_circle_through_a_submodule_and_a_type_checking_import(tmp_path: Path) -> None:
    (tmp_path / "app" / "feature").mkdir(parents=True)
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "feature" / "__init__.py").write_text("")
    (tmp_path / "app" / "main.py").write_text("from app.feature import commands\n")
    (tmp_path / "app" / "feature" / "commands.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.main import Decision\n"
    )
    (tmp_path / "app" / "leaf.py").write_text("from . import main\n")
    graph = _import_graph(tmp_path, ["app"])
    assert graph["app.leaf"] == {"app.main"}
    assert _circles(graph) == [["app.feature.commands", "app.main"]]


def test_the_circle_check_sees_a_circle_through_a_packages_init(tmp_path: Path) -> None:
    # Importing app.admin.limiter runs app/admin/__init__.py first; if that imports a module which
    # imports the importer back, importing app.services first fails half-initialised (the loop
    # web.services -> web.admin.limiter -> web.admin -> web.admin.security -> web.services was one).
    (tmp_path / "app" / "admin").mkdir(parents=True)
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "services.py").write_text("from app.admin.limiter import Limiter\n")
    (tmp_path / "app" / "admin" / "__init__.py").write_text("from app.admin.security import Security\n")
    (tmp_path / "app" / "admin" / "limiter.py").write_text("class Limiter: ...\n")
    (tmp_path / "app" / "admin" / "security.py").write_text(
        "from app.admin import limiter\nfrom app.services import Services\n"
    )
    graph = _import_graph(tmp_path, ["app"])
    assert graph["app.services"] == {"app.admin", "app.admin.limiter"}
    # A module's own packages are initialised before it runs: importing one of their submodules
    # adds no edge to them, or every package that imports its own modules would be a circle.
    assert graph["app.admin.security"] == {"app.admin.limiter", "app.services"}
    assert _circles(graph) == [["app.admin", "app.admin.security", "app.services"]]

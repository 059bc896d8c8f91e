"""`ledger rebuild --check`: rebuild every read model into scratch tables and diff them with the live ones.

How it stays away from the live read models:

- The projections write to their module-level tables (`projections/tables.py`). Rather than
  teach every projection about renamed tables, the fresh copy is built in a SCRATCH namespace
  where those same table names mean other tables: on PostgreSQL a temporary schema on the same
  database (`CREATE SCHEMA ledger_check_<random>`), reached through SQLAlchemy's
  `schema_translate_map={None: schema}` execution option, which rewrites every unqualified
  table (all of ours) to the scratch schema; on SQLite a throwaway database file in a temporary
  directory. Either way the projection code runs unchanged, and the live tables and the
  `projection_tracking` rows are never written. The scratch schema / file is dropped afterwards,
  also when the check fails.
- The same log position: the live models are caught up first, then their rows are read
  together with their tracking positions (re-read until the positions did not move while the
  rows were read, so a live follower may keep running). Fresh projections (from the factory,
  no in-memory state) then replay the log from the start exactly up to each live position,
  without any tracking table. Rows are compared by primary key.

The audit chain is not rebuildable (evidence, see `ProjectionRunner.rebuildable`) and is not
checked here: `ledger audit verify` does that.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, select, text

from projections.runner import EventLog, ProjectionRunner
from projections.tables import metadata, tracking
from projections.tracked import Projection

EXAMPLES = 5  # differing rows shown per kind and table

Key = tuple[Any, ...]
Row = dict[str, Any]


@dataclass(frozen=True)
class RowDiff:
    key: Key
    columns: dict[str, tuple[Any, Any]]  # column -> (live, rebuilt)


@dataclass
class TableDiff:
    table: str
    key_columns: tuple[str, ...]
    live_rows: int = 0
    rebuilt_rows: int = 0
    only_live: list[Key] = field(default_factory=list)
    only_rebuilt: list[Key] = field(default_factory=list)
    differing: list[RowDiff] = field(default_factory=list)
    # Tables that record the rule revision of each row (the journal): topic -> (revisions in the
    # live rows, in the rebuilt ones), for each topic whose rule changed since its rows were written.
    rule_changes: dict[str, tuple[set[int], set[int]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.only_live or self.only_rebuilt or self.differing or self.rule_changes)

    def lines(self) -> list[str]:
        if self.ok:
            return [f"{self.table}: identical ({self.live_rows:,} rows)"]
        out = [
            f"{self.table}: {len(self.only_live)} rows only live, {len(self.only_rebuilt)} rows only rebuilt, "
            f"{len(self.differing)} rows differ (live {self.live_rows:,} rows, rebuilt {self.rebuilt_rows:,})"
        ]
        out += [
            f"  posting rule {topic}: revision {_revisions(live)} in the live rows, {_revisions(rebuilt)} in a rebuild"
            " (a rebuild would rewrite these rows with the current rule)"
            for topic, (live, rebuilt) in sorted(self.rule_changes.items())
        ]
        keys = ", ".join(self.key_columns)
        out += [f"  only live     ({keys}) = {_key(k)}" for k in self.only_live[:EXAMPLES]]
        out += [f"  only rebuilt  ({keys}) = {_key(k)}" for k in self.only_rebuilt[:EXAMPLES]]
        for diff in self.differing[:EXAMPLES]:
            changes = "; ".join(f"{c}: live {a!r}, rebuilt {b!r}" for c, (a, b) in diff.columns.items())
            out.append(f"  differs       ({keys}) = {_key(diff.key)}: {changes}")
        return out


@dataclass
class Report:
    positions: dict[str, int]  # read model -> the log position both copies were compared at
    tables: list[TableDiff]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    def table(self, name: str) -> TableDiff:
        return next(t for t in self.tables if t.table == name)

    def __str__(self) -> str:
        at = ", ".join(f"{name} @ {position:,}" for name, position in self.positions.items())
        verdict = "OK: the read models equal a rebuild from the log" if self.ok else "MISMATCH"
        return "\n".join([f"{verdict} ({at})", *(line for t in self.tables for line in t.lines())])


ProjectionsFactory = Callable[[], Sequence[Projection]]


def check(engine: Engine, log: EventLog, projections_factory: ProjectionsFactory, batch_size: int = 5_000) -> Report:
    """Compare the live rebuildable read models with a fresh rebuild from the log (read-only on live)."""
    live = ProjectionRunner(engine, log, projections_factory())
    live.create_tables()
    live.catch_up(batch_size)
    models = live.rebuildable()
    positions, live_rows = _snapshot(engine, models)
    fresh = ProjectionRunner(engine, log, projections_factory()).rebuildable()
    with _scratch(engine) as scratch:
        metadata.create_all(scratch, tables=[t for p in fresh for t in p.tables])
        scratch.commit()
        _replay(scratch, log, fresh, positions, batch_size)
        rebuilt_rows = {t.name: _rows(scratch, t) for p in fresh for t in p.tables}
    tables = [t for p in models for t in p.tables]
    return Report(positions, [_compare(t, live_rows[t.name], rebuilt_rows[t.name]) for t in tables])


def _snapshot(
    engine: Engine, models: Sequence[Projection], attempts: int = 20
) -> tuple[dict[str, int], dict[str, dict[Key, Row]]]:
    """The live rows with the positions they are at; re-read if a follower moved them meanwhile."""
    names = [p.name for p in models]
    for _ in range(attempts):
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")  # one snapshot for all reads
            before = _positions(conn, names)
            rows = {t.name: _rows(conn, t) for p in models for t in p.tables}
            if _positions(conn, names) == before:
                return before, rows
    raise RuntimeError("the live read models kept moving while being read; try again")


def _positions(conn: Connection, names: list[str]) -> dict[str, int]:
    found = {
        str(name): int(position) for name, position in conn.execute(select(tracking.c.projection, tracking.c.position))
    }
    return {name: found.get(name, 0) for name in names}


def _rows(conn: Connection, table: Table) -> dict[Key, Row]:
    keys = [c.name for c in table.primary_key.columns]
    out: dict[Key, Row] = {}
    for row in conn.execute(select(table)).mappings():
        out[tuple(row[k] for k in keys)] = dict(row)
    return out


def _replay(
    conn: Connection, log: EventLog, fresh: Sequence[Projection], positions: dict[str, int], batch_size: int
) -> None:
    """Apply the log from the start to each model, each stopping exactly at its live position."""
    target = max(positions.values(), default=0)
    position = 0
    while position < target:
        batch = [e for e in log.events_after(position, batch_size) if e[0] <= target]
        if not batch:
            break
        for projection in fresh:
            mine = [e for e in batch if e[0] <= positions[projection.name]]
            if mine:
                projection.process(conn, mine)
        conn.commit()
        position = batch[-1][0]


def _compare(table: Table, live: dict[Key, Row], rebuilt: dict[Key, Row]) -> TableDiff:
    diff = TableDiff(
        table.name, tuple(c.name for c in table.primary_key.columns), live_rows=len(live), rebuilt_rows=len(rebuilt)
    )
    diff.only_live = sorted(k for k in live if k not in rebuilt)
    diff.only_rebuilt = sorted(k for k in rebuilt if k not in live)
    for key in sorted(k for k in live if k in rebuilt):
        a, b = live[key], rebuilt[key]
        columns = {c: (a[c], b[c]) for c in a if a[c] != b[c]}
        if columns:
            diff.differing.append(RowDiff(key, columns))
    if {"event_topic", "rule_revision"} <= set(table.columns.keys()):
        diff.rule_changes = _rule_changes(live, rebuilt)
    return diff


def _rule_changes(live: dict[Key, Row], rebuilt: dict[Key, Row]) -> dict[str, tuple[set[int], set[int]]]:
    """Per topic, the rule revisions its rows carry live and rebuilt, where they differ."""

    def by_topic(rows: dict[Key, Row]) -> dict[str, set[int]]:
        found: dict[str, set[int]] = {}
        for row in rows.values():
            found.setdefault(str(row["event_topic"]), set()).add(int(row["rule_revision"]))
        return found

    was, now = by_topic(live), by_topic(rebuilt)
    return {
        topic: (was.get(topic, set()), now.get(topic, set()))
        for topic in sorted(set(was) | set(now))
        if was.get(topic, set()) != now.get(topic, set())
    }


def _revisions(revisions: set[int]) -> str:
    return ", ".join(str(r) for r in sorted(revisions)) or "none"


@contextmanager
def _scratch(engine: Engine) -> Iterator[Connection]:
    """A connection where the read-model table names mean throwaway tables; removed on exit."""
    if engine.dialect.name == "postgresql":
        schema = f"ledger_check_{secrets.token_hex(6)}"
        with engine.connect() as admin:
            admin.execute(text(f'CREATE SCHEMA "{schema}"'))
            admin.commit()
        try:
            with engine.connect().execution_options(schema_translate_map={None: schema}) as conn:
                yield conn
        finally:
            with engine.connect() as admin:
                admin.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                admin.commit()
        return
    directory = tempfile.mkdtemp(prefix="ledger-check-")
    scratch = create_engine(f"sqlite:///{Path(directory) / 'check.sqlite3'}")
    try:
        with scratch.connect() as conn:
            yield conn
    finally:
        scratch.dispose()
        shutil.rmtree(directory, ignore_errors=True)


def _key(key: Key) -> str:
    return ", ".join(str(part) for part in key)

"""Many rows into one table in one round of the driver: plain INSERT, or INSERT ... ON CONFLICT DO
UPDATE (an upsert), on SQLite and PostgreSQL alike.

`conn.execute(insert(table), rows)` costs SQLAlchemy ~5 us per row to build each row's
parameters, as much as the database takes to store it. A rebuild writes hundreds of thousands of
rows, so here the statement is compiled once per (table, dialect), each column's bind processor
(SQLite's datetime-to-text, for one) is applied once per value, and the driver's own
`executemany` gets plain tuples. The rows stored are the same as SQLAlchemy would store.
On PostgreSQL, plain INSERTs go by COPY ... FROM STDIN; upserts of a few rows (the follower's)
by one INSERT ... SELECT FROM unnest(arrays), one round trip, and of many rows (a rebuild's) by
COPY into a temporary table and one INSERT ... SELECT ... ON CONFLICT from it: psycopg escapes
each text element of an array in Python, which made the unnest upserts of a rebuild cost
~85 us a row (docs/throughput.md §Replay). On the connection's own transaction every way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None
# From this many rows a PostgreSQL upsert is staged by COPY (three round trips instead of one).
STAGED_ROWS = 200


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT every row (each a dict with a value for every column of `table`)."""
    if rows:
        _execute(conn, _prepared(table, conn.dialect, None, _schemas(conn)), rows)


def insert_tuples(conn: Connection, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
    """INSERT every row, each a tuple of a value for every column of `table`, in the table's
    order: a model writing many rows (the journal's postings) builds no dict per row."""
    if rows:
        _execute(conn, _prepared(table, conn.dialect, None, _schemas(conn)), rows, by_column=True)


def upsert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    """INSERT every row; a row whose `keys` already exist replaces the stored one."""
    if rows:
        _execute(conn, _prepared(table, conn.dialect, tuple(keys), _schemas(conn)), rows)


class _Prepared:
    def __init__(
        self,
        sql: str,
        names: Sequence[str],
        processors: Sequence[Processor],
        positional: bool,
        columnar: bool = False,
        copy: bool = False,
    ) -> None:
        self.sql = sql
        self.names = tuple(names)
        self.processors = tuple(processors)
        self.positional = positional
        self.columnar = columnar  # one array per column (PostgreSQL's unnest)
        self.copy = copy  # PostgreSQL's COPY ... FROM STDIN, for plain INSERTs
        self.staged: _Staged | None = None  # PostgreSQL upserts of many rows
        self.columns: tuple[str, ...] = self.names  # the table's columns in order (tuple rows' order)


class _Staged:
    """A PostgreSQL upsert through a temporary table: made if missing (it lasts as long as the
    connection; a rolled-back transaction that made it takes it away), filled by COPY, and
    emptied by the statement that upserts its rows, so it is empty between upserts."""

    def __init__(self, create: str, copy: str, upsert: str) -> None:
        self.create = create
        self.copy = copy
        self.upsert = upsert


def _execute(conn: Connection, prepared: _Prepared, rows: Sequence[Any], by_column: bool = False) -> None:
    """Write `rows`: dicts by column name, or (`by_column`) tuples in the table's column order."""
    names = prepared.names
    staged = prepared.staged
    if by_column and names != prepared.columns:  # the driver's parameters in another order
        rows = [dict(zip(prepared.columns, row, strict=True)) for row in rows]
        by_column = False
    if prepared.copy or (staged is not None and len(rows) >= STAGED_ROWS):
        # The SQLAlchemy connection's own psycopg connection: the rows join its transaction,
        # begun here if this is its first statement (the driver's cursor would not begin it,
        # and the connection's commit would then commit nothing).
        if not conn.in_transaction():
            conn.begin()
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            if staged is not None:
                cursor.execute(staged.create)
            with cursor.copy(prepared.sql if staged is None else staged.copy) as copy:
                for row in rows:
                    copy.write_row(row if by_column else [row[name] for name in names])
            if staged is not None:
                cursor.execute(staged.upsert)
        return
    if prepared.columnar:
        keys: Sequence[Any] = range(len(names)) if by_column else names
        conn.exec_driver_sql(prepared.sql, {f"c{i}": [row[key] for row in rows] for i, key in enumerate(keys)})
        return
    processors = [(i, p) for i, p in enumerate(prepared.processors) if p is not None]
    if processors:
        parameters: list[Any] = []
        last: dict[int, tuple[Any, Any]] = {}  # per column, the last value and what it became
        for row in rows:
            values = list(row) if by_column else [row[name] for name in names]
            for i, process in processors:
                value = values[i]
                seen = last.get(i)
                if seen is not None and seen[0] is value:  # one event's postings share its timestamp
                    values[i] = seen[1]
                else:
                    values[i] = process(value)
                    last[i] = (value, values[i])
            parameters.append(tuple(values) if prepared.positional else dict(zip(names, values, strict=True)))
    elif by_column and prepared.positional:
        parameters = list(rows)
    elif by_column:
        parameters = [dict(zip(names, row, strict=True)) for row in rows]
    elif prepared.positional:
        parameters = [tuple([row[name] for name in names]) for row in rows]
    else:
        parameters = [{name: row[name] for name in names} for row in rows]
    conn.exec_driver_sql(prepared.sql, parameters)


def _schemas(conn: Connection) -> tuple[tuple[str | None, str | None], ...]:
    """The connection's schema_translate_map (`ledger rebuild --check` writes into a scratch schema)."""
    return tuple(sorted((conn.get_execution_options().get("schema_translate_map") or {}).items(), key=str))


@cache
def _prepared(
    table: Table, dialect: Dialect, keys: tuple[str, ...] | None, schemas: tuple[tuple[str | None, str | None], ...]
) -> _Prepared:
    if dialect.name == "postgresql":
        return _unnest(table, dialect, keys, dict(schemas))
    if keys is None:
        statement: Any = insert(table)
    else:
        module = postgresql if dialect.name == "postgresql" else sqlite
        statement = module.insert(table)
        updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
        statement = statement.on_conflict_do_update(index_elements=list(keys), set_=updates)
    columns = [c.name for c in table.columns]
    compiled = statement.compile(
        dialect=dialect, column_keys=columns, schema_translate_map=dict(schemas), render_schema_translate=True
    )
    assert isinstance(compiled, SQLCompiler)
    names = list(compiled.positiontup) if compiled.positional and compiled.positiontup else columns
    by_name = {c.name: c for c in table.columns}
    processors = [by_name[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]
    prepared = _Prepared(compiled.string, names, processors, compiled.positional)
    prepared.columns = tuple(columns)
    return prepared


def _unnest(table: Table, dialect: Dialect, keys: tuple[str, ...] | None, schemas: dict[Any, Any]) -> _Prepared:
    quote = dialect.identifier_preparer.quote
    schema = schemas.get(table.schema, table.schema)
    name = (
        quote(table.name)
        if schema is None
        else f"{dialect.identifier_preparer.quote_schema(schema)}.{quote(table.name)}"
    )
    columns = list(table.columns)
    for column in columns:  # psycopg adapts every column type used here natively
        assert column.type.dialect_impl(dialect).bind_processor(dialect) is None, column
    if keys is None:
        # Append-only tables (journal, audit chain, activity): COPY wrote a rebuild's journal rows
        # about 1.8 times and its audit chain rows about 2 times faster than INSERT ... SELECT
        # FROM unnest (docs/throughput.md §Replay).
        copy = f"COPY {name} ({', '.join(quote(c.name) for c in columns)}) FROM STDIN"
        return _Prepared(copy, [c.name for c in columns], [None] * len(columns), positional=False, copy=True)
    arrays = ", ".join(f"%(c{i})s::{c.type.compile(dialect)}[]" for i, c in enumerate(columns))
    # Identifiers come from our own Table objects, quoted; values only ever travel as parameters.
    sql = f"INSERT INTO {name} ({', '.join(quote(c.name) for c in columns)}) SELECT * FROM unnest({arrays})"  # noqa: S608
    updates = ", ".join(f"{quote(c.name)} = EXCLUDED.{quote(c.name)}" for c in columns if c.name not in keys)
    on_conflict = f" ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET {updates}"
    prepared = _Prepared(sql + on_conflict, [c.name for c in columns], [None] * len(columns), False, columnar=True)
    # One temporary table per target table (and schema: `ledger rebuild --check` writes elsewhere).
    temporary = quote(f"staged_{schema}_{table.name}" if schema else f"staged_{table.name}")
    listed = ", ".join(quote(c.name) for c in columns)
    prepared.staged = _Staged(
        create=f"CREATE TEMPORARY TABLE IF NOT EXISTS {temporary} (LIKE {name})",
        copy=f"COPY {temporary} ({listed}) FROM STDIN",
        upsert=(  # the rows leave the temporary table as they are upserted: one statement
            f"WITH staged AS (DELETE FROM {temporary} RETURNING {listed}) "  # noqa: S608
            f"INSERT INTO {name} ({listed}) SELECT {listed} FROM staged{on_conflict}"
        ),
    )
    return prepared

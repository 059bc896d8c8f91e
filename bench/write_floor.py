"""The floor under a rebuild: reading and parsing the log, and writing the rows a rebuild leaves,
with no read model's logic in between.

Measured by the read-models part (bench/read_models.py) after its full rebuild, on the same
database:

- the log is read by a bare SELECT of its stored states (as the `bare SELECT` ceiling) and every
  state parsed into plain values by msgspec (no markers turned into values, no event objects);
- every table the rebuild filled (each read model's and the audit chain's) is read back, untimed,
  and written, timed, into an empty copy of itself in a scratch place (SQLite: a scratch file
  beside the database, with the read models' pragmas; PostgreSQL: a scratch schema), the way a
  rebuild writes: unique indexes in place, the other indexes made after the rows
  (projections/runner.py `rebuild`), rows by `executemany` (SQLite) or COPY (PostgreSQL), one
  commit per table.

No read model's Python between the read and the writes can cost less, so events / (read + parse +
write seconds) bounds the rebuild rate of this machine with these read models, as the bare SELECT
bounds reading alone. It bounds from one side only: a rebuild also writes some rows more than once
(an invoice upserted in several batches), which this does not count.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Index, MetaData, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from bench.procs import clock
from projections.tables import metadata

SCRATCH_SCHEMA = "bench_write_floor"


@dataclass(frozen=True)
class Floor:
    events: int
    read_seconds: float  # the bare SELECT of the log and msgspec's parse of every state
    write_seconds: float  # every filled table's rows written into an empty copy, indexes made
    rows: int
    tables: int

    @property
    def seconds(self) -> float:
        return self.read_seconds + self.write_seconds


def _parse_all(states: list[Any]) -> None:
    decode = msgspec.json.Decoder().decode
    for (state,) in states:
        decode(state)


def _split_indexes(table: Table) -> tuple[list[Index], list[Index]]:
    unique = [i for i in table.indexes if i.unique]
    return unique, [i for i in table.indexes if not i.unique]


def sqlite_floor(database: str, events_table: str) -> Floor:
    source = sqlite3.connect(database)
    begun = clock()
    states = source.execute(f"SELECT rowid, state FROM {events_table} ORDER BY rowid").fetchall()
    _parse_all([(s,) for _, s in states])
    read_seconds = clock() - begun
    scratch_path = database + ".write-floor"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(scratch_path + suffix):
            os.remove(scratch_path + suffix)
    scratch = sqlite3.connect(scratch_path, isolation_level=None)
    scratch.execute("PRAGMA journal_mode = WAL")
    scratch.execute("PRAGMA synchronous = NORMAL")  # as adapters/read_models.py's engine
    dialect = sqlite_dialect.dialect()
    write_seconds, rows, tables = 0.0, 0, 0
    try:
        for table in metadata.sorted_tables:
            columns = ", ".join(f'"{c.name}"' for c in table.columns)
            data = source.execute(f'SELECT {columns} FROM "{table.name}"').fetchall()
            if not data:
                continue
            unique, others = _split_indexes(table)
            scratch.execute(str(CreateTable(table).compile(dialect=dialect)))
            for index in unique:
                scratch.execute(str(CreateIndex(index).compile(dialect=dialect)))
            marks = ", ".join("?" * len(table.columns))
            begun = clock()
            scratch.execute("BEGIN")
            scratch.executemany(f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks})', data)
            for index in others:
                scratch.execute(str(CreateIndex(index).compile(dialect=dialect)))
            scratch.execute("COMMIT")
            write_seconds += clock() - begun
            rows += len(data)
            tables += 1
    finally:
        scratch.close()
        source.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(scratch_path + suffix):
                os.remove(scratch_path + suffix)
    return Floor(len(states), read_seconds, write_seconds, rows, tables)


def postgres_floor(url: str, events_table: str) -> Floor:
    import psycopg

    dialect = postgresql.dialect()
    scratch_metadata = MetaData(schema=SCRATCH_SCHEMA)
    with psycopg.connect(url) as conn:
        begun = clock()
        states = conn.execute(f"SELECT state FROM {events_table} ORDER BY notification_id").fetchall()
        _parse_all(states)
        read_seconds = clock() - begun
        conn.execute(f"DROP SCHEMA IF EXISTS {SCRATCH_SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {SCRATCH_SCHEMA}")
        conn.commit()
        write_seconds, rows, tables = 0.0, 0, 0
        try:
            for table in metadata.sorted_tables:
                # As text: COPY parses every column's text form, whatever its type (jsonb included).
                columns = ", ".join(f'"{c.name}"' for c in table.columns)
                texts = ", ".join(f'"{c.name}"::text' for c in table.columns)
                data = conn.execute(f'SELECT {texts} FROM "{table.name}"').fetchall()
                conn.commit()
                if not data:
                    continue
                copy = table.to_metadata(scratch_metadata, schema=SCRATCH_SCHEMA)
                unique, others = _split_indexes(copy)
                conn.execute(str(CreateTable(copy).compile(dialect=dialect)))
                for index in unique:
                    conn.execute(str(CreateIndex(index).compile(dialect=dialect)))
                conn.commit()
                begun = clock()
                with conn.cursor().copy(f'COPY {SCRATCH_SCHEMA}."{table.name}" ({columns}) FROM STDIN') as writer:
                    for row in data:
                        writer.write_row(row)
                for index in others:
                    conn.execute(str(CreateIndex(index).compile(dialect=dialect)))
                conn.commit()
                write_seconds += clock() - begun
                rows += len(data)
                tables += 1
        finally:
            conn.rollback()
            conn.execute(f"DROP SCHEMA IF EXISTS {SCRATCH_SCHEMA} CASCADE")
            conn.commit()
    return Floor(len(states), read_seconds, write_seconds, rows, tables)

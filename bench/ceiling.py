"""The ceiling: one-row INSERT transactions straight through the driver, no library above it.

A ~300-byte JSON document goes into a table keyed by (uuid, int), like the event store's, in the
same database the commands use: SQLite through `sqlite3` (WAL, the driver's default
synchronous=FULL, as the library leaves it), PostgreSQL through psycopg (one prepared INSERT
per autocommit transaction).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass

from bench.procs import Gate, Measured, clock

TABLE = "bench_raw_insert"
DOCUMENT = json.dumps(
    {
        "originator_topic": "invoice.payment-applied",
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-03-02T09:00:00.000000+00:00"},
        "payment_id": str(uuid.UUID(int=1)),
        "amount": 12_345,
        "fee": 0,
        "cash_account": "bank",
        "recovered": 0,
        "padding": "x" * 30,
    }
).encode()


@dataclass(frozen=True)
class RawJob:
    backend: str  # "sqlite" (target is a file path) or "postgres" (target is a URL)
    target: str
    ops: int
    synchronous: str = ""  # SQLite only: e.g. "NORMAL" for the reference row; "" keeps the default


def create_table(backend: str, target: str) -> None:
    if backend == "sqlite":
        conn = sqlite3.connect(target, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id TEXT, version INTEGER, state BLOB, PRIMARY KEY (id, version))"
        )
        conn.close()
        return
    import psycopg  # here, not at the top: a SQLite worker's peak RSS should not carry libpq

    with psycopg.connect(target, autocommit=True) as pg:
        pg.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id uuid, version bigint, state bytea, PRIMARY KEY (id, version))"
        )


def raw_inserts(job: RawJob, gate: Gate) -> Measured:
    if job.backend == "sqlite":
        return _sqlite(job, gate)
    return _postgres(job, gate)


def _sqlite(job: RawJob, gate: Gate) -> Measured:
    conn = sqlite3.connect(job.target, isolation_level=None, timeout=10, check_same_thread=False)
    if job.synchronous:
        conn.execute(f"PRAGMA synchronous={job.synchronous}")
    statement = f"INSERT INTO {TABLE} (id, version, state) VALUES (?, ?, ?)"
    gate.ready()
    started = clock()
    for _ in range(job.ops):
        conn.execute("BEGIN")
        conn.execute(statement, (uuid.uuid4().hex, 1, DOCUMENT))
        conn.execute("COMMIT")
    finished = clock()
    conn.close()
    return Measured(ops=job.ops, started=started, finished=finished)


def _postgres(job: RawJob, gate: Gate) -> Measured:
    import psycopg

    statement = f"INSERT INTO {TABLE} (id, version, state) VALUES (%s, %s, %s)"
    with psycopg.connect(job.target, autocommit=True) as pg:
        gate.ready()
        started = clock()
        for _ in range(job.ops):
            pg.execute(statement, (uuid.uuid4(), 1, DOCUMENT), prepare=True)
        finished = clock()
    return Measured(ops=job.ops, started=started, finished=finished)

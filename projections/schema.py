"""The read-model schema, brought to the newest migration (projections/migrations) on start.

`upgrade(engine)` runs the Alembic revisions the database lacks, in one transaction that first
takes the schema lock: `pg_advisory_xact_lock` on PostgreSQL, `BEGIN IMMEDIATE` (the write
lock) on SQLite. Two processes starting at once therefore migrate one after the other, and the
second finds nothing left to do. Alembic's version table is `read_model_version`, apart from
anything else in the database.

Databases made before migrations (`metadata.create_all`) have the tables but no version table:
when they hold every table of the first revision, that revision is stamped, not run; when they
hold only some (the audit chain alone), the first revision creates the missing ones.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import cast

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from projections.tables import metadata

VERSION_TABLE = "read_model_version"
BASELINE = "0001"
# The tables of the BASELINE revision, as `metadata.create_all` made them before migrations.
BASELINE_TABLES = frozenset({"projection_tracking", "invoice_status", "journal_postings", "payments", "audit_chain"})
# The pg_advisory_xact_lock key of the read-model schema: a fixed bigint, taken by nothing else.
ADVISORY_LOCK_KEY = 0x6C65_6467_6572_726D  # "ledgerrm"

# Alembic keeps the running migration's context in module globals: one migration per process at a time.
_in_process = threading.Lock()


def upgrade(engine: Engine) -> None:
    """Bring the read-model schema to the newest revision; a no-op when it is there already."""
    head = head_revision()
    if current_revision(engine) == head:
        return  # the common case: no lock taken, no DDL
    with _in_process, _locked(engine) as conn:
        if _current(conn) is None and _table_names(conn) >= BASELINE_TABLES:
            command.stamp(alembic_config(conn), BASELINE)  # made by create_all: adopt it as it is
        command.upgrade(alembic_config(conn), head)


def current_revision(engine: Engine) -> str | None:
    """The revision the database's read-model schema is at; None when never migrated."""
    with engine.connect() as conn:
        return _current(conn)


@cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "projections/migrations/versions holds no revision"
    return head


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """Autogenerate's filter: the event store's tables in the same database are not ours to diff."""
    return type_ != "table" or name in metadata.tables


def alembic_config(conn: Connection | None = None) -> Config:
    """Alembic's configuration of the read models; with `conn`, env.py runs on that connection."""
    config = Config()
    config.set_main_option("script_location", "projections:migrations")
    if conn is not None:
        config.attributes["connection"] = conn
    return config


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def _table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that holds the schema lock until it commits or rolls back."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            with conn.begin():
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
                yield conn
            return
        if conn.dialect.name != "sqlite":
            raise NotImplementedError(f"read models on {conn.dialect.name}")
        # pysqlite opens its transactions itself, only before DML, and commits before DDL: take
        # the transaction over for this connection, so that BEGIN IMMEDIATE takes the write lock
        # (waiting busy_timeout) and the DDL commits or rolls back with the version row.
        dbapi = cast(sqlite3.Connection, conn.connection.driver_connection)
        saved = dbapi.isolation_level
        dbapi.isolation_level = None
        try:
            with conn.begin():
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield conn
        finally:
            dbapi.isolation_level = saved

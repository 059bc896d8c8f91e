"""Which event store: LEDGER_DATABASE_URL turned into the eventsourcing library's settings.

    sqlite:///relative/path.sqlite3     a file, relative to the working directory
    sqlite:////absolute/path.sqlite3    a file, absolute
    sqlite:///:memory:                  in memory (tests only: gone with the process)
    postgresql://user:password@host:port/dbname?sslmode=require&application_name=ledger

On PostgreSQL the URL's query holds libpq connection parameters (sslmode, sslrootcert,
application_name, connect_timeout, target_session_attrs, ...): both the event store and the
read models' engine connect with them; an unknown one is refused at start. A lock timeout
bounds how long a writer waits, LEDGER_DATABASE_TIMEOUT how long a call waits for a connection
to a database that does not answer (adapters/postgres_store.py), and the library's database
functions (POSTGRES_ENABLE_DB_FUNCTIONS) stay off: with concurrent writers they let live
subscribers miss events.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import psycopg
from psycopg.conninfo import make_conninfo

from adapters.postgres_store import LIBPQ_OPTIONS, WAIT_SECONDS
from ledger.errors import LedgerError

POSTGRES_LOCK_TIMEOUT_SECONDS = 5
# The default of LEDGER_DATABASE_TIMEOUT: how long a call waits for a database that does not
# answer before it fails with StoreUnavailableError (a 503 with Retry-After) instead of hanging.
DATABASE_TIMEOUT_SECONDS = 3.0
POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS = 10
SQLITE_LOCK_TIMEOUT_SECONDS = 10


class ConfigurationError(LedgerError):
    """The settings cannot work: an unsupported database URL, a missing secret."""


def event_store_env(database_url: str, timeout_seconds: float = DATABASE_TIMEOUT_SECONDS) -> dict[str, str]:
    """The eventsourcing environment for `database_url`."""
    parts = urlsplit(database_url)
    if parts.scheme == "sqlite":
        return _sqlite_env(parts.path)
    if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return _postgres_env(database_url, timeout_seconds)
    raise ConfigurationError(
        f"unsupported LEDGER_DATABASE_URL scheme {parts.scheme!r}: use sqlite:/// or postgresql://"
    )


def read_model_url(database_url: str) -> str:
    """The SQLAlchemy URL of the same database: read models live beside the events."""
    parts = urlsplit(database_url)
    if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        _postgres_env(database_url, DATABASE_TIMEOUT_SECONDS)  # the same checks
        # SQLAlchemy's psycopg dialect passes the query's parameters on to psycopg.connect.
        return "postgresql+psycopg://" + database_url.split("://", 1)[1]
    if parts.scheme == "sqlite":
        env = _sqlite_env(parts.path)
        return "sqlite:///" + env["SQLITE_DBNAME"]
    raise ConfigurationError(f"unsupported LEDGER_DATABASE_URL scheme {parts.scheme!r}")


def _sqlite_env(path: str) -> dict[str, str]:
    # urlsplit keeps the leading slash: sqlite:///var/x -> "/var/x" (relative), sqlite:////x -> "//x".
    name = path[1:] if path.startswith("/") else path
    if not name:
        raise ConfigurationError("sqlite URL needs a file name: sqlite:///var/ledger.sqlite3")
    if name != ":memory:":
        Path(name).parent.mkdir(parents=True, exist_ok=True)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": "file::memory:?mode=memory&cache=shared" if name == ":memory:" else name,
        "SQLITE_LOCK_TIMEOUT": str(SQLITE_LOCK_TIMEOUT_SECONDS),
    }


def _postgres_env(database_url: str, timeout_seconds: float) -> dict[str, str]:
    parts = urlsplit(database_url)
    if not (isinstance(timeout_seconds, int | float) and 0 < timeout_seconds < math.inf):
        raise ConfigurationError(f"LEDGER_DATABASE_TIMEOUT must be a positive number of seconds: {timeout_seconds!r}")
    options = _libpq_options(parts.query)
    dbname = parts.path.lstrip("/")
    if not dbname or not parts.hostname:
        raise ConfigurationError("postgresql URL needs a host and a database: postgresql://user:pw@host:5432/db")
    return {
        "PERSISTENCE_MODULE": "adapters.postgres_store:BoundedPostgresFactory",
        "POSTGRES_DBNAME": unquote(dbname),
        "POSTGRES_HOST": parts.hostname,
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_LOCK_TIMEOUT": str(POSTGRES_LOCK_TIMEOUT_SECONDS),
        WAIT_SECONDS: str(timeout_seconds),
        LIBPQ_OPTIONS: urlencode(options),
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": str(POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS),
        "POSTGRES_POOL_SIZE": "8",
        "POSTGRES_MAX_OVERFLOW": "8",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
    }


def _libpq_options(query: str) -> dict[str, str]:
    """The URL's query as libpq parameters, each checked by libpq itself (a typo is refused here,
    not at the first connection)."""
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
        make_conninfo("", **options)
    except (ValueError, psycopg.ProgrammingError) as error:
        raise ConfigurationError(f"LEDGER_DATABASE_URL: bad connection parameter in ?{query}: {error}") from None
    return options


def database_probe(database_url: str, timeout_seconds: float = DATABASE_TIMEOUT_SECONDS) -> Callable[[], bool]:
    """A check of whether the database answers now, on a connection of its own (not the store's
    pool, which may still be backing off after an outage): `GET /healthz` calls it."""
    parts = urlsplit(database_url)
    if parts.scheme == "sqlite":
        name = _sqlite_env(parts.path)["SQLITE_DBNAME"]
        return lambda: _sqlite_answers(name, timeout_seconds)
    conninfo = make_conninfo("", **postgres_connect_args(database_url, timeout_seconds))
    return lambda: _postgres_answers(conninfo)


def postgres_connect_args(database_url: str, timeout_seconds: float = DATABASE_TIMEOUT_SECONDS) -> dict[str, str]:
    """psycopg.connect's keyword arguments for a connection of our own to `database_url`'s database
    (the URL's libpq parameters included; its connect_timeout, if any, wins)."""
    env = _postgres_env(database_url, timeout_seconds)
    return {
        "dbname": env["POSTGRES_DBNAME"],
        "host": env["POSTGRES_HOST"],
        "port": env["POSTGRES_PORT"],
        "user": env["POSTGRES_USER"],
        "password": env["POSTGRES_PASSWORD"],
        "connect_timeout": str(max(2, math.ceil(timeout_seconds))),  # libpq: whole seconds, at least 2
        **_libpq_options(urlsplit(database_url).query),
    }


def _postgres_answers(conninfo: str) -> bool:
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def _sqlite_answers(name: str, timeout_seconds: float) -> bool:
    try:
        conn = sqlite3.connect(name, timeout=timeout_seconds, uri=name.startswith("file:"))
        try:
            conn.execute("SELECT 1")
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return True

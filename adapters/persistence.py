"""Which event store: LEDGER_DATABASE_URL turned into the eventsourcing library's settings.

    sqlite:///relative/path.sqlite3     a file, relative to the working directory
    sqlite:////absolute/path.sqlite3    a file, absolute
    sqlite:///:memory:                  in memory (tests only: gone with the process)
    postgresql://user:password@host:port/dbname

On PostgreSQL a lock timeout bounds how long a writer waits, and the library's database
functions (POSTGRES_ENABLE_DB_FUNCTIONS) stay off: with concurrent writers they let live
subscribers miss events.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from ledger.errors import LedgerError

POSTGRES_LOCK_TIMEOUT_SECONDS = 5
# Bounded waits, so a lost database becomes StoreUnavailableError (a 503) instead of a hang. The
# library adds its own retries (10 x 0.2 s per call) on top of the connect timeout.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5
POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS = 10
SQLITE_LOCK_TIMEOUT_SECONDS = 10


class ConfigurationError(LedgerError):
    """The settings cannot work: an unsupported database URL, a missing secret."""


def event_store_env(database_url: str) -> dict[str, str]:
    """The eventsourcing environment for `database_url`."""
    parts = urlsplit(database_url)
    if parts.scheme == "sqlite":
        return _sqlite_env(parts.path)
    if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return _postgres_env(database_url)
    raise ConfigurationError(
        f"unsupported LEDGER_DATABASE_URL scheme {parts.scheme!r}: use sqlite:/// or postgresql://"
    )


def read_model_url(database_url: str) -> str:
    """The SQLAlchemy URL of the same database: read models live beside the events."""
    parts = urlsplit(database_url)
    if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        _postgres_env(database_url)  # the same checks
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


def _postgres_env(database_url: str) -> dict[str, str]:
    parts = urlsplit(database_url)
    if parts.query:
        # Silently dropping ?sslmode=require would be worse than refusing it.
        raise ConfigurationError(f"postgresql URL options are not supported: ?{parts.query}")
    dbname = parts.path.lstrip("/")
    if not dbname or not parts.hostname:
        raise ConfigurationError("postgresql URL needs a host and a database: postgresql://user:pw@host:5432/db")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(dbname),
        "POSTGRES_HOST": parts.hostname,
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_LOCK_TIMEOUT": str(POSTGRES_LOCK_TIMEOUT_SECONDS),
        "POSTGRES_CONNECT_TIMEOUT": str(POSTGRES_CONNECT_TIMEOUT_SECONDS),
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": str(POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS),
        "POSTGRES_POOL_SIZE": "8",
        "POSTGRES_MAX_OVERFLOW": "8",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
    }

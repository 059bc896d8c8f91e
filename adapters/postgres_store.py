"""The PostgreSQL event store with a bounded wait, and libpq options passed through.

The library retries every recorder call on a connection error (10 attempts, 0.2 s apart), and
each attempt waits for a pooled connection: with the database gone a request took 40-50 s to
fail. Here a wait for a pooled connection is given `wait_seconds` at most, and ends the call
(no retry: the pool has been trying to connect all that time); so does a second connection
error in a row on one thread. After the first, the pool's idle connections are checked and the
broken ones replaced (a restarted server drops them all), so the library's one retry gets a live
connection or waits for a new one. A lock timeout counts as a connection error too. A call
therefore fails within about `wait_seconds` plus one of the library's retry pauses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl

from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError
from eventsourcing.postgres import BasePostgresFactory, PostgresDatastore, PostgresFactory
from eventsourcing.utils import Environment, EnvType
from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import PoolTimeout

# Env keys of ours, beside the library's POSTGRES_* keys (adapters/persistence.py writes them).
WAIT_SECONDS = "LEDGER_STORE_WAIT_SECONDS"
LIBPQ_OPTIONS = "LEDGER_LIBPQ_OPTIONS"  # the URL's query string: sslmode=require&application_name=x
# Longer than the library's pause between retries (0.2 s): a failure this recent on the same
# thread is the same call failing again.
SAME_CALL_SECONDS = 1.0


class DatabaseUnavailableError(PersistenceError):
    """The database did not answer within the bound. A PersistenceError (callers map it to
    StoreUnavailableError) but not an OperationalError, so the library does not retry it."""


class BoundedPostgresDatastore(PostgresDatastore):
    def __init__(self, *, wait_seconds: float, libpq_options: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(connect_timeout=wait_seconds, **kwargs)  # the pool's wait for a connection
        assert isinstance(self.pool.kwargs, dict)
        self.pool.kwargs.update(libpq_options)  # sslmode, application_name, ... reach psycopg.connect
        self._last_failure = threading.local()

    @contextmanager
    def get_connection(self) -> Iterator[Connection[DictRow]]:
        last: float | None = getattr(self._last_failure, "at", None)
        again = last is not None and time.monotonic() - last < SAME_CALL_SECONDS
        try:
            with super().get_connection() as conn:
                yield conn
        except (OperationalError, InterfaceError) as error:
            if again or isinstance(error.__cause__, PoolTimeout):
                self._last_failure.at = None
                raise DatabaseUnavailableError(str(error)) from error
            self._last_failure.at = time.monotonic()
            # The server may have dropped every idle connection (a restart, a failover): test
            # and replace them now, so that the library's retry gets a live one, or waits for one.
            self.pool.check()
            raise
        self._last_failure.at = None


class BoundedPostgresFactory(PostgresFactory):
    """The library's PostgreSQL factory, on a BoundedPostgresDatastore."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        # The library's own __init__ builds a plain datastore: skip it, build ours from the same keys.
        super(BasePostgresFactory, self).__init__(env)
        get = self.env.get
        self.datastore = BoundedPostgresDatastore(
            wait_seconds=float(get(WAIT_SECONDS) or "3"),
            libpq_options=dict(parse_qsl(get(LIBPQ_OPTIONS) or "")),
            dbname=get(self.POSTGRES_DBNAME) or "",
            host=get(self.POSTGRES_HOST) or "",
            port=get(self.POSTGRES_PORT) or "5432",
            user=get(self.POSTGRES_USER) or "",
            password=get(self.POSTGRES_PASSWORD) or "",
            idle_in_transaction_session_timeout=int(get(self.POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT) or "0"),
            pool_size=int(get(self.POSTGRES_POOL_SIZE) or "5"),
            max_overflow=int(get(self.POSTGRES_MAX_OVERFLOW) or "10"),
            lock_timeout=int(get(self.POSTGRES_LOCK_TIMEOUT) or "0"),
            enable_db_functions=False,  # see adapters/persistence.py
        )

"""Waking a follower when events are committed: PostgreSQL LISTEN/NOTIFY, plain sleep on SQLite.

`ProjectionRunner.follow(poll_seconds, wait=...)` calls `wait(poll_seconds)` whenever a pass
over the log found nothing new. Here `wait` returns early when new events may exist:

- PostgreSQL: a statement-level trigger on the event store's table runs
  `pg_notify('ledger_events', <last notification id of the statement>)`. A notification is
  delivered when its transaction commits, never for one rolled back. The listener holds its own
  autocommit connection, LISTENs on `ledger_events`, and returns from `wait` as soon as one
  arrives, draining every pending one (one pass over the log covers them all).
- SQLite: no notifications; `wait` sleeps the poll interval.

The poll interval stays the upper bound either way: a notification lost (the listener's
connection dropped, the server restarted) only delays the follower until the next poll. After a
lost connection the listener reconnects, LISTENs again and returns at once, so the runner looks
at the log for what was committed while nobody listened.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import threading
import time
from types import TracebackType
from typing import Any, Protocol

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql
from psycopg.conninfo import make_conninfo

from adapters.persistence import POSTGRES_LOCK_TIMEOUT_SECONDS, postgres_connect_args
from commands.application import BillingApplication

logger = logging.getLogger(__name__)

CHANNEL = "ledger_events"
TRIGGER = "ledger_notify_events"
FUNCTION = "ledger_notify_events"
# One advisory lock for every installer on the database: concurrent CREATE OR REPLACE FUNCTION
# (and a check-then-create of the trigger) would otherwise race ("tuple concurrently updated").
INSTALL_LOCK = int.from_bytes(b"ledgntfy", "big") & 0x7FFF_FFFF_FFFF_FFFF

Connection = psycopg.Connection[tuple[Any, ...]]


class Connect(Protocol):
    def __call__(self, autocommit: bool = False) -> Connection: ...


class LogWaiter(Protocol):
    """What `ledger project --follow` waits with between passes over the log."""

    poll_seconds: float  # the default poll interval with this waiter

    def wait(self, timeout: float) -> None:
        """Block until new events may exist, or `timeout` seconds passed."""

    def interrupt(self) -> None:
        """Make a wait in progress (or the next one) return now: from another thread, to stop."""

    def close(self) -> None: ...


def log_waiter(app: BillingApplication, database_url: str) -> LogWaiter:
    """A listener for `app`'s event store on PostgreSQL (trigger installed); a sleeper on SQLite."""
    recorder = app.recorder
    if not isinstance(recorder, PostgresApplicationRecorder):
        return Sleeper()
    connect = postgres_connector(database_url)
    install_trigger(connect, recorder.datastore.schema, recorder.events_table_name)
    return LogListener(connect)


def postgres_connector(database_url: str) -> Connect:
    """A function opening a new psycopg connection to `database_url`'s database."""
    # A listener only reads: TCP keepalives tell it when a silent server is gone.
    args = {"keepalives": "1", "keepalives_idle": "30", "keepalives_interval": "10", "keepalives_count": "3"}
    args.update(postgres_connect_args(database_url))
    conninfo = make_conninfo("", **args)

    def connect(autocommit: bool = False) -> Connection:
        return psycopg.connect(conninfo, autocommit=autocommit)

    return connect


def install_trigger(connect: Connect, schema: str, table: str) -> None:
    """Create (or update) the notify function, and the trigger if missing. Idempotent, and safe
    when several processes install at once: one transaction under an advisory lock."""
    function = sql.SQL(
        "CREATE OR REPLACE FUNCTION {schema}.{function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "DECLARE last bigint;\n"
        "BEGIN\n"
        "  SELECT max(notification_id) INTO last FROM new_events;\n"
        "  IF last IS NOT NULL THEN\n"
        "    PERFORM pg_notify({channel}, last::text);\n"
        "  END IF;\n"
        "  RETURN NULL;\n"
        "END $$"
    ).format(schema=sql.Identifier(schema), function=sql.Identifier(FUNCTION), channel=sql.Literal(CHANNEL))
    # FOR EACH STATEMENT: a command's transaction inserts all its events in one statement, so
    # one notification per commit instead of one per event.
    trigger = sql.SQL(
        "CREATE TRIGGER {trigger} AFTER INSERT ON {schema}.{table} "
        "REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{function}()"
    ).format(
        trigger=sql.Identifier(TRIGGER),
        schema=sql.Identifier(schema),
        table=sql.Identifier(table),
        function=sql.Identifier(FUNCTION),
    )
    exists = (
        "SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE t.tgname = %s AND c.relname = %s AND n.nspname = %s"
    )
    with connect() as conn, conn.transaction():
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{POSTGRES_LOCK_TIMEOUT_SECONDS}s")))
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (INSTALL_LOCK,))
        conn.execute(function)
        # Created only when missing: CREATE OR REPLACE TRIGGER would lock the events table
        # against writers on every start of every follower.
        if conn.execute(exists, (TRIGGER, table, schema)).fetchone() is None:
            conn.execute(trigger)


class Sleeper:
    """SQLite: no notifications, so wait out the poll interval (interruptible, to stop)."""

    poll_seconds = 0.2

    def __init__(self) -> None:
        self._interrupted = threading.Event()

    def wait(self, timeout: float) -> None:
        self._interrupted.wait(timeout)
        self._interrupted.clear()

    def interrupt(self) -> None:
        self._interrupted.set()

    def close(self) -> None:
        pass

    def __enter__(self) -> Sleeper:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class LogListener:
    """LISTEN ledger_events on a connection of its own; `wait` returns on the first notification.

    Counters, for tests and the bench: `notified` (waits ended by a notification), `timed_out`
    (waits that ran the whole timeout), `reconnects` (connections re-established after a loss).
    """

    poll_seconds = 1.0  # the fallback: only a lost notification ever waits this long

    def __init__(self, connect: Connect, channel: str = CHANNEL) -> None:
        self._connect = connect
        self._channel = channel
        self._conn: Connection | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.notified = 0
        self.timed_out = 0
        self.reconnects = 0
        # LISTEN before the first pass over the log: a commit after it is never missed.
        self._conn = self._listen()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the listening connection (None while disconnected)."""
        return None if self._conn is None else self._conn.info.backend_pid

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if self._conn is None:
            self._conn = self._listen()
            if self._conn is not None:
                self.reconnects += 1
                return  # nobody listened for a while: let the runner look at the log now
            self._sleep(deadline)  # the server is unreachable: poll
            return
        try:
            self._wait_for_notification(self._conn, deadline)
        except psycopg.OperationalError as error:
            logger.warning("lost the connection listening on %s (%s); reconnecting", self._channel, error)
            self._discard()
            self._conn = self._listen()
            if self._conn is not None:
                self.reconnects += 1

    def interrupt(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: already woken
            os.write(self._wake_w, b"x")

    def close(self) -> None:
        self._discard()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> LogListener:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def _wait_for_notification(self, conn: Connection, deadline: float) -> None:
        while True:
            if self._drain(conn):
                self.notified += 1
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.timed_out += 1
                return
            with selectors.DefaultSelector() as selector:
                selector.register(conn.fileno(), selectors.EVENT_READ, "db")
                selector.register(self._wake_r, selectors.EVENT_READ, "wake")
                ready = {key.data for key, _ in selector.select(remaining)}
            if "wake" in ready:
                self._clear_interrupt()
                return
            # "db": a notification, or something else (a parameter status, the connection
            # closing); the next drain reads it, raising OperationalError if the link is gone.

    def _drain(self, conn: Connection) -> bool:
        """Read every notification already received, without blocking. True if there was any."""
        return sum(1 for _ in conn.notifies(timeout=0)) > 0

    def _clear_interrupt(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _listen(self) -> Connection | None:
        try:
            conn: Connection = self._connect(autocommit=True)
        except psycopg.OperationalError as error:
            logger.warning("cannot connect to listen on %s (%s); polling meanwhile", self._channel, error)
            return None
        try:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
        except psycopg.OperationalError:
            conn.close()
            return None
        return conn

    def _discard(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def _sleep(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining > 0:
            with selectors.DefaultSelector() as selector:
                selector.register(self._wake_r, selectors.EVENT_READ)
                if selector.select(remaining):
                    self._clear_interrupt()

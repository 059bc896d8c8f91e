"""Following the log: woken by PostgreSQL NOTIFY, polling on SQLite.

The PostgreSQL followers here poll only every 30 s, and every wait for a read model gives up
after 20 s: a follower that shows a command in time was woken by a notification, which the
listener's counters confirm (no wait ran to its timeout).

A busy follower does not wait at all: after two passes in a row that applied events it pauses
(projections/runner.py `Gathering`) and looks at the log again. A command committed during that
pause is applied without any notification, so these tests commit each command only once the
follower is inside a wait (`_Watched.until_waiting`). That wait, or the next one, ends on the
command's notification: a notification already pending may end it first, but the follower's 30 s
poll never can, which the counters check.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.postgres import PostgresApplicationRecorder
from sqlalchemy import Engine

from adapters.log_notifications import (
    CHANNEL,
    TRIGGER,
    LogListener,
    LogWaiter,
    Sleeper,
    install_trigger,
    log_waiter,
    postgres_connector,
)
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.money import Money
from projections.queries import invoice_row
from projections.runner import ProjectionRunner
from tests.conftest import AppFactory

CUSTOMER = {"email": "ap@example.com", "name": "Example Ltd"}
LONG_POLL_SECONDS = 30.0
DEADLINE_SECONDS = 20.0  # well under the long poll: only a notification gets a follower there in time

postgres_only = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _invoice(app: BillingApplication) -> UUID:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("Work", 2, 10_000, "20")]).result
    app.issue(invoice_id)
    return invoice_id


def _shows(engine: Engine, app: BillingApplication, invoice_id: UUID) -> None:
    """Wait until invoice_status has the invoice at its current version."""
    version = app.invoice(invoice_id).version
    give_up = time.monotonic() + DEADLINE_SECONDS
    while True:
        row = invoice_row(engine, str(invoice_id))
        if row is not None and row["version"] >= version:
            return
        assert time.monotonic() < give_up, f"invoice_status did not reach version {version} in {DEADLINE_SECONDS} s"
        time.sleep(0.01)


class _Watched:
    """A waiter's `wait` that tells the test whether the follower is inside it, and which wait."""

    def __init__(self, waiter: LogWaiter) -> None:
        self._waiter = waiter
        self._changed = threading.Condition()
        self._begun = 0  # waits begun so far
        self._inside = False

    def wait(self, timeout: float) -> None:
        with self._changed:
            self._begun += 1
            self._inside = True
            self._changed.notify_all()
        try:
            self._waiter.wait(timeout)
        finally:
            with self._changed:
                self._inside = False

    def until_waiting(self, after: int = 0) -> int:
        """Block until the follower is inside a wait (one begun after its first `after` waits): its
        last pass found nothing new. Returns that wait's number."""
        with self._changed:
            inside = self._changed.wait_for(lambda: self._inside and self._begun > after, DEADLINE_SECONDS)
            assert inside, f"the follower did not go back to waiting in {DEADLINE_SECONDS} s"
            return self._begun


@contextmanager
def _following(runner: ProjectionRunner, waiter: LogWaiter, poll_seconds: float) -> Iterator[_Watched]:
    """`runner.follow` in a thread, stopped (and its failure re-raised) on exit."""
    stop = threading.Event()
    failures: list[BaseException] = []
    watched = _Watched(waiter)

    def follow() -> None:
        try:
            runner.follow(poll_seconds=poll_seconds, should_stop=stop.is_set, wait=watched.wait)
        except BaseException as failure:
            failures.append(failure)

    thread = threading.Thread(target=follow, name="follower")
    thread.start()
    try:
        yield watched
    finally:
        stop.set()
        waiter.interrupt()
        thread.join(timeout=30)
    assert not thread.is_alive(), "the follower did not stop"
    assert failures == []


def _events_table(app: BillingApplication) -> tuple[str, str]:
    recorder = app.recorder
    assert isinstance(recorder, PostgresApplicationRecorder)
    return recorder.datastore.schema, recorder.events_table_name


def _connect(database_url: str) -> psycopg.Connection[tuple[object, ...]]:
    return postgres_connector(database_url)(autocommit=True)


@postgres_only
def test_a_notification_wakes_the_follower_long_before_its_poll(
    app: BillingApplication, make_app: AppFactory, runner: ProjectionRunner, engine: Engine, database_url: str
) -> None:
    writer = make_app()
    with closing(log_waiter(app, database_url)) as waiter:
        assert isinstance(waiter, LogListener)
        runner.catch_up()
        with _following(runner, waiter, LONG_POLL_SECONDS) as follower:
            for _ in range(3):
                follower.until_waiting()
                invoice_id = _invoice(writer)
                _shows(engine, writer, invoice_id)
                follower.until_waiting()
                writer.record_offline_payment(invoice_id, Money(5_000, "usd"), reference="wire")
                _shows(engine, writer, invoice_id)
        assert waiter.timed_out == 0, "a wait ran to the poll interval: the follower was not woken by NOTIFY"
        assert waiter.notified >= 1
        assert waiter.reconnects == 0


@postgres_only
def test_one_notification_per_committed_write_none_for_a_rolled_back_one(
    app: BillingApplication, make_app: AppFactory, database_url: str
) -> None:
    writer = make_app()
    schema, table = _events_table(app)
    log_waiter(app, database_url).close()  # installs the trigger
    with _connect(database_url) as listening, _connect(database_url) as other:
        listening.execute(f"LISTEN {CHANNEL}")
        with other.transaction(force_rollback=True):
            other.execute(
                f'INSERT INTO "{schema}"."{table}" (originator_id, originator_version, topic, state) '
                "VALUES (%s, 1, 'test:Rolled.Back', '{}')",
                (uuid4(),),
            )
        assert list(listening.notifies(timeout=1.0)) == []

        # A command storing several events in one transaction: one notification, carrying the
        # log position of its last event.
        writer.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("Work", 1, 100), NewLine("More", 1, 200)])
        first = list(listening.notifies(timeout=DEADLINE_SECONDS, stop_after=1))
        rest = list(listening.notifies(timeout=0.5))
        assert [n.payload for n in first + rest] == [str(writer.head())]
        assert writer.head() > 1


@postgres_only
def test_the_trigger_installs_concurrently_and_idempotently(app: BillingApplication, database_url: str) -> None:
    schema, table = _events_table(app)
    connect = postgres_connector(database_url)
    failures: list[BaseException] = []

    def install(start: threading.Barrier) -> None:
        try:
            start.wait(timeout=10)
            install_trigger(connect, schema, table)
        except BaseException as failure:
            failures.append(failure)

    for _ in range(3):  # the first round creates, the others find everything in place
        start = threading.Barrier(4)
        threads = [threading.Thread(target=install, args=(start,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert failures == []
    with _connect(database_url) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = %s AND c.relname = %s",
            (TRIGGER, table),
        ).fetchone()
    assert found == (1,)


@postgres_only
def test_the_listener_survives_the_server_terminating_its_connection(
    app: BillingApplication, make_app: AppFactory, runner: ProjectionRunner, engine: Engine, database_url: str
) -> None:
    writer = make_app()
    with closing(log_waiter(app, database_url)) as waiter, _connect(database_url) as admin:
        assert isinstance(waiter, LogListener)
        runner.catch_up()
        backend = waiter.backend_pid
        with _following(runner, waiter, LONG_POLL_SECONDS) as follower:
            follower.until_waiting()
            _shows(engine, writer, _invoice(writer))
            before_the_loss = follower.until_waiting()
            assert admin.execute("SELECT pg_terminate_backend(%s)", (backend,)).fetchone() == (True,)
            give_up = time.monotonic() + DEADLINE_SECONDS
            while waiter.reconnects == 0:
                assert time.monotonic() < give_up, "the listener never reconnected"
                time.sleep(0.01)
            # The wait that lost the connection counts the reconnection before it returns: wait
            # for one begun after the wait seen before the loss (usually the one after the
            # reconnection; if that wait was ending on a pending notification, the reconnecting
            # one itself, so the check below asks for a notification on the new connection).
            follower.until_waiting(after=before_the_loss)
            notified = waiter.notified
            _shows(engine, writer, _invoice(writer))
            # Its commits were notified on the new connection: some wait ends on them, maybe only
            # the one after the pass that applied them.
            give_up = time.monotonic() + DEADLINE_SECONDS
            while waiter.notified == notified:
                assert time.monotonic() < give_up, "no notification reached the listener after it reconnected"
                time.sleep(0.01)
        assert waiter.backend_pid not in (None, backend)
        assert waiter.timed_out == 0


@sqlite_only
def test_on_sqlite_the_follower_polls(
    app: BillingApplication, make_app: AppFactory, runner: ProjectionRunner, engine: Engine, database_url: str
) -> None:
    writer = make_app()
    with closing(log_waiter(app, database_url)) as waiter:
        assert isinstance(waiter, Sleeper)
        runner.catch_up()
        with _following(runner, waiter, 0.05):
            for _ in range(3):
                _shows(engine, writer, _invoice(writer))


def _ctrl_c_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ledger_project_follow_shows_new_commands_and_stops_on_ctrl_c(
    make_app: AppFactory, engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """The CLI wiring: on PostgreSQL with a 30 s poll, so only NOTIFY can wake it in time."""
    writer = make_app()
    _invoice(writer)
    poll = ["--poll-seconds", str(LONG_POLL_SECONDS)] if database_url.startswith("postgresql") else []
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url}
    out = tmp_path / "follower.out"
    with out.open("wb") as stdout:
        follower = subprocess.Popen(
            [sys.executable, "-m", "adapters.cli", "project", "--follow", *poll],
            cwd=tmp_path,
            env=env,
            stdout=stdout,
            stderr=subprocess.PIPE,
            # A suite started as a background job of a non-interactive shell (`cmd &`) inherits
            # SIGINT ignored, and so would the follower, which then never sees this Ctrl-C.
            preexec_fn=_ctrl_c_as_in_a_terminal,
        )
    try:
        give_up = time.monotonic() + 60
        while b"following the log" not in out.read_bytes():
            assert follower.poll() is None, follower.stderr.read() if follower.stderr else b""
            assert time.monotonic() < give_up, "`ledger project --follow` never started following"
            time.sleep(0.01)
        _shows(engine, writer, _invoice(writer))
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=30)
        assert follower.returncode == 0, err.decode()
        assert b"stopped at" in out.read_bytes()
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait(30)

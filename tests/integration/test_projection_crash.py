"""A projection process killed with SIGKILL at any moment: the next `ledger project` repairs it.

Real processes, really killed: `ledger rebuild --batch-size 5` and `ledger project --follow`
run as subprocesses on the test's database and get SIGKILL at a seeded random moment (and the
rebuild also at chosen transaction boundaries, by a SIGKILL it sends itself). Then `ledger
project` catches up (in this process, through the CLI), and the read models must be exactly
what a clean rebuild from the log gives, for every table of every read model the runner knows
(`projection.tables`), with each journal posting there once: as many rows as `postings_for`
yields over the whole log.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import Engine, func, select

from adapters import cli
from adapters.clock import ManualClock
from adapters.read_models import projection_runner
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.accounting import postings_for
from ledger.invoices import Invoice
from ledger.money import Money
from projections.tables import journal
from tests.conftest import AppFactory
from tests.read_model_dump import dump_read_models

CUSTOMERS = [
    {"email": "ap@example.com", "name": "Example Ltd"},
    {"email": "billing@acme.example", "name": "Acme Corporation"},
]
CURRENCIES = ("usd", "eur", "jpy", "kwd")
SUBPROCESS_TIMEOUT = 60


def seed(app: BillingApplication, clock: ManualClock, invoices: int, tag: str) -> list[UUID]:
    """About five events per invoice: drafts, issues, card and offline payments, refunds, voids."""
    ids = []
    for i in range(invoices):
        currency = CURRENCIES[i % len(CURRENCIES)]
        invoice_id = app.create_draft(
            customer=CUSTOMERS[i % 2],
            currency=currency,
            lines=[NewLine("Consulting", 1 + i % 3, 1_000 + 37 * i, "20"), NewLine("Support", "2.5", 333)],
            due_date="2026-04-01",
        ).result
        app.add_line(invoice_id, NewLine("Licence", 1, 5_000, "7.25"))
        app.issue(invoice_id)
        total = app.invoice(invoice_id).total
        if i % 4 == 0:
            payment = app.record_provider_payment_succeeded(
                provider="stripe",
                provider_payment_id=f"pi_{tag}_{i}",
                invoice_id=invoice_id,
                amount_captured=Money(total, currency),
                fee=30,
            ).result
            app.record_refund(payment, refund_id=f"re_{tag}_{i}", amount=total // 3)
        elif i % 4 == 1:
            app.record_offline_payment(invoice_id, Money(total // 2, currency), reference=f"wire {tag} {i}")
        elif i % 4 == 2:
            app.void(invoice_id)
        else:
            app.mark_uncollectible(invoice_id)
        clock.advance(timedelta(minutes=7))
        ids.append(invoice_id)
    return ids


def ledger(*args: str, database_url: str, cwd: Path, log: str) -> subprocess.Popen[bytes]:
    """`ledger ARGS` as its own process on the test's database; its output in cwd/LOG.out and .err."""
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url}
    with (cwd / f"{log}.out").open("wb") as out, (cwd / f"{log}.err").open("wb") as err:
        return subprocess.Popen([sys.executable, "-m", "adapters.cli", *args], cwd=cwd, env=env, stdout=out, stderr=err)


def replaying(process: subprocess.Popen[bytes], progress: Path) -> float:
    """Wait until a rebuild draws its progress bar (its tables are reset, replay has begun)."""
    started = time.perf_counter()
    while process.poll() is None and progress.stat().st_size == 0:
        assert time.perf_counter() - started < SUBPROCESS_TIMEOUT, "the rebuild never started replaying"
        time.sleep(0.002)
    return time.perf_counter()


def kill(process: subprocess.Popen[bytes]) -> bool:
    """SIGKILL; True when it was still running (not when it had already finished)."""
    alive = process.poll() is None
    if alive:
        process.send_signal(signal.SIGKILL)
    process.wait(SUBPROCESS_TIMEOUT)
    return alive


def finish(process: subprocess.Popen[bytes]) -> None:
    assert process.wait(SUBPROCESS_TIMEOUT) == 0, f"{process.args} failed with {process.returncode}"


def assert_repaired_by_project(make_app: AppFactory, engine: Engine, database_url: str) -> None:
    """`ledger project` after the crash leaves the read models as a clean rebuild does."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LEDGER_DATABASE_URL", database_url)
        assert cli.main(["project"]) == 0
    app = make_app()  # a fresh process: nothing in memory from before the crash
    runner = projection_runner(app, engine)
    head = app.head()
    assert runner.positions() == {p.name: head for p in runner.projections}, "`ledger project` did not catch up"
    caught_up = dump_read_models(runner)

    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(journal)).scalar_one()
        distinct = conn.execute(
            select(func.count()).select_from(select(journal.c.position, journal.c.line).distinct().subquery())
        ).scalar_one()
    assert rows == distinct, "a journal posting is there twice"
    assert rows == expected_posting_count(app), "the journal does not hold each event's postings exactly once"

    runner.rebuild()
    rebuilt = dump_read_models(runner)
    assert caught_up.keys() == rebuilt.keys()
    for table in rebuilt:
        assert caught_up[table] == rebuilt[table], f"{table}: after the crash and `ledger project`, not a rebuild"


def expected_posting_count(app: BillingApplication) -> int:
    """How many postings the whole log yields: each invoice event posted in its invoice's currency."""
    states: dict[UUID, Invoice] = {}
    count = 0
    for _, event in app.events_after(0, 1_000_000):
        if isinstance(event, Invoice.Event):
            invoice = event.mutate(states.get(event.originator_id))
            assert isinstance(invoice, Invoice)
            states[event.originator_id] = invoice
            count += len(postings_for(event, invoice.currency))
    return count


KILL_ATTEMPTS = 4


@pytest.mark.parametrize("seed_value", [1, 2])
def test_a_rebuild_killed_at_a_random_moment_is_repaired_by_project(
    make_app: AppFactory, clock: ManualClock, engine: Engine, database_url: str, tmp_path: Path, seed_value: int
) -> None:
    app = make_app()
    seed(app, clock, invoices=35, tag="seed")
    assert app.head() >= 200
    projection_runner(app, engine).catch_up()

    # How long the replay of a whole rebuild takes here, so that the kill lands within it.
    calibration = ledger("rebuild", "--batch-size", "5", database_url=database_url, cwd=tmp_path, log="calibration")
    began = replaying(calibration, tmp_path / "calibration.err")
    finish(calibration)
    replay = time.perf_counter() - began

    delay = random.Random(seed_value).uniform(0.0, 0.7 * replay)  # margin: this run may go faster
    # A rebuild that had already finished proves nothing about repairing a crash. On a busy
    # machine the calibration may have run slower than this rebuild does: then try again, sooner.
    for attempt in range(KILL_ATTEMPTS):
        rebuild = ledger("rebuild", "--batch-size", "5", database_url=database_url, cwd=tmp_path, log="killed")
        replaying(rebuild, tmp_path / "killed.err")
        time.sleep(delay / 2**attempt)
        if kill(rebuild):
            break
    else:
        pytest.fail(f"every rebuild finished before its kill ({KILL_ATTEMPTS} tries): nothing was killed")
    assert_repaired_by_project(make_app, engine, database_url)


# A SIGKILL the rebuild sends itself at a boundary of its work on the read models: right before
# its N-th commit (the transaction written, not committed), right after it (before the next
# statement), or right before its N-th SQL statement. Counted from the start of `rebuild()`, so
# whatever the implementation (and however many read models), the first transactions are the
# ones that reset the tables and positions, the following ones replay batches.
KILL_AT = """
import os, signal, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
from projections.runner import ProjectionRunner
from adapters.cli import main

where, fatal = sys.argv[1], int(sys.argv[2])
counts = {"statement": 0, "commit": 0}
armed = False
committed = False

def die():
    os.kill(os.getpid(), signal.SIGKILL)

@event.listens_for(Engine, "before_cursor_execute")
def before_statement(*args):
    global committed
    if not armed:
        return
    counts["statement"] += 1
    if where == "before-statement" and counts["statement"] == fatal:
        die()
    if where == "after-commit" and committed and counts["commit"] == fatal:
        die()
    committed = False

@event.listens_for(Engine, "commit")
def before_commit(*args):
    global committed
    if not armed:
        return
    counts["commit"] += 1
    if where == "before-commit" and counts["commit"] == fatal:
        die()
    committed = True

rebuild = ProjectionRunner.rebuild
def rebuilding(self, *args, **kwargs):
    global armed
    armed = True
    return rebuild(self, *args, **kwargs)

ProjectionRunner.rebuild = rebuilding
raise SystemExit(main(["rebuild", "--batch-size", "5"]))
"""


@pytest.mark.parametrize(
    ("where", "n"),
    [
        ("before-commit", 1),
        ("after-commit", 1),
        ("before-commit", 2),
        ("after-commit", 2),
        ("before-statement", 7),
        ("after-commit", 9),
    ],
)
def test_a_rebuild_killed_at_a_transaction_boundary_is_repaired_by_project(
    make_app: AppFactory, clock: ManualClock, engine: Engine, database_url: str, tmp_path: Path, where: str, n: int
) -> None:
    app = make_app()
    seed(app, clock, invoices=8, tag="step")
    projection_runner(app, engine).catch_up()
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url}
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AT, where, str(n)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert_repaired_by_project(make_app, engine, database_url)


KILL_ATTEMPTS = 4


@pytest.mark.parametrize("seed_value", [1, 2])
def test_a_follower_killed_while_commands_are_written_is_repaired_by_project(
    make_app: AppFactory, clock: ManualClock, engine: Engine, database_url: str, tmp_path: Path, seed_value: int
) -> None:
    app = make_app()
    seed(app, clock, invoices=25, tag="before")
    follower = ledger(
        "project", "--follow", "--poll-seconds", "0.02", database_url=database_url, cwd=tmp_path, log="follower"
    )
    # Commands keep coming; the follower dies a random while after it has caught up and follows.
    following_for = random.Random(seed_value).uniform(0.05, 1.0)
    kill_at = None
    written = 0
    give_up = time.perf_counter() + SUBPROCESS_TIMEOUT
    try:
        while follower.poll() is None and (kill_at is None or time.perf_counter() < kill_at):
            assert time.perf_counter() < give_up, "`ledger project --follow` never started following"
            seed(app, clock, invoices=1, tag=f"during{written}")
            written += 1
            time.sleep(0.02)
            if kill_at is None and b"following the log" in (tmp_path / "follower.out").read_bytes():
                kill_at = time.perf_counter() + following_for
    finally:
        alive = kill(follower)
    assert alive, "`ledger project --follow` stopped by itself"
    seed(app, clock, invoices=5, tag="after")
    assert_repaired_by_project(make_app, engine, database_url)

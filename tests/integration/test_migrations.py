"""The read-model schema's migrations (projections/schema.py, projections/migrations), on both backends."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Inspector, inspect, select, text
from sqlalchemy.exc import SAWarning

from projections.schema import (
    ADVISORY_LOCK_KEY,
    BASELINE,
    BASELINE_TABLES,
    VERSION_TABLE,
    alembic_config,
    current_revision,
    head_revision,
    include_name,
    upgrade,
)
from projections.tables import audit_chain, metadata, tracking

ROOT = Path(__file__).resolve().parents[2]


def _versions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _schema(engine: Engine) -> dict[str, Any]:
    """What the database says about each read-model table: columns, keys, indexes."""
    insp: Inspector = inspect(engine)
    shape: dict[str, Any] = {}
    for table in sorted(metadata.tables):
        columns = [
            (c["name"], str(c["type"]), c["nullable"], c.get("default"), c.get("autoincrement"))
            for c in insp.get_columns(table)
        ]
        with warnings.catch_warnings():  # SQLite's reflection skips expression indexes: named below
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index", SAWarning)
            indexes = sorted(
                (i["name"], tuple(i["column_names"]), tuple(i.get("expressions") or ()), bool(i["unique"]))
                for i in insp.get_indexes(table)
            )
            unique = sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table))
        shape[table] = {
            "index_names": _index_names(engine, table),
            "columns": columns,
            "primary_key": insp.get_pk_constraint(table)["constrained_columns"],
            "indexes": indexes,
            "unique": unique,
        }
    return shape


def _index_names(engine: Engine, table: str) -> list[str]:
    """Every index's name, expression indexes too (which SQLite's reflection leaves out)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :table"
        else:
            query = "SELECT indexname FROM pg_indexes WHERE tablename = :table"
        return sorted(conn.execute(text(query), {"table": table}).scalars())


def _audit_row(position: int) -> dict[str, object]:
    return {
        "position": position,
        "originator_id": "00000000-0000-0000-0000-000000000001",
        "originator_version": 1,
        "topic": "Invoice.Created",
        "link": "ab" * 32,
    }


def test_upgrade_on_an_empty_database_creates_the_tables_and_the_version_row(engine: Engine) -> None:
    assert current_revision(engine) is None

    upgrade(engine)

    assert _tables(engine) == set(metadata.tables) | {VERSION_TABLE}
    assert _versions(engine) == [head_revision()]
    assert current_revision(engine) == head_revision()


def test_upgrading_again_changes_nothing(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(tracking.insert().values(projection="journal", position=7))
    before = _schema(engine)

    upgrade(engine)
    upgrade(engine)

    assert _schema(engine) == before
    assert _versions(engine) == [head_revision()]
    with engine.connect() as conn:
        assert conn.execute(select(tracking.c.projection, tracking.c.position)).all() == [("journal", 7)]


def test_a_database_made_by_create_all_is_stamped_and_keeps_its_rows(engine: Engine) -> None:
    metadata.create_all(engine)  # what create_tables did before migrations
    with engine.begin() as conn:
        conn.execute(tracking.insert().values(projection="audit_chain", position=2))
        conn.execute(audit_chain.insert(), [_audit_row(1), _audit_row(2)])
    before = _schema(engine)

    upgrade(engine)

    assert _versions(engine) == [head_revision()]
    assert _schema(engine) == before
    with engine.connect() as conn:
        assert conn.execute(select(tracking.c.projection, tracking.c.position)).all() == [("audit_chain", 2)]
        assert conn.execute(select(audit_chain.c.position).order_by(audit_chain.c.position)).scalars().all() == [1, 2]


def test_a_database_holding_only_some_tables_gets_the_others(engine: Engine) -> None:
    metadata.create_all(engine, tables=[tracking, audit_chain])  # `ledger audit verify` on a fresh database did this
    with engine.begin() as conn:
        conn.execute(audit_chain.insert(), [_audit_row(1)])

    upgrade(engine)

    assert _tables(engine) == set(metadata.tables) | {VERSION_TABLE}
    assert _versions(engine) == [head_revision()]
    with engine.connect() as conn:
        assert conn.execute(select(audit_chain.c.position)).scalars().all() == [1]


def test_an_old_database_is_stamped_only_when_it_holds_every_table_of_the_baseline() -> None:
    baseline = ScriptDirectory.from_config(alembic_config()).get_revision(BASELINE)
    assert baseline is not None
    assert baseline.down_revision is None
    assert set(baseline.module.TABLES) == BASELINE_TABLES


def test_the_migrations_make_exactly_the_tables_of_metadata(engine: Engine) -> None:
    """tables.py and the revisions cannot drift: a change to one without the other fails here.

    A schema change is a change to projections/tables.py AND a new revision under
    projections/migrations/versions.
    """
    upgrade(engine)

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "include_name": include_name, "compare_type": True}
        )
        # SQLite's reflection skips the expression index (autogenerate too): _schema compares it by name.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index", SAWarning)
            warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
            assert compare_metadata(context, metadata) == []

    # What autogenerate does not look at (autoincrement, server defaults, unique constraints):
    # the migrated schema must reflect exactly as the one create_all makes from tables.py.
    migrated = _schema(engine)
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {VERSION_TABLE}"))
    metadata.drop_all(engine)
    metadata.create_all(engine)
    assert _schema(engine) == migrated


def test_the_event_store_tables_are_left_out_of_the_comparison() -> None:
    assert include_name("invoice_status", "table", {}) is True
    assert include_name("billingapplication_events", "table", {}) is False
    assert include_name("ix_anything", "index", {}) is True


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_concurrent_upgrades_from_two_threads_both_succeed(engine: Engine) -> None:
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            upgrade(engine)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert _versions(engine) == [head_revision()]
    assert _tables(engine) == set(metadata.tables) | {VERSION_TABLE}


def test_concurrent_upgrades_from_several_processes_all_succeed(database_url: str, engine: Engine) -> None:
    script = (  # imports done, every process starts upgrading at the same moment
        "import sys, time\n"
        "from adapters.read_models import read_model_engine\n"
        "from projections.schema import upgrade\n"
        "engine = read_model_engine(sys.argv[1])\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "upgrade(engine)\n"
    )
    # The database exists before anything migrates it (the event store made it). On a brand-new
    # SQLite file, simultaneous first connections race to switch it to WAL, outside upgrade().
    with engine.connect():
        pass
    start = time.time() + 3
    processes = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", script, database_url, str(start)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [(p.communicate(timeout=60)[1], p.returncode) for p in processes]

    failures = [stderr for stderr, returncode in outcomes if returncode != 0]

    assert failures == [], "\n".join(failures)
    assert _versions(engine) == [head_revision()]
    assert _tables(engine) == set(metadata.tables) | {VERSION_TABLE}


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_an_upgrade_waits_for_the_schema_lock(engine: Engine) -> None:
    done = threading.Event()

    def run() -> None:
        upgrade(engine)
        done.set()

    with engine.connect() as holder, holder.begin():
        holder.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        thread = threading.Thread(target=run)
        thread.start()
        assert not done.wait(0.5), "upgrade ran while another transaction held the schema lock"
        assert current_revision(engine) is None
    thread.join(timeout=30)

    assert done.is_set()
    assert _versions(engine) == [head_revision()]


def _insert_an_issued_invoices_posting(conn: Connection) -> None:
    """One posting as revisions 0001 and 0002 of the journal wrote it: 100 usd of revenue."""
    conn.execute(
        text(
            "INSERT INTO journal_postings (position, line, invoice_id, event_topic, event_version, occurred_at,"
            " account, currency, debit, credit) VALUES (1, 0, 'inv', 'invoice.issued', 2, :at, 'revenue', 'usd',"
            " 0, 100)"
        ),
        {"at": datetime(2026, 3, 2, tzinfo=UTC)},
    )


def test_a_journal_at_revision_0001_keeps_its_postings_and_gains_payouts(engine: Engine) -> None:
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        _insert_an_issued_invoices_posting(conn)
    upgrade(engine)
    assert _versions(engine) == [head_revision()]
    with engine.begin() as conn:
        kept = conn.execute(text("SELECT invoice_id, payout_id, credit FROM journal_postings")).all()
        conn.execute(
            text(
                "INSERT INTO journal_postings (position, line, payout_id, event_topic, event_version, occurred_at,"
                " account, currency, debit, credit) VALUES (2, 0, 'po', 'payout.paid', 2, :at, 'bank', 'usd', 100, 0)"
            ),
            {"at": datetime(2026, 3, 2, tzinfo=UTC)},
        )
    assert [tuple(row) for row in kept] == [("inv", None, 100)]


def test_a_journal_at_revision_0002_keeps_its_postings_as_written_by_revision_1_of_their_rules(engine: Engine) -> None:
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0002")
        _insert_an_issued_invoices_posting(conn)
    upgrade(engine)
    assert _versions(engine) == [head_revision()]
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT position, credit, rule_revision FROM journal_postings")).all()
    assert [tuple(row) for row in kept] == [(1, 100, 1)]
    assert "rule_revision" in {c["name"] for c in inspect(engine).get_columns("journal_postings")}

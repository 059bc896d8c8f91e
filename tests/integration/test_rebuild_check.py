"""`ledger rebuild --check`: a fresh rebuild in scratch tables, compared row by row with the live models."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select, text

from adapters.cli import main
from adapters.clock import ManualClock
from adapters.read_models import read_model_engine, read_model_projections
from commands.application import BillingApplication
from ledger.accounting import RULES, PostingRule
from projections.consistency import Report, check
from projections.journal import JournalProjection
from projections.runner import ProjectionRunner
from projections.tables import invoice_status, journal, payments, tracking
from tests.integration.test_read_models import _scenario


def _check(app: BillingApplication, engine: Engine) -> Report:
    return check(engine, app, lambda: read_model_projections(app), batch_size=3)


def _live(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            t.name: sorted(tuple(r) for r in conn.execute(select(t)))
            for t in (invoice_status, journal, payments, tracking)
        }


def _scratch_left(engine: Engine) -> list[str]:
    inspector = inspect(engine)
    if engine.dialect.name == "postgresql":
        return [s for s in inspector.get_schema_names() if s.startswith("ledger_check_")]
    return [t for t in inspector.get_table_names() if t.startswith("check")]


def test_live_models_built_incrementally_equal_a_rebuild(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    _scenario(app, clock)
    runner.catch_up(batch_size=2)
    before = _live(engine)
    report = _check(app, engine)
    assert report.ok, str(report)
    assert report.positions == {p.name: app.head() for p in runner.rebuildable()}
    assert {
        "invoice_status",
        "journal",
        "payments",
        "reconciliation_ledger",
        "reconciliation_items",
        "webhook_inbox",
    } <= set(report.positions)
    assert report.table("journal_postings").live_rows > 0
    assert str(report).startswith("OK")
    assert _live(engine) == before
    assert _scratch_left(engine) == []


def test_the_check_catches_the_live_models_up_first(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    runner.catch_up()
    _scenario(app, clock)  # logged, not yet projected
    report = _check(app, engine)
    assert report.ok, str(report)
    assert set(report.positions.values()) == {app.head()}


def test_tampered_rows_are_each_named(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    ids = _scenario(app, clock)
    runner.catch_up()
    with engine.begin() as conn:
        paid = conn.execute(
            select(invoice_status.c.amount_paid).where(invoice_status.c.invoice_id == str(ids[1]))
        ).scalar_one()
        conn.execute(
            invoice_status.update()
            .where(invoice_status.c.invoice_id == str(ids[1]))
            .values(amount_paid=invoice_status.c.amount_paid + 1)
        )
        position, line = conn.execute(select(journal.c.position, journal.c.line).limit(1)).one()
        conn.execute(journal.delete().where(journal.c.position == position, journal.c.line == line))
        conn.execute(payments.insert().values(**_bogus_payment()))
    tampered = _live(engine)

    report = _check(app, engine)

    assert not report.ok
    status = report.table("invoice_status")
    assert (status.only_live, status.only_rebuilt) == ([], [])
    assert [(d.key, d.columns) for d in status.differing] == [((str(ids[1]),), {"amount_paid": (paid + 1, paid)})]
    postings = report.table("journal_postings")
    assert (postings.only_live, postings.only_rebuilt, postings.differing) == ([], [(position, line)], [])
    bogus = report.table("payments")
    assert (bogus.only_live, bogus.only_rebuilt, bogus.differing) == ([("bogus",)], [], [])
    shown = str(report)
    assert shown.startswith("MISMATCH")
    assert f"amount_paid: live {paid + 1}, rebuilt {paid}" in shown
    assert f"only rebuilt  (position, line) = {position}, {line}" in shown
    assert "only live     (payment_id) = bogus" in shown
    assert _live(engine) == tampered  # neither the rows nor the tracking positions were touched
    assert _scratch_left(engine) == []


def test_scratch_tables_are_dropped_when_the_check_fails(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    _scenario(app, clock)
    runner.catch_up()

    def broken() -> list[Any]:
        projections = read_model_projections(app)
        projections[0].process = _explode  # type: ignore[method-assign]
        return projections

    with pytest.raises(RuntimeError, match="boom"):
        check(engine, app, broken)
    assert _scratch_left(engine) == []


def test_a_changed_posting_rule_is_named_instead_of_silently_rewriting_the_past(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    _scenario(app, clock)
    runner.catch_up()
    with engine.connect() as conn:
        written = set(conn.execute(select(journal.c.event_topic, journal.c.rule_revision)).all())
    assert ("invoice.voided", 1) in written
    assert {revision for _, revision in written} == {1}

    # Someone changes what a void posts (here: the written-off part to revenue, not bad debt)
    # and, as the rule asks, raises its revision. The rows written by revision 1 stay as they are.
    voided = RULES["invoice.voided"]
    changed = {**RULES, "invoice.voided": PostingRule(voided.revision + 1, voided.post)}

    def with_the_changed_rule() -> list[Any]:
        projections = read_model_projections(app)
        for projection in projections:
            if isinstance(projection, JournalProjection):
                projection.rules = changed
        return projections

    report = check(engine, app, with_the_changed_rule, batch_size=3)

    assert not report.ok
    postings = report.table("journal_postings")
    assert postings.differing
    assert {tuple(d.columns) for d in postings.differing} == {("rule_revision",)}
    assert postings.rule_changes == {"invoice.voided": ({1}, {2})}
    shown = str(report)
    assert "posting rule invoice.voided: revision 1 in the live rows, 2 in a rebuild" in shown
    with engine.connect() as conn:  # the check rewrote nothing
        assert set(conn.execute(select(journal.c.event_topic, journal.c.rule_revision)).all()) == written


def _explode(*_: Any) -> None:
    raise RuntimeError("boom")


def _bogus_payment() -> dict[str, Any]:
    moment = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    return {
        "payment_id": "bogus",
        "invoice_id": "bogus",
        "provider": "stripe",
        "provider_payment_id": "pi_bogus",
        "currency": "usd",
        "amount": 100,
        "amount_captured": 100,
        "fee": 0,
        "status": "succeeded",
        "amount_refunded": 0,
        "refunds": 0,
        "amount_disputed": 0,
        "amount_dispute_lost": 0,
        "failed_attempts": 0,
        "created_at": moment,
        "updated_at": moment,
        "version": 1,
    }


def test_cli_exits_0_when_identical_and_1_on_any_difference(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    capsys.readouterr()
    assert main(["rebuild", "--check"]) == 0
    assert capsys.readouterr().out.startswith("OK")

    engine = read_model_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE invoice_status SET amount_paid = amount_paid + 1 WHERE status = 'paid'"))
    finally:
        engine.dispose()
    assert main(["rebuild", "--check"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("MISMATCH")
    assert "invoice_status:" in out
    assert "amount_paid: live" in out
    assert "journal_postings: identical" in out

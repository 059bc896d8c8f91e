"""Read models maintained step by step equal a rebuild from the log, whatever the commands.

The ledger state machine (on a real SQLite file per example, and on PostgreSQL with few
examples) gets a projection process of its own: a long-lived application and runner on the
same database, like `ledger project --follow`. Rules advance it at random points by one batch
or to the head, in batches of 1 to 50 events, and restart it (its in-memory invoice states are
lost). Teardown catches up, dumps every table of every read model the runner knows
(`projection.tables`, so new read models are covered without touching this file), rebuilds
and dumps again: the two must be equal. The journal's trial balance must sum to zero per
currency and equal the balances the machine computed from `postings_for`, and every invoice's
status row must agree with the aggregate.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import rule, run_state_machine_as_test
from sqlalchemy import Engine

from adapters.read_models import projection_runner, read_model_engine
from projections.queries import invoice_row, trial_balance
from tests.property.conftest import DatabaseFactory
from tests.property.test_backends_machine import StoredLedgerMachine
from tests.read_model_dump import dump_read_models

READ_MODEL_SETTINGS = settings(settings.get_profile("integration"), stateful_step_count=50)
PG_SETTINGS = settings(READ_MODEL_SETTINGS, max_examples=5)


class ReadModelMachine(StoredLedgerMachine):
    def __init__(self, databases: DatabaseFactory) -> None:
        super().__init__(databases)
        self.engine: Engine = read_model_engine(self.database_url)
        self.projector_app = self.make_app()
        self.runner = projection_runner(self.projector_app, self.engine)

    @rule(batch=st.integers(1, 50))
    def project_one_batch(self, batch: int) -> None:
        """The runner advances every read model by at most one batch."""
        before = self.runner.positions()
        applied = self.runner.run_once(batch_size=batch)
        after = self.runner.positions()
        assert 0 <= applied <= batch * len(after)
        head = self.projector_app.head()
        for name, position in after.items():
            assert before[name] <= position <= head, f"{name} moved from {before[name]} to {position}, head {head}"

    @rule(batch=st.integers(1, 5))
    def project_a_few_events(self, batch: int) -> None:
        """The same as `project_one_batch` with small batches: a second rule, so that the
        projector runs more often among the machine's many command rules."""
        self.project_one_batch(batch)

    @rule(batch=st.integers(1, 50))
    def project_to_the_head(self, batch: int) -> None:
        self.runner.catch_up(batch)
        head = self.projector_app.head()
        assert set(self.runner.positions().values()) == {head}

    @rule()
    def restart_projector(self) -> None:
        """A new projection process: it resumes from the committed positions, with no states in memory."""
        self.projector_app.close()
        self.projector_app = self.make_app()
        self.runner = projection_runner(self.projector_app, self.engine)

    def teardown(self) -> None:
        try:
            self.check_read_models()
        finally:
            try:
                self.projector_app.close()
                self.engine.dispose()
            finally:
                super().teardown()

    def check_read_models(self) -> None:
        runner = self.runner
        runner.catch_up()
        head = self.projector_app.head()
        assert set(runner.positions().values()) <= {head}
        incremental = dump_read_models(runner)
        runner.rebuild(batch_size=7)
        rebuilt = dump_read_models(runner)
        for table in incremental:
            assert incremental[table] == rebuilt[table], f"{table}: incremental rows differ from a rebuild"
        assert set(runner.positions().values()) <= {head}

        balances = trial_balance(self.engine)
        per_currency: dict[str, int] = defaultdict(int)
        for row in balances:
            per_currency[row.currency] += row.balance
        assert all(total == 0 for total in per_currency.values()), f"trial balance: {dict(per_currency)}"
        expected: dict[tuple[str, str], int] = defaultdict(int)
        for postings in self.postings.values():
            for key, amount in postings.items():
                expected[key] += amount
        journal_balances = {(r.currency, r.account): r.balance for r in balances if r.balance}
        assert journal_balances == {k: v for k, v in expected.items() if v}

        for invoice_id in self.invoice_models:
            invoice = self.app.invoice(invoice_id)
            row = invoice_row(self.engine, str(invoice_id))
            assert row is not None, f"no status row for invoice {invoice_id}"
            assert (row["status"], row["total"], row["amount_paid"], row["amount_refunded"], row["amount_due"]) == (
                invoice.status,
                invoice.total,
                invoice.amount_paid,
                invoice.amount_refunded,
                invoice.amount_due,
            ), f"status row of invoice {invoice_id}"
            assert row["version"] == invoice.version


def test_read_models_equal_a_rebuild_after_any_commands(fresh_databases: DatabaseFactory, database_url: str) -> None:
    run_state_machine_as_test(
        lambda: ReadModelMachine(fresh_databases),
        settings=PG_SETTINGS if database_url.startswith("postgres") else READ_MODEL_SETTINGS,
    )

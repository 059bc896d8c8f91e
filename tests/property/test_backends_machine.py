"""The ledger state machine, shorter, on the real event stores: a SQLite file and PostgreSQL.

Each example gets a fresh, empty database (a new SQLite file, or a new database in the
session's throwaway PostgreSQL cluster), since hypothesis runs many examples inside one test
and the fixtures are function-scoped. On top of the in-memory machine's checks, a `restart`
rule replaces the application by a new one on the same database in the middle of a run, a
`switch_process` rule sends the following commands to a second, long-lived application on the
same database (both keep aggregate caches), and teardown rebuilds every invoice and payment in
a fresh application and compares them.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis.stateful import rule, run_state_machine_as_test

from adapters.bootstrap import bootstrap
from adapters.settings import Settings
from commands.application import BillingApplication
from tests.property.conftest import DatabaseFactory
from tests.property.machine import LedgerMachine

# The "integration" profile (few examples, no deadline) with shorter runs than in memory.
BACKEND_SETTINGS = settings(settings.get_profile("integration"), stateful_step_count=25)


class StoredLedgerMachine(LedgerMachine):
    def __init__(self, databases: DatabaseFactory) -> None:
        self.database = databases()
        self.database_url = self.database.__enter__()
        self.other_app: BillingApplication | None = None
        super().__init__()

    def make_app(self) -> BillingApplication:
        return bootstrap(Settings(database_url=self.database_url), clock=self.clock)

    @rule()
    def restart(self) -> None:
        """A new process on the same database: everything it reads back is what was stored."""
        self.app.close()
        self.app = self.make_app()
        self.dirty_invoices.update(self.invoice_models)
        self.dirty_payments.update(self.payment_models)

    @rule()
    def switch_process(self) -> None:
        """Two processes on one database, taking turns: each one's cached aggregates must catch
        up with what the other wrote (the application caches aggregates and fast-forwards them)."""
        if self.other_app is None:
            self.other_app = self.make_app()
        self.app, self.other_app = self.other_app, self.app
        self.dirty_invoices.update(self.invoice_models)
        self.dirty_payments.update(self.payment_models)

    def teardown(self) -> None:
        try:
            second = self.make_app()
            try:
                for invoice_id in self.invoice_models:
                    assert second.invoice(invoice_id) == self.app.invoice(invoice_id)
                for payment_id in self.payment_models:
                    assert second.payment(payment_id) == self.app.payment(payment_id)
            finally:
                second.close()
        finally:
            self.app.close()
            if self.other_app is not None:
                self.other_app.close()
            self.database.__exit__(None, None, None)


def test_invoices_and_payments_keep_their_invariants_on_each_backend(fresh_databases: DatabaseFactory) -> None:
    run_state_machine_as_test(lambda: StoredLedgerMachine(fresh_databases), settings=BACKEND_SETTINGS)

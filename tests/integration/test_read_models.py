"""Read models follow the log exactly once, and a rebuild from the log gives the same rows."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select

from adapters.bootstrap import bootstrap
from adapters.clock import ManualClock
from adapters.read_models import invoice_version_index, projection_runner, read_model_engine
from adapters.settings import Settings
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.accounting import posting_rule
from ledger.errors import InvalidInputError, StoreUnavailableError
from ledger.invoices import Invoice
from ledger.money import Money
from ledger.payments import Payment
from ledger.payouts import Payout
from projections.audit_chain import verify as verify_chain
from projections.queries import invoice_row, list_invoices, trial_balance
from projections.runner import REBUILD_GC_THRESHOLDS, ProjectionRunner
from projections.tables import audit_chain, invoice_status, invoice_versions, journal, tracking
from projections.tracked import Positioned, Projection

CUSTOMER = {"email": "ap@example.com", "name": "Example Ltd"}


def _scenario(app: BillingApplication, clock: ManualClock) -> list[Any]:
    ids = []
    for currency, amount in [("usd", 10_000), ("eur", 25_000), ("jpy", 5_000), ("usd", 7_000)]:
        invoice_id = app.create_draft(
            customer=CUSTOMER, currency=currency, lines=[NewLine("Work", 2, amount, "20")], due_date="2026-04-01"
        ).result
        app.issue(invoice_id)
        ids.append(invoice_id)
        clock.advance(timedelta(hours=1))
    paid = app.record_provider_payment_succeeded(
        provider="stripe", provider_payment_id="pi_1", invoice_id=ids[0], amount_captured=Money(24_000, "usd"), fee=726
    ).result
    app.record_refund(paid, refund_id="re_1", amount=4_000)
    app.record_offline_payment(ids[1], Money(10_000, "eur"), reference="SEPA 1")
    app.void(ids[2])
    app.mark_uncollectible(ids[3])
    app.record_provider_payment_failed(
        provider="stripe",
        provider_payment_id="pi_2",
        invoice_id=ids[1],
        attempt_id="ch_2",
        code="card_declined",
        message="Your card was declined.",
    )
    return ids


def _dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            "invoice_status": sorted(tuple(r) for r in conn.execute(select(invoice_status))),
            "journal": sorted(tuple(r) for r in conn.execute(select(journal))),
        }


def test_read_models_show_every_invoice_as_the_aggregates_do(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    ids = _scenario(app, clock)
    assert runner.catch_up() > 0
    for invoice_id in ids:
        invoice = app.invoice(invoice_id)
        row = invoice_row(engine, str(invoice_id))
        assert row is not None
        assert (row["status"], row["total"], row["amount_paid"], row["amount_refunded"], row["amount_due"]) == (
            invoice.status,
            invoice.total,
            invoice.amount_paid,
            invoice.amount_refunded,
            invoice.amount_due,
        )
        assert row["version"] == invoice.version
    declined = invoice_row(engine, str(ids[1]))
    assert declined is not None
    assert (declined["failed_attempts"], declined["last_failure_code"]) == (1, "card_declined")


def test_the_trial_balance_sums_to_zero_per_currency(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    _scenario(app, clock)
    runner.catch_up()
    rows = trial_balance(engine)
    assert {r.currency for r in rows} == {"usd", "eur", "jpy"}
    for currency in ("usd", "eur", "jpy"):
        assert sum(r.balance for r in rows if r.currency == currency) == 0
    usd = {r.account: r.balance for r in rows if r.currency == "usd"}
    assert usd["processor_fees"] == 726
    assert usd["refunds"] == 4_000


def test_payouts_post_from_the_processor_balance_to_the_bank_and_back_when_they_fail(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    _scenario(app, clock)
    runner.catch_up()
    before = {(r.currency, r.account): r.balance for r in trial_balance(engine)}
    assert app.record_payout(
        provider="stripe", provider_payout_id="po_1", amount=Money(10_000, "usd"), paid=True
    ).result
    assert app.record_payout(provider="stripe", provider_payout_id="po_2", amount=Money(3_000, "usd"), paid=True).result
    assert app.record_payout(
        provider="stripe", provider_payout_id="po_2", amount=Money(3_000, "usd"), paid=False
    ).result
    assert not app.record_payout(
        provider="stripe", provider_payout_id="po_1", amount=Money(10_000, "usd"), paid=True
    ).result
    runner.catch_up()
    after = {(r.currency, r.account): r.balance for r in trial_balance(engine)}
    assert after[("usd", "bank")] - before.get(("usd", "bank"), 0) == 10_000
    assert after[("usd", "processor_balance")] - before[("usd", "processor_balance")] == -10_000
    assert sum(balance for (currency, _), balance in after.items() if currency == "usd") == 0


def test_each_event_is_applied_once_however_often_the_runner_runs(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    _scenario(app, clock)
    runner.catch_up(batch_size=3)
    first = _dump(engine)
    assert runner.catch_up() == 0
    assert projection_runner(app, engine).catch_up() == 0  # a restarted runner resumes, it does not redo
    assert _dump(engine) == first
    assert set(runner.positions().values()) == {app.head()}


def test_a_rebuild_from_the_log_equals_the_incrementally_built_read_models(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    ids = _scenario(app, clock)
    runner.catch_up(batch_size=2)
    app.record_offline_payment(ids[1], Money(50_000, "eur"), reference="SEPA 2")  # pays it, and over
    runner.catch_up(batch_size=2)
    incremental = _dump(engine)
    seen: list[tuple[int, int]] = []
    runner.rebuild(progress=lambda done, head: seen.append((done, head)))
    assert _dump(engine) == incremental
    assert seen
    assert seen[-1][1] == app.head()


class _CrashAfterWriting:
    """A read model that dies after writing its rows, before the runner commits them."""

    def __init__(self, inner: Projection) -> None:
        self.inner = inner
        self.name = inner.name
        self.tables = inner.tables

    def prepare(self, batch: Sequence[Positioned]) -> None:
        self.inner.prepare(batch)

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        self.inner.process(conn, batch)
        raise RuntimeError("killed mid-batch")

    def reset(self) -> None:
        self.inner.reset()


def test_a_batch_that_dies_before_its_commit_leaves_no_trace_and_is_redone_whole(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    _scenario(app, clock)
    runner.catch_up()
    before = _dump(engine)
    ids = _scenario(app, clock)
    crashing = ProjectionRunner(engine, app, [_CrashAfterWriting(p) for p in runner.projections])
    with pytest.raises(RuntimeError):
        crashing.run_once()
    assert _dump(engine) == before
    with engine.connect() as conn:
        positions = dict(conn.execute(select(tracking.c.projection, tracking.c.position)).all())
    assert max(positions.values()) < app.head()
    runner.catch_up()
    assert invoice_row(engine, str(ids[0])) is not None
    incremental = _dump(engine)
    runner.rebuild()
    assert _dump(engine) == incremental


def test_invoices_are_listed_newest_first_filtered_and_paged(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    ids = _scenario(app, clock)
    runner.catch_up()
    page = list_invoices(engine, limit=3)
    assert [r["invoice_id"] for r in page.rows] == [str(i) for i in reversed(ids)][:3]
    assert page.next_cursor is not None
    rest = list_invoices(engine, limit=3, cursor=page.next_cursor)
    assert [r["invoice_id"] for r in rest.rows] == [str(ids[0])]
    assert rest.next_cursor is None
    assert [r["status"] for r in list_invoices(engine, status="void").rows] == ["void"]
    assert {r["currency"] for r in list_invoices(engine, currency="usd").rows} == {"usd"}
    with pytest.raises(InvalidInputError):
        list_invoices(engine, cursor="not-a-cursor")


class _Recording:
    """A read model with no rows: it keeps the positions of the events it was given."""

    tables: tuple[Any, ...] = ()

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[int] = []

    def prepare(self, batch: Sequence[Positioned]) -> None:
        return None

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        self.seen += [position for position, _ in batch]

    def reset(self) -> None:
        return None


def test_models_at_different_positions_each_move_past_their_own_batch_in_one_pass(
    app: BillingApplication, clock: ManualClock, engine: Engine
) -> None:
    """The pass moves positions with one UPDATE per new position (projections/runner.py): two
    models starting from different places end the pass at different ones, each past its batch."""
    _scenario(app, clock)
    ahead, behind = _Recording("test-ahead"), _Recording("test-behind")
    both = ProjectionRunner(engine, app, [ahead, behind])
    both.create_tables()
    ProjectionRunner(engine, app, [ahead]).run_once(batch_size=3)

    assert both.run_once(batch_size=2) == 4

    logged = [position for position, _ in app.events_after(0, 5)]
    assert ahead.seen == logged[:5]
    assert behind.seen == logged[:2]
    assert both.positions() == {"test-ahead": logged[4], "test-behind": logged[1]}
    assert both.catch_up() > 0
    assert set(both.positions().values()) == {app.head()}
    assert ahead.seen == behind.seen == [position for position, _ in app.events_after(0, 10_000)]


class _OfKinds(_Recording):
    """A recording model that names the event classes it reads; it keeps each list it was handed."""

    def __init__(self, name: str, kinds: tuple[type, ...]) -> None:
        super().__init__(name)
        self.kinds = kinds
        self.prepared: list[Sequence[Positioned]] = []
        self.handed: list[Sequence[Positioned]] = []

    def prepare(self, batch: Sequence[Positioned]) -> None:
        self.prepared.append(batch)

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        super().process(conn, batch)
        self.handed.append(batch)


def test_a_model_that_names_its_kinds_is_handed_only_those_events_in_log_order(
    app: BillingApplication, clock: ManualClock, engine: Engine
) -> None:
    """projections/runner.py `_Handed`: the batch split once per pass by event class; the
    positions still move past the whole batch; models of equal kinds share one list, the same
    one in `prepare` and `process` (the shared invoice fold recognises its batch by it)."""
    _scenario(app, clock)
    everything = _Recording("test-everything")
    invoices = _OfKinds("test-invoices", (Invoice.Event,))
    also_invoices = _OfKinds("test-invoices-too", (Invoice.Event,))
    money = _OfKinds("test-money", (Payment.Event, Invoice.PaymentApplied))
    nothing = _OfKinds("test-nothing", (Payout.Event,))
    runner = ProjectionRunner(engine, app, [everything, invoices, also_invoices, money, nothing])
    runner.create_tables()

    while runner.run_once(batch_size=4):
        pass

    logged = app.events_after(0, 10_000)
    assert everything.seen == [position for position, _ in logged]
    for model in (invoices, money, nothing):
        assert model.seen == [position for position, event in logged if isinstance(event, model.kinds)]
    assert any(isinstance(event, Payment.Event) for _, event in logged)  # money's kinds are two classes
    assert nothing.seen == []
    assert set(runner.positions().values()) == {app.head()}
    assert all(a is b for a, b in zip(invoices.handed, also_invoices.handed, strict=True))
    # The last pass found nothing: prepared, never processed.
    assert all(a is b for a, b in zip(invoices.prepared[:-1], invoices.handed, strict=True))
    assert invoices.prepared[-1] == []


class _Thresholds(_Recording):
    """A recording model that notes the garbage collector's thresholds at each batch, and can fail."""

    def __init__(self, name: str, fail: bool = False) -> None:
        super().__init__(name)
        self.fail = fail
        self.thresholds: list[tuple[int, int, int]] = []

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        self.thresholds.append(gc.get_threshold())
        if self.fail:
            raise RuntimeError("killed mid-rebuild")
        super().process(conn, batch)


def test_a_rebuild_replays_with_the_collector_s_rebuild_thresholds_and_puts_back_the_caller_s(
    app: BillingApplication, clock: ManualClock, engine: Engine
) -> None:
    """projections/runner.py REBUILD_GC_THRESHOLDS: set while the log is replayed, the caller's
    own thresholds back afterwards, whether the rebuild ends or fails."""
    _scenario(app, clock)
    before = gc.get_threshold()
    callers = (before[0] + 1, before[1], before[2])  # not the default: the caller's own are put back
    gc.set_threshold(*callers)
    try:
        model = _Thresholds("test-thresholds")
        runner = ProjectionRunner(engine, app, [model])
        runner.rebuild(batch_size=3)
        assert len(model.thresholds) > 1
        assert set(model.thresholds) == {REBUILD_GC_THRESHOLDS}
        assert gc.get_threshold() == callers

        failing = _Thresholds("test-thresholds-failing", fail=True)
        with pytest.raises(RuntimeError, match="killed mid-rebuild"):
            ProjectionRunner(engine, app, [failing]).rebuild()
        assert failing.thresholds == [REBUILD_GC_THRESHOLDS]
        assert gc.get_threshold() == callers
    finally:
        gc.set_threshold(*before)


def test_a_busy_log_makes_the_follower_pause_between_passes_never_longer_than_gather_seconds(
    app: BillingApplication, clock: ManualClock, engine: Engine
) -> None:
    """A command lands before every pass (the log never quiet): after its first two passes the
    follower pauses `gather_seconds` before each next one, never more, and still applies every
    event; it never waits for a wake-up while there is work."""
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("Work", 1, 1_000, "0")]).result
    model = _Recording("test-follower")
    runner = ProjectionRunner(engine, app, [model])
    runner.create_tables()
    passes: list[int] = []
    pauses: list[float] = []
    waits: list[float] = []

    def should_stop() -> bool:  # called once before each pass: a new command lands first
        if len(passes) == 6:
            return True
        passes.append(app.head())
        app.record_offline_payment(invoice_id, Money(1, "usd"), reference=f"ref {len(passes)}")
        return False

    app.issue(invoice_id)
    runner.follow(
        poll_seconds=5.0, should_stop=should_stop, wait=waits.append, gather_seconds=0.03, pause=pauses.append
    )

    assert waits == []
    assert pauses == [0.03] * 5  # no pause after the first pass: the one before it did not exist
    assert model.seen == [position for position, _ in app.events_after(0, 10_000)]


def test_the_first_event_after_a_quiet_spell_is_applied_without_a_pause(
    app: BillingApplication, clock: ManualClock, engine: Engine
) -> None:
    """Each command lands while the follower waits on a quiet log: the pass that applies it is
    not followed by a pause, so the next command's events are not held back by one either."""
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("Work", 1, 1_000, "0")]).result
    app.issue(invoice_id)
    model = _Recording("test-follower")
    runner = ProjectionRunner(engine, app, [model])
    runner.create_tables()
    runner.catch_up()
    pauses: list[float] = []
    waits: list[float] = []
    heads: list[int] = []  # the log's head as each command landed

    def wait(timeout: float) -> None:
        waits.append(timeout)
        heads.append(app.head())
        app.record_offline_payment(invoice_id, Money(1, "usd"), reference=f"ref {len(waits)}")

    runner.follow(
        poll_seconds=5.0, should_stop=lambda: len(waits) == 4, wait=wait, gather_seconds=0.03, pause=pauses.append
    )

    assert pauses == []
    assert waits == [5.0] * 4
    # Every command but the last (it landed in the wait that stopped the follower) was applied.
    assert model.seen == [position for position, _ in app.events_after(0, 10_000) if position <= heads[-1]]


class _Failing(_Recording):
    """A read model whose process fails with each error of `failures` in turn, then succeeds."""

    def __init__(self, name: str, failures: list[Exception]) -> None:
        super().__init__(name)
        self.failures = failures

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        super().process(conn, batch)


def test_a_follower_waits_out_an_unavailable_store_and_applies_the_events_after(
    app: BillingApplication, clock: ManualClock, engine: Engine
) -> None:
    """`ledger project --follow` beside a rebuild: on SQLite a pass can meet 'database schema has
    changed' (an index dropped or made under it), a StoreUnavailableError like a lock timeout.
    The follower does not die: it waits a poll and applies the same events on the next pass."""
    _scenario(app, clock)
    failures: list[Exception] = [StoreUnavailableError("database schema has changed")] * 2
    model = _Failing("test-follower", failures)  # two passes fail, one after the other
    runner = ProjectionRunner(engine, app, [model])
    runner.create_tables()
    waits: list[float] = []
    runner.follow(poll_seconds=5.0, should_stop=lambda: bool(model.seen), wait=waits.append, pause=lambda _: None)

    assert failures == []
    assert waits == [5.0, 5.0]  # a poll after each failed pass, none after the one that applied
    assert model.seen == [position for position, _ in app.events_after(0, 10_000)]


def test_a_follower_stops_on_an_error_that_is_not_the_store_being_unavailable(
    app: BillingApplication, clock: ManualClock, engine: Engine
) -> None:
    """A bug in a read model is not retried forever behind a log line: it stops the follower."""
    _scenario(app, clock)
    runner = ProjectionRunner(engine, app, [_Failing("test-follower", [ValueError("a bug")])])
    runner.create_tables()
    with pytest.raises(ValueError, match="a bug"):
        runner.follow(poll_seconds=5.0, wait=lambda _: None)


def test_the_read_models_follow_the_log_from_a_schema_of_their_own(
    database_url: str, clock: ManualClock, engine: Engine
) -> None:
    """A PostgreSQL URL may set a search_path (libpq's `options`) that leaves out the schema the
    library keeps its events in (it names its own, `public`): the read models, made in the
    search_path's schema, still read the log, and audit verify and invoice as of still read it."""
    if not database_url.startswith("postgres"):
        pytest.skip("a search_path is PostgreSQL's")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA read_models")
    url = f"{database_url}{'&' if '?' in database_url else '?'}options=-csearch_path%3Dread_models"
    app = bootstrap(Settings(database_url=url), clock=clock)
    own = read_model_engine(url)
    try:
        invoice_id = _scenario(app, clock)[0]
        runner = projection_runner(app, own)
        assert runner.catch_up() > 0
        row = invoice_row(own, str(invoice_id))
        assert row is not None
        assert row["version"] == app.invoice(invoice_id).version
        with own.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM read_models.invoice_status").scalar() == 4
        verdict = verify_chain(app, own)
        assert verdict.ok, verdict
        assert verdict.count == app.head()
        # invoice_as_of's locating statement reads the events table beside the read models.
        app.use_version_index(invoice_version_index(app, own))
        assert app.invoice_as_of(invoice_id, clock.now()).version == app.invoice(invoice_id).version
    finally:
        own.dispose()
        app.close()


def test_rows_written_by_copy_roll_back_with_the_pass(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    """On PostgreSQL append-only rows (the journal, the invoice versions, the audit chain) go by
    COPY on the pass's own connection: a model failing after them takes them back with every
    position, as the INSERTs of the other models."""
    _scenario(app, clock)
    *written, last = runner.projections
    failing = ProjectionRunner(engine, runner.log, [*written, _CrashAfterWriting(last)])
    with pytest.raises(RuntimeError, match="killed mid-batch"):
        failing.run_once()
    tables = [journal, invoice_versions, audit_chain, invoice_status]
    with engine.connect() as conn:
        assert {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in tables
        } == dict.fromkeys((t.name for t in tables), 0)
        assert set(conn.execute(select(tracking.c.position)).scalars()) <= {0}
    assert runner.catch_up() > 0
    with engine.connect() as conn:
        assert all(conn.execute(select(func.count()).select_from(t)).scalar_one() > 0 for t in tables)


def test_each_journal_row_holds_its_event_s_posting_column_by_column(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    """The journal writes its rows as tuples in the table's column order (projections/bulk.py
    `insert_tuples`): every column holds what the event and its rule say, read back by name."""
    ids = _scenario(app, clock)
    app.record_payout(provider="stripe", provider_payout_id="po_1", amount=Money(5_000, "usd"), paid=True)
    runner.catch_up()
    events = dict(app.events_after(0, 10_000))
    with engine.connect() as conn:
        rows = [
            dict(row) for row in conn.execute(select(journal).order_by(journal.c.position, journal.c.line)).mappings()
        ]
    assert {row["payout_id"] for row in rows} - {None}  # the payout's postings are among them
    for row in rows:
        event = events[row["position"]]
        rule = posting_rule(event)
        assert rule is not None
        source = str(event.originator_id)
        currency = app.invoice(event.originator_id).currency if isinstance(event, Invoice.Event) else event.currency
        posting = rule.post(event, currency)[row["line"]]
        assert (row["invoice_id"], row["payout_id"]) == (
            (source, None) if isinstance(event, Invoice.Event) else (None, source)
        )
        assert row["invoice_id"] in {str(i) for i in ids} | {None}
        assert row["event_topic"] == type(event).TOPIC
        assert row["event_version"] == event.originator_version
        assert row["occurred_at"].replace(tzinfo=None) == event.timestamp.replace(tzinfo=None)
        assert (row["account"], row["currency"], row["debit"], row["credit"]) == (
            posting.account,
            posting.currency,
            posting.debit,
            posting.credit,
        )
        assert row["rule_revision"] == rule.revision

"""A hypothesis state machine over invoices and payments, driven through BillingApplication.

The machine keeps an oracle model: per invoice its lines (priced independently, see oracle.py),
status and write-off; per payment what was captured, refunded (by refund id) and disputed (by
dispute id). Every rule predicts the outcome of its command from the model: the error it must
raise, or the change it must make. A refused command (a LedgerError) must store nothing.

After every step the invariants compare the application with the model, replay every changed
invoice from the stored events (the notification log, folded with `event.mutate`) and compare it
with what the repository and `invoice_as_of(now)` return, and post every new Invoice event
through `ledger.accounting.postings_for`: per invoice the balance of each account is what the
model expects, and over the whole ledger every currency sums to zero.

`LedgerMachine` runs on the in-memory store; tests/property/test_backends_machine.py runs a
subclass on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from adapters.clock import ManualClock
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger import accounting
from ledger.errors import (
    CurrencyMismatchError,
    DisputeExceedsCapturedError,
    DuplicateDisputeError,
    DuplicateRefundError,
    EmptyInvoiceError,
    IdempotencyKeyReusedError,
    InvalidAmountError,
    InvalidInputError,
    InvoiceDeletedError,
    InvoiceHasPaymentsError,
    InvoiceNotEditableError,
    InvoiceNotFoundError,
    InvoiceNotOpenError,
    InvoiceNotPayableError,
    LedgerError,
    LineNotFoundError,
    NegativeTotalError,
    PaymentNotFoundError,
    PaymentStateError,
    RefundExceedsCapturedError,
    UnknownDisputeError,
)
from ledger.invoices import DELETED, DRAFT, OPEN, PAID, UNCOLLECTIBLE, VOID, Invoice
from ledger.money import Money
from ledger.payments import FAILED, OFFLINE, PENDING, SUCCEEDED, Payment, payment_id_for
from tests.property.oracle import expected_line

T = TypeVar("T")

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CURRENCIES = ("usd", "jpy", "kwd", "eur")
SERIES = ("INV", "CRD")
PROVIDER = "stripe"
CUSTOMER = {"email": "ap@example.com", "name": "Example Ltd"}
PROVIDER_PAYMENT_IDS = tuple(f"pi_{n}" for n in range(6))

# ------------------------------------------------------------------------------ strategies


def plain(number: Decimal) -> str:
    """Decimal text as callers write it: '2.5', never '25E-1' (refused: plain decimals only)."""
    return format(number, "f")


quantities = st.one_of(
    st.integers(1, 40),
    st.decimals(min_value="0.001", max_value="40", places=3, allow_nan=False, allow_infinity=False).map(plain),
    st.sampled_from(["0.5", "2.5", "1.005", "0.125", "3.333", "2.50"]),
)
unit_amounts = st.one_of(
    st.integers(1, 20_000),
    st.integers(1, 20_000),
    st.sampled_from([1, 3, 5, 333, 999, 1_000]),
    st.integers(-5_000, -1),  # credit lines
)
tax_rates = st.one_of(
    st.none(),
    st.sampled_from(["0", "5", "7.25", "19.6", "20", "12.5"]),
    st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False).map(plain),
)
new_lines = st.builds(
    NewLine,
    description=st.sampled_from(["Consulting", "Licence", "Credit", "Support"]),
    quantity=quantities,
    unit_amount=unit_amounts,
    tax_rate=tax_rates,
)
BAD_QUANTITIES = [0, -1, "0", "-2.5", "abc", "NaN", "1E+1", " 2 ", "٣"]  # padding and other digits too
invalid_lines = st.one_of(
    st.builds(NewLine, description=st.just("x"), quantity=st.sampled_from(BAD_QUANTITIES),
              unit_amount=st.just(100)),
    st.builds(NewLine, description=st.just("x"), quantity=st.just(1.5), unit_amount=st.just(100)),  # a float
    st.builds(NewLine, description=st.just("x"), quantity=st.just(1), unit_amount=st.just(100),
              tax_rate=st.sampled_from(["-1", "100.5", "abc", "1.00001"])),
    st.builds(NewLine, description=st.just(""), quantity=st.just(1), unit_amount=st.just(100)),
)  # fmt: skip
# Invalid amounts and fees are rare (and not at the ends, which hypothesis favours): most
# commands should get far enough to change something.
AMOUNT_MODES = ("all", "part", "all", "over", "raw", "part", "zero", "all", "one", "negative", "raw", "all", "part")
amount_modes = st.sampled_from(AMOUNT_MODES)
raw_amounts = st.integers(1, 30_000)
fee_modes = st.sampled_from(["none", "stripe", "stripe", "all", "stripe", "too-much", "stripe", "none"])
rarely = st.sampled_from([False, False, False, True, False, False])
mostly = st.sampled_from([True, True, True, False, True, True])
small_ids = st.integers(0, 2)


def pick_amount(mode: str, reference: int, raw: int) -> int:
    """An amount relative to what is due or refundable: all of it, part, more, 1, arbitrary, or invalid."""
    return {
        "all": reference or raw,  # nothing due or left: an arbitrary amount instead
        "part": max(1, reference // 3),
        "over": reference + 1 + raw % 500,
        "one": 1,
        "raw": raw,
        "zero": 0,
        "negative": -1 - raw % 100,
    }[mode]


def pick_fee(mode: str, amount: int) -> int:
    return {
        "none": 0,
        "stripe": max(0, amount) * 29 // 1_000 + 30,  # can exceed a tiny payment: refused
        "all": max(0, amount),
        "too-much": max(0, amount) + 1,
    }[mode]


# ------------------------------------------------------------------------------ oracle model


@dataclass
class PaymentModel:
    payment_id: UUID
    invoice_id: UUID
    provider: str
    currency: str
    status: str
    captured: int = 0
    fee: int = 0
    refunds: dict[str, int] = field(default_factory=dict)
    disputes: dict[str, list[Any]] = field(default_factory=dict)  # id -> [amount, status]
    failed_attempts: list[str] = field(default_factory=list)

    @property
    def cash_account(self) -> str:
        return accounting.BANK if self.provider == OFFLINE else accounting.PROCESSOR_BALANCE

    @property
    def refunded(self) -> int:
        return sum(self.refunds.values())

    @property
    def held(self) -> int:
        """Open and lost disputes: money the processor took back."""
        return sum(amount for amount, status in self.disputes.values() if status in ("open", "lost"))

    @property
    def refundable(self) -> int:
        return self.captured - self.refunded - self.held


@dataclass
class InvoiceModel:
    invoice_id: UUID
    currency: str
    series: str
    status: str = DRAFT
    lines: dict[str, tuple[int, int]] = field(default_factory=dict)  # line id -> (amount, tax)
    frozen: tuple[int, int] | None = None
    number: str | None = None
    applied: list[UUID] = field(default_factory=list)  # succeeded payments, in order
    written_off: int = 0
    recovered: int = 0
    credit_refunded: int = 0
    ever_paid: bool = False

    @property
    def subtotal(self) -> int:
        return self.frozen[0] if self.frozen else sum(amount for amount, _ in self.lines.values())

    @property
    def tax(self) -> int:
        return self.frozen[1] if self.frozen else sum(tax for _, tax in self.lines.values())

    @property
    def total(self) -> int:
        return self.subtotal + self.tax


@dataclass
class KeyedCall:
    command: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any


NO_STORE = "no-store"  # a predicted no-op: the command succeeds and stores nothing
Expected = type[LedgerError] | tuple[type[LedgerError], ...] | str | None


class LedgerMachine(RuleBasedStateMachine):
    invoices = Bundle("invoices")
    payments = Bundle("payments")  # every payment: offline, pending, failed, succeeded
    charges = Bundle("charges")  # provider payments that succeeded: what disputes are about

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(START)
        self.app = self.make_app()
        self.invoice_models: dict[UUID, InvoiceModel] = {}
        self.payment_models: dict[UUID, PaymentModel] = {}
        self.series_last: dict[str, int] = defaultdict(int)
        self.keyed: list[KeyedCall] = []
        self.key_counter = 0
        # What the invariants have seen of the log: the last notification id, each invoice
        # folded from its events, its postings, and (moment, version) for the audit rule.
        self.seen = 0
        self.folded: dict[UUID, Invoice] = {}
        self.postings: dict[UUID, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
        self.history: dict[UUID, list[tuple[datetime, int]]] = defaultdict(list)
        self.dirty_invoices: set[UUID] = set()
        self.dirty_payments: set[UUID] = set()

    def make_app(self) -> BillingApplication:
        return BillingApplication(clock=self.clock, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})

    def teardown(self) -> None:
        self.app.close()

    # -------------------------------------------------------------------------- helpers

    def event_count(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def attempt(self, expected: Expected, call: Callable[[], T]) -> tuple[bool, T | None]:
        """Run a command whose outcome the model predicted.

        `expected` is the error it must raise (or a tuple of errors, when several apply and the
        order of the checks is the code's business), NO_STORE for a success that stores nothing
        (a duplicate), or None for a success that stores events.
        """
        before = self.event_count()
        refusal: LedgerError | None = None
        try:
            result: T | None = call()
        except LedgerError as error:
            refusal, result = error, None
        after = self.event_count()
        if refusal is not None:
            assert after == before, f"refused with {refusal!r}, yet events were stored"
            assert isinstance(expected, type | tuple), f"the model expected success, the ledger refused: {refusal!r}"
            assert isinstance(refusal, expected), f"expected {expected}, got {refusal!r}"
            return False, None
        assert not isinstance(expected, type | tuple), f"expected {expected}, but it succeeded with {result!r}"
        if expected == NO_STORE:
            assert after == before, "a duplicate stored events"
        else:
            assert after > before, "a command that changed something stored nothing"
        return True, result

    def new_key(self) -> str:
        self.key_counter += 1
        return f"key-{self.key_counter}"

    def remember(self, command: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        if kwargs.get("idempotency_key") is not None:
            self.keyed.append(KeyedCall(command, args, kwargs, result))

    def amount_paid(self, model: InvoiceModel) -> int:
        return sum(self.payment_models[p].captured for p in model.applied)

    def amount_due(self, model: InvoiceModel) -> int:
        if model.status in (PAID, VOID, DELETED):
            return 0
        return max(0, model.total - self.amount_paid(model))

    def payments_of(self, model: InvoiceModel) -> list[PaymentModel]:
        return [self.payment_models[p] for p in model.applied]

    def other_currency(self, currency: str) -> str:
        return CURRENCIES[(CURRENCIES.index(currency) + 1) % len(CURRENCIES)]

    def apply_payment_to_model(self, model: InvoiceModel, payment: PaymentModel) -> None:
        """Mirror of Invoice.apply_payment: gross paid, write-off recovered, paid once covered."""
        payment.status = SUCCEEDED
        model.recovered += min(payment.captured, model.written_off - model.recovered)
        model.applied.append(payment.payment_id)
        if model.status != PAID and self.amount_paid(model) >= model.total:
            model.status = PAID
            model.ever_paid = True

    def refund_from_credit(self, model: InvoiceModel, amount: int) -> None:
        overpaid = max(0, self.amount_paid(model) - model.total)
        model.credit_refunded += min(amount, overpaid - model.credit_refunded)

    def payment_errors(self, model: InvoiceModel, amount: int, fee: int, currency: str) -> Expected:
        """Every reason to refuse a payment; any one of them is an acceptable answer."""
        errors: list[type[LedgerError]] = []
        if amount <= 0 or fee > amount:
            errors.append(InvalidAmountError)
        if model.status not in (OPEN, UNCOLLECTIBLE, PAID):
            errors.append(InvoiceNotPayableError)
        if currency != model.currency:
            errors.append(CurrencyMismatchError)
        return tuple(errors) or None

    def touch(self, *ids: UUID) -> None:
        for some_id in ids:
            if some_id in self.invoice_models:
                self.dirty_invoices.add(some_id)
            if some_id in self.payment_models:
                self.dirty_payments.add(some_id)

    # -------------------------------------------------------------------------- drafts

    @rule(
        target=invoices,
        currency=st.sampled_from(CURRENCIES),
        lines=st.lists(new_lines, max_size=3),
        series=st.sampled_from(SERIES),
        keyed=st.booleans(),
        broken=st.one_of(st.none(), st.none(), st.none(), invalid_lines, st.sampled_from(["usdx", "USD", ""])),
    )
    def create_draft(
        self, currency: str, lines: list[NewLine], series: str, keyed: bool, broken: NewLine | str | None
    ) -> object:
        if broken is not None:  # bad input: refused, nothing stored, the key stays free
            bad_lines = [*lines, broken] if isinstance(broken, NewLine) else lines
            bad_currency = broken if isinstance(broken, str) else currency
            key = self.new_key() if keyed else None
            self.attempt(
                InvalidInputError,
                lambda: (
                    self.app.create_draft(
                        customer=CUSTOMER, currency=bad_currency, lines=bad_lines, idempotency_key=key
                    ).result
                ),
            )
            return multiple()
        kwargs: dict[str, Any] = {
            "customer": CUSTOMER,
            "currency": currency,
            "lines": lines,
            "series": series,
            "idempotency_key": self.new_key() if keyed else None,
        }
        ok, invoice_id = self.attempt(None, lambda: self.app.create_draft(**kwargs).result)
        assert ok
        assert invoice_id is not None
        self.remember("create_draft", (), kwargs, invoice_id)
        model = InvoiceModel(invoice_id=invoice_id, currency=currency, series=series)
        stored = self.app.invoice(invoice_id)
        assert len(stored.lines) == len(lines)
        for line, line_id in zip(lines, stored.lines, strict=True):
            model.lines[line_id] = expected_line(line.quantity, line.unit_amount, line.tax_rate)
        self.invoice_models[invoice_id] = model
        self.touch(invoice_id)
        return invoice_id

    @initialize(
        target=invoices,
        currency=st.sampled_from(CURRENCIES),
        lines=st.lists(
            new_lines.filter(lambda line: isinstance(line.unit_amount, int) and line.unit_amount > 0),
            min_size=1,
            max_size=3,
        ),
    )
    def start_with_an_issued_invoice(self, currency: str, lines: list[NewLine]) -> object:
        """Most sequences need an open invoice to pay: start with one."""
        invoice_id = self.create_draft(currency, lines, "INV", keyed=False, broken=None)
        assert isinstance(invoice_id, UUID)
        self.issue(invoice_id, keyed=False)
        return invoice_id

    @rule(
        invoice=invoices,
        action=st.sampled_from(["add_line", "add_line", "change_line", "remove_line"]),
        index=st.integers(0, 4),
        line=new_lines,
        keyed=st.booleans(),
    )
    def edit_line(self, invoice: UUID, action: str, index: int, line: NewLine, keyed: bool) -> None:
        """Add, change or remove a line: drafts only; a missing line is refused."""
        model = self.invoice_models[invoice]
        line_ids = list(model.lines)
        line_id = line_ids[index] if index < len(line_ids) else "no-such-line"
        expected: Expected = None
        if model.status == DELETED:  # gone, as a read of it says
            expected = InvoiceDeletedError
        elif model.status != DRAFT:
            expected = InvoiceNotEditableError
        elif action != "add_line" and line_id not in model.lines:
            expected = LineNotFoundError
        args: tuple[Any, ...] = {
            "add_line": (invoice, line),
            "change_line": (invoice, line_id, line),
            "remove_line": (invoice, line_id),
        }[action]
        kwargs: dict[str, Any] = {"idempotency_key": self.new_key() if keyed else None}
        ok, result = self.attempt(expected, lambda: getattr(self.app, action)(*args, **kwargs).result)
        self.touch(invoice)
        if not ok:
            return
        self.remember(action, args, kwargs, result)
        if action == "remove_line":
            del model.lines[line_id]
            return
        if action == "add_line":
            assert isinstance(result, str)
            line_id = result
        model.lines[line_id] = expected_line(line.quantity, line.unit_amount, line.tax_rate)

    @rule(invoice=invoices, keyed=st.booleans())
    def delete_draft(self, invoice: UUID, keyed: bool) -> None:
        model = self.invoice_models[invoice]
        expected = {DRAFT: None, DELETED: InvoiceDeletedError}.get(model.status, InvoiceNotEditableError)
        kwargs: dict[str, Any] = {"idempotency_key": self.new_key() if keyed else None}
        ok, result = self.attempt(expected, lambda: self.app.delete_draft(invoice, **kwargs).result)
        if ok:
            self.remember("delete_draft", (invoice,), kwargs, result)
            model.status = DELETED
        self.touch(invoice)

    # -------------------------------------------------------------------------- lifecycle

    @rule(invoice=invoices, keyed=st.booleans())
    def issue(self, invoice: UUID, keyed: bool) -> None:
        model = self.invoice_models[invoice]
        expected: Expected = None
        if model.status == DELETED:
            expected = InvoiceDeletedError
        elif model.status != DRAFT:
            expected = InvoiceNotEditableError
        elif not model.lines:
            expected = EmptyInvoiceError
        elif model.total < 0:
            expected = NegativeTotalError
        kwargs: dict[str, Any] = {"idempotency_key": self.new_key() if keyed else None}
        ok, number = self.attempt(expected, lambda: self.app.issue(invoice, **kwargs).result)
        if ok:
            self.series_last[model.series] += 1
            assert number == f"{model.series}-{self.series_last[model.series]:06d}", "numbers must be gap-free"
            self.remember("issue", (invoice,), kwargs, number)
            model.number = number
            model.frozen = (model.subtotal, model.tax)
            model.status = OPEN
            if model.total == 0:  # nothing to collect: paid at once, as Stripe does
                model.status = PAID
                model.ever_paid = True
        self.touch(invoice)

    @rule(invoice=invoices, keyed=st.booleans())
    def void(self, invoice: UUID, keyed: bool) -> None:
        model = self.invoice_models[invoice]
        expected: Expected = None
        if model.status == DELETED:
            expected = InvoiceDeletedError
        elif model.status not in (OPEN, UNCOLLECTIBLE):
            expected = InvoiceNotOpenError
        elif self.amount_paid(model):
            expected = InvoiceHasPaymentsError
        kwargs: dict[str, Any] = {"idempotency_key": self.new_key() if keyed else None}
        ok, result = self.attempt(expected, lambda: self.app.void(invoice, **kwargs).result)
        if ok:
            self.remember("void", (invoice,), kwargs, result)
            model.status = VOID
        self.touch(invoice)

    @rule(invoice=invoices, keyed=st.booleans())
    def mark_uncollectible(self, invoice: UUID, keyed: bool) -> None:
        model = self.invoice_models[invoice]
        expected = {OPEN: None, DELETED: InvoiceDeletedError}.get(model.status, InvoiceNotOpenError)
        kwargs: dict[str, Any] = {"idempotency_key": self.new_key() if keyed else None}
        due = self.amount_due(model)
        ok, result = self.attempt(expected, lambda: self.app.mark_uncollectible(invoice, **kwargs).result)
        if ok:
            self.remember("mark_uncollectible", (invoice,), kwargs, result)
            model.written_off += due
            model.status = UNCOLLECTIBLE
        self.touch(invoice)

    @rule(seconds=st.integers(1, 40 * 24 * 3600))
    def advance_clock(self, seconds: int) -> None:
        self.clock.advance(timedelta(seconds=seconds))

    # -------------------------------------------------------------------------- payments

    @rule(
        target=payments,
        invoice=invoices,
        mode=amount_modes,
        raw=raw_amounts,
        wrong_currency=rarely,
        keyed=st.booleans(),
    )
    def record_offline_payment(self, invoice: UUID, mode: str, raw: int, wrong_currency: bool, keyed: bool) -> object:
        model = self.invoice_models[invoice]
        amount = pick_amount(mode, self.amount_due(model), raw)
        currency = self.other_currency(model.currency) if wrong_currency else model.currency
        money = Money(amount, currency)
        # A deleted draft is gone for every command (404) before anything else is looked at.
        expected = InvoiceDeletedError if model.status == DELETED else self.payment_errors(model, amount, 0, currency)
        # A reference of its own: the same reference again is the same payment (tested on its own).
        reference = f"wire {self.new_key()}"
        kwargs: dict[str, Any] = {"reference": reference, "idempotency_key": self.new_key() if keyed else None}
        ok, payment_id = self.attempt(
            expected, lambda: self.app.record_offline_payment(invoice, money, **kwargs).result
        )
        self.touch(invoice)
        if not ok:
            return multiple()
        assert payment_id is not None
        self.remember("record_offline_payment", (invoice, money), kwargs, payment_id)
        payment = PaymentModel(payment_id, invoice, OFFLINE, currency, SUCCEEDED, captured=amount)
        self.payment_models[payment_id] = payment
        self.apply_payment_to_model(model, payment)
        self.touch(payment_id)
        return payment_id

    @rule(
        target=payments,
        invoice=invoices,
        provider_payment_id=st.sampled_from(PROVIDER_PAYMENT_IDS),
        give_amount=st.booleans(),
        mode=amount_modes,
        raw=raw_amounts,
        wrong_currency=rarely,
    )
    def initiate_provider_payment(
        self, invoice: UUID, provider_payment_id: str, give_amount: bool, mode: str, raw: int, wrong_currency: bool
    ) -> object:
        payment_id = payment_id_for(PROVIDER, provider_payment_id)
        model = self.invoice_models[invoice]
        currency = self.other_currency(model.currency) if wrong_currency else model.currency
        money = Money(pick_amount(mode, self.amount_due(model), raw), currency) if give_amount else None
        initial = money if money is not None else Money(self.amount_due(model), model.currency)
        expected: Expected = None
        if payment_id in self.payment_models:
            expected = NO_STORE
        else:  # every error that applies is acceptable: which check comes first is the code's business
            errors = [InvalidAmountError] if initial.amount <= 0 else []
            errors += [CurrencyMismatchError] if initial.currency != model.currency else []
            # Nothing to collect on a draft, deleted, void or paid invoice.
            errors += [InvoiceNotPayableError] if model.status not in (OPEN, UNCOLLECTIBLE) else []
            expected = tuple(errors) or None
        ok, result = self.attempt(
            expected,
            lambda: (
                self.app.initiate_provider_payment(
                    invoice, provider=PROVIDER, provider_payment_id=provider_payment_id, amount=money
                ).result
            ),
        )
        if not ok:
            return multiple()
        assert result == payment_id
        if expected == NO_STORE:
            return multiple()
        self.payment_models[payment_id] = PaymentModel(payment_id, invoice, PROVIDER, initial.currency, PENDING)
        self.touch(payment_id, invoice)
        return payment_id

    @rule(
        targets=(payments, charges),
        invoice=invoices,
        provider_payment_id=st.sampled_from(PROVIDER_PAYMENT_IDS),
        mode=amount_modes,
        raw=raw_amounts,
        fee_mode=fee_modes,
        wrong_currency=rarely,
        with_invoice=mostly,
    )
    def provider_payment_succeeded(
        self,
        invoice: UUID,
        provider_payment_id: str,
        mode: str,
        raw: int,
        fee_mode: str,
        wrong_currency: bool,
        with_invoice: bool,
    ) -> object:
        """payment_intent.succeeded / charge.succeeded, possibly again and again for one payment."""
        payment_id = payment_id_for(PROVIDER, provider_payment_id)
        existing = self.payment_models.get(payment_id)
        target = existing.invoice_id if existing else invoice
        model = self.invoice_models[target]
        currency = self.other_currency(model.currency) if wrong_currency else model.currency
        amount = pick_amount(mode, self.amount_due(model), raw)
        fee = pick_fee(fee_mode, amount)
        expected: Expected = None
        if existing is None and not with_invoice:
            expected = PaymentNotFoundError
        elif existing is not None and existing.status == SUCCEEDED:
            expected = NO_STORE  # a duplicate report
        else:
            expected = self.payment_errors(model, amount, fee, currency)
        paid_before = self.app.invoice(target).amount_paid
        self.touch(target, payment_id)
        ok, result = self.attempt(
            expected,
            lambda: (
                self.app.record_provider_payment_succeeded(
                    provider=PROVIDER,
                    provider_payment_id=provider_payment_id,
                    amount_captured=Money(amount, currency),
                    fee=fee,
                    charge_id=f"ch_{provider_payment_id}",
                    invoice_id=invoice if with_invoice else None,
                ).result
            ),
        )
        if not ok:
            return multiple()
        assert result == payment_id
        if expected == NO_STORE:
            assert self.app.invoice(target).amount_paid == paid_before, "a duplicate report changed amount_paid"
            return multiple()
        payment = existing or PaymentModel(payment_id, target, PROVIDER, currency, PENDING)
        payment.captured, payment.fee = amount, fee
        self.payment_models[payment_id] = payment
        self.apply_payment_to_model(model, payment)
        self.touch(payment_id)
        return payment_id

    @rule(
        target=payments,
        invoice=invoices,
        provider_payment_id=st.sampled_from(PROVIDER_PAYMENT_IDS),
        attempt=small_ids,
        give_amount=st.booleans(),
        raw=raw_amounts,
        wrong_currency=rarely,
        with_invoice=mostly,
    )
    def provider_payment_failed(
        self,
        invoice: UUID,
        provider_payment_id: str,
        attempt: int,
        give_amount: bool,
        raw: int,
        wrong_currency: bool,
        with_invoice: bool,
    ) -> object:
        """payment_intent.payment_failed: before a success (recorded), again (ignored), or stale (ignored)."""
        payment_id = payment_id_for(PROVIDER, provider_payment_id)
        attempt_id = f"ch_{provider_payment_id}_{attempt}"
        existing = self.payment_models.get(payment_id)
        target = existing.invoice_id if existing else invoice
        model = self.invoice_models[target]
        given = invoice if with_invoice else None
        currency = self.other_currency(model.currency) if wrong_currency else model.currency
        money = Money(raw, currency) if give_amount else None
        initial = money if money is not None else Money(self.amount_due(model), model.currency)
        expected: Expected = None
        if existing is None and given is None:
            expected = PaymentNotFoundError
        elif existing is not None and (existing.status == SUCCEEDED or attempt_id in existing.failed_attempts):
            expected = NO_STORE  # a redelivery, or stale: the success stands
        else:  # a new payment must be valid and in the invoice's currency; the invoice must be issued
            errors = [InvalidAmountError] if existing is None and initial.amount <= 0 else []
            errors += [CurrencyMismatchError] if existing is None and initial.currency != model.currency else []
            errors += [InvoiceNotPayableError] if model.status in (DRAFT, DELETED) else []
            expected = tuple(errors) or None
        ok, recorded = self.attempt(
            expected,
            lambda: (
                self.app.record_provider_payment_failed(
                    provider=PROVIDER,
                    provider_payment_id=provider_payment_id,
                    attempt_id=attempt_id,
                    code="card_declined",
                    message="Your card was declined.",
                    invoice_id=given,
                    amount=money,
                ).result
            ),
        )
        self.touch(target, payment_id)
        if not ok:
            return multiple()
        assert recorded is (expected != NO_STORE)
        if expected == NO_STORE:
            assert existing is not None
            assert self.app.provider_payment(PROVIDER, provider_payment_id).status == existing.status
            return multiple()
        payment = existing or PaymentModel(payment_id, target, PROVIDER, initial.currency, PENDING)
        payment.status = FAILED
        payment.failed_attempts.append(attempt_id)
        self.payment_models[payment_id] = payment
        self.touch(payment_id)
        return payment_id if existing is None else multiple()

    # -------------------------------------------------------------------------- refunds, disputes

    def provider_object_id(self, prefix: str, payment: PaymentModel, n: int, shared: bool) -> str:
        """A refund or dispute id: the payment's own, or (rarely) one also reported for another
        payment of the same invoice, as a confused integration or a replayed webhook might."""
        owner = payment.invoice_id if shared else payment.payment_id
        return f"{prefix}_{owner.hex[:8]}_{n}"

    def used_elsewhere_on_invoice(self, payment: PaymentModel, object_id: str, kind: str) -> bool:
        return any(
            object_id in getattr(other, kind)
            for other in self.payment_models.values()
            if other.invoice_id == payment.invoice_id and other is not payment
        )

    @rule(payment=payments, refund=small_ids, shared=rarely, mode=amount_modes, raw=raw_amounts)
    def record_refund(self, payment: UUID, refund: int, shared: bool, mode: str, raw: int) -> None:
        """A refund, partial or full, possibly reported again with the same refund id."""
        pm = self.payment_models[payment]
        model = self.invoice_models[pm.invoice_id]
        refund_id = self.provider_object_id("re", pm, refund, shared)
        amount = pick_amount(mode, pm.refundable, raw)
        expected: Expected = None
        if refund_id in pm.refunds:
            expected = NO_STORE  # the same refund reported again
        else:
            errors: list[type[LedgerError]] = []
            errors += [PaymentStateError] if pm.status != SUCCEEDED else []
            errors += [InvalidAmountError] if amount <= 0 else []
            errors += [RefundExceedsCapturedError] if amount > pm.refundable else []
            errors += [CurrencyMismatchError] if pm.currency != model.currency else []
            errors += [DuplicateRefundError] if self.used_elsewhere_on_invoice(pm, refund_id, "refunds") else []
            expected = tuple(errors) or None
        refunded_before = self.app.invoice(pm.invoice_id).amount_refunded
        ok, recorded = self.attempt(
            expected, lambda: self.app.record_refund(payment, refund_id=refund_id, amount=amount).result
        )
        self.touch(payment, pm.invoice_id)
        if not ok:
            return
        assert recorded is (expected != NO_STORE)
        if expected == NO_STORE:
            assert self.app.invoice(pm.invoice_id).amount_refunded == refunded_before
            return
        self.refund_from_credit(model, amount)
        pm.refunds[refund_id] = amount

    @rule(
        payment=st.one_of(charges, charges, payments),
        dispute=small_ids,
        shared=st.booleans(),
        mode=amount_modes,
        raw=raw_amounts,
    )
    def record_dispute_opened(self, payment: UUID, dispute: int, shared: bool, mode: str, raw: int) -> None:
        pm = self.payment_models[payment]
        model = self.invoice_models[pm.invoice_id]
        dispute_id = self.provider_object_id("dp", pm, dispute, shared)
        amount = pick_amount(mode, pm.refundable, raw)
        expected: Expected = None
        if dispute_id in pm.disputes:
            expected = NO_STORE  # the same dispute reported again
        else:
            errors: list[type[LedgerError]] = []
            # A bank transfer has no chargeback.
            errors += [PaymentStateError] if pm.status != SUCCEEDED or pm.provider == OFFLINE else []
            errors += [InvalidAmountError] if amount <= 0 else []
            errors += [DisputeExceedsCapturedError] if amount > pm.refundable else []
            errors += [CurrencyMismatchError] if pm.currency != model.currency else []
            # One dispute id, one dispute: as with refunds, the id of another payment's dispute
            # on this invoice is refused (the invoice keys its disputes by id).
            errors += [DuplicateDisputeError] if self.used_elsewhere_on_invoice(pm, dispute_id, "disputes") else []
            expected = tuple(errors) or None
        ok, recorded = self.attempt(
            expected,
            lambda: (
                self.app.record_dispute_opened(
                    payment, dispute_id=dispute_id, amount=amount, reason="fraudulent"
                ).result
            ),
        )
        self.touch(payment, pm.invoice_id)
        if ok:
            assert recorded is (expected != NO_STORE)
            if expected != NO_STORE:
                pm.disputes[dispute_id] = [amount, "open"]

    @rule(payment=st.one_of(charges, charges, payments), dispute=small_ids, shared=st.booleans(), won=st.booleans())
    def record_dispute_closed(self, payment: UUID, dispute: int, shared: bool, won: bool) -> None:
        pm = self.payment_models[payment]
        dispute_id = self.provider_object_id("dp", pm, dispute, shared)
        known = pm.disputes.get(dispute_id)
        expected: Expected = None
        if known is None:
            expected = UnknownDisputeError
        elif known[1] != "open":
            expected = NO_STORE  # closed already
        ok, recorded = self.attempt(
            expected, lambda: self.app.record_dispute_closed(payment, dispute_id=dispute_id, won=won).result
        )
        self.touch(payment, pm.invoice_id)
        if ok:
            assert recorded is (expected != NO_STORE)
            if known is not None and expected != NO_STORE:
                known[1] = "won" if won else "lost"

    # -------------------------------------------------------------------------- idempotency

    @precondition(lambda self: self.keyed)
    @rule(index=st.integers(0, 10_000))
    def repeat_keyed_command(self, index: int) -> None:
        """The same request with the same key: answered as the first time, nothing stored."""
        call = self.keyed[index % len(self.keyed)]
        ok, outcome = self.attempt(NO_STORE, lambda: getattr(self.app, call.command)(*call.args, **call.kwargs))
        assert ok
        assert outcome is not None
        assert outcome.result == call.result
        assert outcome.replayed, "a repeat answered from the receipt says so"

    @precondition(lambda self: self.keyed)
    @rule(index=st.integers(0, 10_000), other_command=st.booleans())
    def reuse_key_with_other_arguments(self, index: int, other_command: bool) -> None:
        """The same key on a different request is refused and stores nothing."""
        call = self.keyed[index % len(self.keyed)]
        key = call.kwargs["idempotency_key"]
        elsewhere = UUID(int=7)  # never an invoice of ours
        attempts: dict[str, Callable[[], object]] = {
            "create_draft": lambda: self.app.create_draft(**{**call.kwargs, "memo": "another memo"}).result,
            "issue": lambda: self.app.issue(*call.args, due_date=date(2031, 1, 1), idempotency_key=key).result,
            "add_line": lambda: self.app.add_line(call.args[0], NewLine("other", 1, 1), idempotency_key=key).result,
            "change_line": lambda: (
                self.app.change_line(*call.args[:2], NewLine("other", 1, 1), idempotency_key=key).result
            ),
            "remove_line": lambda: self.app.remove_line(call.args[0], "another-line", idempotency_key=key).result,
            "delete_draft": lambda: self.app.delete_draft(elsewhere, idempotency_key=key).result,
            "void": lambda: self.app.void(elsewhere, idempotency_key=key).result,
            "mark_uncollectible": lambda: self.app.mark_uncollectible(elsewhere, idempotency_key=key).result,
            "record_offline_payment": lambda: (
                self.app.record_offline_payment(
                    call.args[0],
                    Money(call.args[1].amount + 1, call.args[1].currency),
                    **call.kwargs,
                ).result
            ),
        }
        if other_command:  # the key of one command used for another
            other = "void" if call.command != "void" else "mark_uncollectible"
            self.attempt(IdempotencyKeyReusedError, attempts[other])
        else:
            self.attempt(IdempotencyKeyReusedError, attempts[call.command])

    # -------------------------------------------------------------------------- audit

    @precondition(lambda self: self.history)
    @rule(invoice=invoices, index=st.integers(0, 100), where=st.sampled_from(["at", "between", "before"]))
    def audit_as_of(self, invoice: UUID, index: int, where: str) -> None:
        """invoice_as_of(moment) is the invoice as it stood after the last change at or before it."""
        moments = self.history[invoice]
        if not moments:
            return
        i = index % len(moments)
        moment, version = moments[i]
        if where == "before":
            first = moments[0][0]
            try:
                self.app.invoice_as_of(invoice, first - timedelta(microseconds=1))
            except InvoiceNotFoundError:
                return
            raise AssertionError("an invoice existed before its first event")
        if where == "between":
            following = moments[i + 1][0] if i + 1 < len(moments) else self.clock.now() + timedelta(days=1)
            moment = moment + (following - moment) / 2
        assert self.app.invoice_as_of(invoice, moment) == self.app.invoice(invoice, version=version)

    # -------------------------------------------------------------------------- invariants

    @invariant()
    def the_log_replays_and_the_books_balance(self) -> None:
        changed = self.consume_new_events()
        for invoice_id in sorted(changed | self.dirty_invoices, key=str):
            self.check_invoice(invoice_id, replay=invoice_id in changed)
        for payment_id in sorted(self.dirty_payments, key=str):
            self.check_payment(payment_id)
        self.dirty_invoices.clear()
        self.dirty_payments.clear()
        totals: dict[str, int] = defaultdict(int)
        for balances in self.postings.values():
            for (currency, _account), amount in balances.items():
                totals[currency] += amount
        assert all(total == 0 for total in totals.values()), f"postings do not balance: {dict(totals)}"

    def consume_new_events(self) -> set[UUID]:
        """Fold every event stored since the last step: invoices replayed, postings summed."""
        changed: set[UUID] = set()
        count = self.event_count()
        assert count >= self.seen, "the log shrank"
        if count == self.seen:
            return changed
        for notification in self.app.recorder.select_notifications(start=self.seen + 1, limit=100_000):
            event = self.app.mapper.to_domain_event(notification)
            if isinstance(event, Invoice.Event):
                invoice_id = event.originator_id
                assert invoice_id in self.invoice_models, f"an event for an invoice the model never created: {event}"
                self.folded[invoice_id] = event.mutate(self.folded.get(invoice_id))
                currency = self.invoice_models[invoice_id].currency
                for posting in accounting.postings_for(event, currency):
                    assert posting.currency == currency
                    assert min(posting.debit, posting.credit) == 0, posting
                    assert max(posting.debit, posting.credit) > 0, posting
                    self.postings[invoice_id][(currency, posting.account)] += posting.signed
                changed.add(invoice_id)
            else:
                assert accounting.postings_for(event, "usd") == [], f"only invoice events post: {event}"
            self.seen = max(self.seen, notification.id)
        assert self.seen == count
        return changed

    def check_invoice(self, invoice_id: UUID, *, replay: bool) -> None:
        model = self.invoice_models[invoice_id]
        invoice = self.app.invoice(invoice_id)
        now = self.clock.now()
        if replay:
            # Replay determinism: the repository, the events folded one by one, and the audit
            # view "as of now" are the same invoice, to the last attribute.
            assert invoice == self.folded[invoice_id]
            assert self.app.invoice_as_of(invoice_id, now) == invoice
            moments = self.history[invoice_id]
            if moments and moments[-1][0] == now:
                moments[-1] = (now, invoice.version)
            else:
                moments.append((now, invoice.version))

        paid = self.amount_paid(model)
        assert invoice.status == model.status, f"status {invoice.status}, the model says {model.status}"
        if model.ever_paid:
            assert invoice.status == PAID, "a paid invoice was reopened"
            assert invoice.paid_at is not None
        assert invoice.number == model.number
        assert (invoice.subtotal, invoice.tax, invoice.total) == (model.subtotal, model.tax, model.total)
        assert {line_id: (line.amount, line.tax) for line_id, line in invoice.lines.items()} == model.lines
        assert invoice.subtotal == sum(amount for amount, _ in model.lines.values())
        assert invoice.tax == sum(tax for _, tax in model.lines.values())
        assert invoice.amount_due >= 0
        if invoice.status in (PAID, VOID, DELETED):
            assert invoice.amount_due == 0
        assert invoice.amount_due == self.amount_due(model)
        assert invoice.amount_paid == paid, "amount_paid is not the sum of distinct succeeded payments"
        assert sorted(invoice.payment_ids) == sorted(str(p) for p in model.applied)
        payments = self.payments_of(model)
        refunded = sum(p.refunded for p in payments)
        assert invoice.amount_refunded == refunded, "amount_refunded is not the sum of distinct refunds"
        assert sorted(invoice.refund_ids) == sorted(r for p in payments for r in p.refunds)
        disputes = [d for p in payments for d in p.disputes.values()]
        assert invoice.amount_disputed == sum(a for a, s in disputes if s == "open")
        assert invoice.amount_dispute_lost == sum(a for a, s in disputes if s == "lost")
        assert invoice.refundable == sum(p.refundable for p in payments) >= 0
        overpaid = max(0, paid - model.total) if model.number is not None else 0
        assert invoice.amount_overpaid == overpaid, "overpayment must be recorded, never dropped"

        actual = {account: amount for (_c, account), amount in self.postings[invoice_id].items() if amount}
        assert actual == self.expected_balances(model), f"account balances of {model.status} invoice"

    def expected_balances(self, model: InvoiceModel) -> dict[str, int]:
        """What each account holds for one invoice, from the model alone."""
        expected: dict[str, int] = defaultdict(int)
        if model.status == OPEN:
            expected[accounting.RECEIVABLES] = self.amount_due(model)
        if model.number is not None and model.status != VOID:
            expected[accounting.REVENUE] -= model.subtotal
            expected[accounting.TAX_PAYABLE] -= model.tax
        paid = self.amount_paid(model)
        overpaid = max(0, paid - model.total) if model.number is not None else 0
        expected[accounting.CUSTOMER_CREDIT] -= overpaid - model.credit_refunded
        for payment in self.payments_of(model):
            expected[payment.cash_account] += payment.captured - payment.fee - payment.refunded
            expected[accounting.PROCESSOR_FEES] += payment.fee
            expected[accounting.REFUNDS] += payment.refunded
            expected[accounting.PROCESSOR_BALANCE] -= payment.held  # disputes always hit the processor
            expected[accounting.DISPUTES] += payment.held
        expected[accounting.REFUNDS] -= model.credit_refunded
        if model.status != VOID:
            expected[accounting.BAD_DEBT] += model.written_off - model.recovered
        return {account: amount for account, amount in expected.items() if amount}

    def check_payment(self, payment_id: UUID) -> None:
        model = self.payment_models[payment_id]
        payment = self.app.payment(payment_id)
        assert isinstance(payment, Payment)
        assert (payment.status, payment.invoice_id, payment.provider) == (
            model.status,
            str(model.invoice_id),
            model.provider,
        )
        if model.status == SUCCEEDED:
            assert (payment.amount_captured, payment.fee) == (model.captured, model.fee)
        assert payment.refunds == model.refunds
        assert payment.failed_attempt_ids == model.failed_attempts
        assert {k: [d["amount"], d["status"]] for k, d in payment.disputes.items()} == model.disputes
        assert payment.refundable == model.refundable >= 0
        assert payment.currency == model.currency
        invoice_currency = self.invoice_models[model.invoice_id].currency
        assert payment.currency == invoice_currency, (
            f"payment {payment.provider}:{payment.provider_payment_id} is in {payment.currency}, "
            f"its invoice in {invoice_currency}"
        )

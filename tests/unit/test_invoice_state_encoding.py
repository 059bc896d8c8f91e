"""The invoice_versions read model's state encoding (projections/invoice_versions.py): any
invoice the domain can reach (lines, payments, refunds, disputes, failed attempts, checkouts,
void, uncollectible, stamps in any zone) decodes equal to what was encoded, attribute for
attribute and type for type; what the format does not know is refused, never stored lossily."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import LedgerError
from ledger.invoices import BANK, PROCESSOR_BALANCE, Invoice
from ledger.lines import Line
from ledger.money import Money
from projections.invoice_versions import _LINE, UnencodableError, decode_invoice, encode_invoice

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
amounts = st.integers(min_value=1, max_value=50_000)
line = st.tuples(
    st.just("line"), texts, st.integers(1, 9), st.integers(-500, 90_000), st.sampled_from([None, "20", "7.5"])
)
drafting = st.one_of(
    line,
    st.tuples(st.just("remove_line"), st.integers(0, 5)),
    st.tuples(st.just("details"), texts, st.dictionaries(texts, texts, max_size=2)),
)
issued = st.one_of(
    st.tuples(st.just("pay"), amounts, st.integers(0, 100), st.sampled_from([BANK, PROCESSOR_BALANCE])),
    st.tuples(st.just("fail"), texts, texts),
    st.tuples(st.just("checkout"), amounts, st.booleans()),
    st.tuples(st.just("refund"), st.integers(0, 5), amounts),
    st.tuples(st.just("dispute"), st.integers(0, 5), amounts, st.booleans()),
)
# A draft's lines and other steps, then its issue, what happens to an open invoice, maybe its end.
steps = st.tuples(
    st.lists(line, min_size=1, max_size=3),
    st.lists(drafting, max_size=4),
    st.tuples(st.tuples(st.just("issue"), st.integers(1, 999))),
    st.lists(issued, max_size=25),
    st.lists(st.sampled_from([("void",), ("uncollectible",)]), max_size=1),
).map(lambda phases: [action for phase in phases for action in phase])
zones = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])


def _apply(invoice: Invoice, action: tuple[Any, ...], at: datetime) -> None:
    kind = action[0]
    if kind == "line":
        _, text, quantity, unit, rate = action
        line = Line.price(
            line_id=str(uuid4()), description=text or "x", quantity=quantity, unit_amount=unit, tax_rate=rate
        )
        invoice.add_line(line, at=at)
    elif kind == "remove_line" and invoice.lines:
        invoice.remove_line(list(invoice.lines)[action[1] % len(invoice.lines)], at=at)
    elif kind == "details":
        invoice.change_details(memo=action[1], metadata=action[2], at=at)
    elif kind == "issue":
        invoice.issue(sequence=action[1], at=at)
    elif kind == "pay":
        _, amount, fee, account = action
        payment = Money(min(amount, invoice.amount_due) or amount, invoice.currency)
        invoice.apply_payment(
            payment_id=f"pi_{uuid4().hex}", amount=payment, fee=min(fee, payment.amount), cash_account=account, at=at
        )
    elif kind == "fail":
        invoice.record_failed_attempt(payment_id=f"pi_{uuid4().hex}", code=action[1], message=action[2], at=at)
    elif kind == "checkout":
        session = f"cs_{uuid4().hex}"
        amount = min(action[1], invoice.amount_due)
        if invoice.start_checkout(
            provider="stripe", session_id=session, amount=Money(amount, invoice.currency), expires_at=at, at=at
        ):
            invoice.close_checkout(session_id=session, completed=action[2], at=at)
    elif kind in ("refund", "dispute") and invoice.payment_ids:
        payment_id = invoice.payment_ids[action[1] % len(invoice.payment_ids)]
        money = Money(min(action[2], invoice.refundable) or action[2], invoice.currency)
        if kind == "refund":
            invoice.apply_refund(
                payment_id=payment_id, refund_id=f"re_{uuid4().hex}", amount=money, cash_account=BANK, at=at
            )
        else:
            dispute_id = f"dp_{uuid4().hex}"
            invoice.open_dispute(payment_id=payment_id, dispute_id=dispute_id, amount=money, at=at)
            invoice.close_dispute(dispute_id=dispute_id, won=action[3], at=at)
    elif kind == "void":
        invoice.void(at=at)
    elif kind == "uncollectible":
        invoice.mark_uncollectible(at=at)


def _stored(invoice: Invoice) -> Invoice:
    """As a projection holds it: folded from the events, nothing pending."""
    events = invoice.collect_events()
    folded: Invoice | None = None
    for event in events:
        folded = event.mutate(folded)
    assert folded is not None
    return folded


def _typed(value: object) -> object:
    """The value with every type spelled out: 1, 1.0 and True compare equal, but are not."""
    if isinstance(value, dict):
        return ("dict", [(_typed(k), _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    if isinstance(value, datetime):
        return ("datetime", value, value.utcoffset())
    return (type(value).__name__, value)


@settings(max_examples=150, deadline=None)
@given(steps=steps, zone=zones, customer_name=texts, currency=st.sampled_from(["usd", "jpy"]))
def test_any_reachable_invoice_decodes_as_it_was_encoded(
    steps: list[tuple[Any, ...]], zone: timezone, customer_name: str, currency: str
) -> None:
    at = START.astimezone(zone)
    invoice = Invoice.create_draft(
        invoice_id=uuid4(), customer={"email": "ap@example.com", "name": customer_name}, currency=currency, at=at
    )
    for action in steps:
        at += timedelta(seconds=1)
        with suppress(LedgerError):  # refused by the domain: nothing was triggered
            _apply(invoice, action, at)
    stored = _stored(invoice)
    decoded = decode_invoice(encode_invoice(stored))
    assert type(decoded) is Invoice
    assert _typed(vars(decoded)) == _typed(vars(stored))
    assert list(decoded.lines) == list(stored.lines)  # in the order they were added
    assert (decoded.total, decoded.amount_due, decoded.refundable) == (
        stored.total,
        stored.amount_due,
        stored.refundable,
    )
    assert decode_invoice(encode_invoice(decoded)) is not decoded  # a fresh object each time


def test_what_the_format_does_not_know_is_refused_not_stored_lossily() -> None:
    invoice = _stored(
        Invoice.create_draft(invoice_id=uuid4(), customer={"email": "ap@example.com"}, currency="usd", at=START)
    )
    encode_invoice(invoice)
    invoice.metadata = {"k": ("a tuple", "is not JSON")}  # type: ignore[dict-item]
    with pytest.raises(UnencodableError):
        encode_invoice(invoice)
    invoice.metadata = {}
    invoice.__dict__["added_later"] = 1  # an attribute added to Invoice without a format for it
    with pytest.raises(UnencodableError, match="added_later"):
        encode_invoice(invoice)
    del invoice.__dict__["added_later"]
    invoice.paid_at = datetime(2026, 3, 2, 9, 0)  # naive: which instant is ambiguous
    with pytest.raises(UnencodableError):
        encode_invoice(invoice)


def test_the_format_encodes_every_field_of_a_line() -> None:
    """Invoice attributes the format does not know are refused at encoding; a line's are listed
    once in the format (`_LINE`), so a field added to Line must be added there too (with a new
    FORMAT): else it would be encoded as nothing and decoded as its default."""
    assert tuple(f.name for f in fields(Line)) == _LINE

"""The double-entry journal: every posting, with the event it came from.

A posting needs the event and its invoice's currency, nothing else of the invoice: the journal
keeps each invoice's currency (fixed when the draft is created) instead of folding invoices.
Payout events carry their currency; their postings name the payout instead of an invoice.
A processor fee carries its currency and names the invoice it was taken for, if any.

Each row keeps the revision of the posting rule that wrote it (`rule_revision`): a rule changed
since shows up in `ledger rebuild --check` as rows whose revision differs, named by topic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Table

from ledger.accounting import RULES, NoPostingRuleError, PostingRule, class_posting_rule
from ledger.events import MovesMoney
from ledger.fees import ProcessorFee
from ledger.invoices import Invoice
from ledger.payouts import Payout
from projections.bulk import insert_tuples
from projections.invoice_states import FACTS_KEPT, LoadInvoice
from projections.tables import journal
from projections.tracked import Positioned

_INVOICE, _PAYOUT, _FEE, _REFUSED, _NONE = "invoice", "payout", "fee", "refused", "none"
#: Where an event class's postings go (one of the above), its posting rule (None: it posts
#: nothing, or it is refused) and its topic (for a refused one, the topic its error names).
_Place = tuple[str, PostingRule | None, Any]


def _place(cls: type, rules: Mapping[str, PostingRule]) -> _Place:
    """What `process` does with an event of `cls`: where its postings go (the tests below),
    its rule and refusal (`class_posting_rule`); they depend on the class only, so they are
    made once per class."""
    topic = getattr(cls, "TOPIC", cls.__name__)
    if issubclass(cls, Invoice.Event):
        where = _INVOICE
    elif issubclass(cls, Payout.Paid | Payout.Failed):
        where = _PAYOUT
    elif issubclass(cls, ProcessorFee.Recorded):  # on the invoice it was taken for, when ours
        where = _FEE
    elif issubclass(cls, MovesMoney):  # money the journal cannot place
        return _REFUSED, None, topic
    else:
        return _NONE, None, topic
    try:
        return where, class_posting_rule(cls, rules), topic
    except NoPostingRuleError as refused:
        return _REFUSED, None, refused.topic


class JournalProjection:
    name = "journal"
    tables: tuple[Table, ...] = (journal,)
    # The events it reads (projections/tracked.py): every class that may post, `MovesMoney` among
    # them so that a money event without a rule still reaches `process` and raises. A payment's
    # events (almost half of a log) post nothing and are not handed to it.
    kinds: tuple[type, ...] = (Invoice.Event, Payout.Paid, Payout.Failed, ProcessorFee.Recorded, MovesMoney)

    def __init__(
        self, load: LoadInvoice, max_invoices: int = FACTS_KEPT, rules: Mapping[str, PostingRule] = RULES
    ) -> None:
        self._load = load
        self.rules = rules
        # Bounded: a bigger map only grew a rebuild's peak memory with the log; twice the
        # states kept (FACTS_KEPT: a currency is small), so that a follower's late event of an
        # invoice whose state was evicted costs one load, not one here too (docs/throughput.md
        # §Peak memory of a rebuild).
        self._currencies: dict[UUID, str] = {}
        self.max_invoices = max_invoices
        self._placed: dict[type, _Place] = {}  # event class -> _place(it, rules), for `_placed_rules`
        self._placed_rules = rules

    def prepare(self, batch: Sequence[Positioned]) -> None:
        for _, event in batch:
            if isinstance(event, Invoice.Event):
                self._currency(event)

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        # Each row a tuple in the table's column order (insert_tuples): a rebuild writes a row
        # for most events, and a dict per row was most of the journal's own time. What an event
        # class posts by (where its money goes, its rule, its topic) is found once per class.
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        if self._placed_rules is not self.rules:  # rules replaced (rebuild --check's test does)
            self._placed.clear()
            self._placed_rules = self.rules
        placed = self._placed
        for position, event in batch:
            cls = type(event)
            place = placed.get(cls)
            if place is None:
                place = placed[cls] = _place(cls, self.rules)
            where, rule, topic = place
            if rule is None:
                if where is _REFUSED:  # money the journal cannot place: a bug, never skipped
                    raise NoPostingRuleError(topic)
                continue
            if where is _INVOICE:
                currency, invoice_id, payout_id = self._currency(event), str(event.originator_id), None
            elif where is _PAYOUT:
                currency, invoice_id, payout_id = event.currency, None, str(event.originator_id)
            else:  # a processor fee, on the invoice it was taken for, when ours
                currency, invoice_id, payout_id = event.currency, event.invoice_id, None
            version, revision, occurred_at = event.originator_version, rule.revision, event.timestamp
            for line, posting in enumerate(rule.post(event, currency)):
                append(
                    (
                        position,
                        line,
                        invoice_id,
                        topic,
                        version,
                        occurred_at,
                        posting.account,
                        posting.currency,
                        posting.debit,
                        posting.credit,
                        payout_id,
                        revision,
                    )
                )
        insert_tuples(conn, journal, rows)

    def reset(self) -> None:
        pass  # currencies never change: nothing kept here can be ahead of the database

    def _currency(self, event: Invoice.Event) -> str:
        invoice_id = event.originator_id
        currency = self._currencies.get(invoice_id)
        if currency is None:
            if isinstance(event, Invoice.Created):
                currency = event.currency
            else:
                currency = self._load(invoice_id, event.originator_version - 1).currency
            if len(self._currencies) >= self.max_invoices:
                del self._currencies[next(iter(self._currencies))]  # the oldest: it may come back, at one load
            self._currencies[invoice_id] = currency
        return currency

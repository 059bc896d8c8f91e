"""A reconciliation item: one difference between the ledger and the provider, and how it was settled.

An item's id is derived from what the difference is about (its class and the provider's or the
ledger's ids), so the same difference found by every run is the same item. It is never edited:
settling it is an event on its own aggregate, with who did it, when, how and why.

    open ──explain──────────────> explained     (a person's recorded explanation)
      │  ──apply / refund_duplicate / fixed──> resolved
      └─ a later run no longer finds it: fixed by the ledger events that closed it (a late webhook)
    resolved ──found again──> open (reopened: what settled it did not hold)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.errors import InvalidInputError, NotFoundError, RuleViolationError
from ledger.events import CopiedCheaply, SharedWhenCopied
from ledger.validation import require_text

# The classes of difference, named as the report names them.
MISSING_IN_LEDGER = "missing_in_ledger"
MISSING_IN_STRIPE = "missing_in_stripe"
AMOUNT_MISMATCH = "amount_mismatch"
DUPLICATE_PAYMENT = "duplicate_payment"
REFUND_MISSING_IN_LEDGER = "refund_missing_in_ledger"
REFUND_MISSING_IN_STRIPE = "refund_missing_in_stripe"
DISPUTE_MISMATCH = "dispute_mismatch"
FEE_MISMATCH = "fee_mismatch"
PAYOUT_MISMATCH = "payout_mismatch"
UNATTRIBUTED = "unattributed"
STUCK_EVENT = "stuck_event"
INVOICE_INCONSISTENT = "invoice_inconsistent"

CLASSES = (
    MISSING_IN_LEDGER,
    MISSING_IN_STRIPE,
    AMOUNT_MISMATCH,
    DUPLICATE_PAYMENT,
    REFUND_MISSING_IN_LEDGER,
    REFUND_MISSING_IN_STRIPE,
    DISPUTE_MISMATCH,
    FEE_MISMATCH,
    PAYOUT_MISMATCH,
    UNATTRIBUTED,
    STUCK_EVENT,
    INVOICE_INCONSISTENT,
)

OPEN = "open"
RESOLVED = "resolved"
EXPLAINED = "explained"
STATUSES = (OPEN, RESOLVED, EXPLAINED)

APPLY = "apply"  # bring the provider's fact into the ledger, through the webhook's command path
EXPLAIN = "explain"  # a person's explanation, kept with the item
REFUND_DUPLICATE = "refund_duplicate"  # ask the provider to refund the duplicate charge
FIXED = "fixed"  # not found again: the ledger events named closed it (a late webhook, say)
ACTIONS = (APPLY, EXPLAIN, REFUND_DUPLICATE)  # what a person may ask for

# What `apply` can bring in: the provider's fact, where the ledger lacks it. The other classes
# are explained, or (a duplicate) refunded.
APPLICABLE = frozenset({MISSING_IN_LEDGER, REFUND_MISSING_IN_LEDGER, DISPUTE_MISMATCH, PAYOUT_MISMATCH})
REFUNDABLE = frozenset({DUPLICATE_PAYMENT})

NOTE_LIMIT = 2000
BY_LIMIT = 200

_NAMESPACE = UUID("5a8c2e17-3b9d-4f60-8e21-c7d4a9b03f58")


def item_id_for(cls: str, key: str) -> UUID:
    """The same difference (class and what it is about) has the same id on every run."""
    if cls not in CLASSES:
        raise ValueError(f"unknown reconciliation class {cls!r}")
    return uuid5(_NAMESPACE, f"{cls}:{key}")


def allowed_actions(cls: str) -> tuple[str, ...]:
    actions = [EXPLAIN]
    if cls in APPLICABLE:
        actions.insert(0, APPLY)
    if cls in REFUNDABLE:
        actions.insert(0, REFUND_DUPLICATE)
    return tuple(actions)


@dataclass(frozen=True)
class Difference:
    """One difference as a run found it: the report's fixed shape, plus `facts`, what `apply`
    needs of the provider's side (kept so that settling it does not ask the provider again).

    Amounts are integer minor units of `currency`, or None where a side has nothing. `events`
    names the ledger events involved: [{"id": aggregate id, "version": n, "position": p}].
    """

    id: str
    cls: str
    currency: str | None
    amount_ledger: int | None
    amount_stripe: int | None
    stripe_id: str | None
    invoice_id: str | None
    payment_id: str | None
    explanation: str
    events: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Difference:
        return cls(**state)


class ReconciliationItem(CopiedCheaply, Aggregate):
    TOPIC = "reconciliation-item"

    class Event(SharedWhenCopied, Aggregate.Event):
        pass

    class Detected(Event, Aggregate.Created):
        """A run found the difference for the first time."""

        TOPIC = "reconciliation-item.detected"
        run_id: str
        difference: dict[str, Any]

    Created = Detected

    class Settled(Event):
        """Resolved (`apply`, `refund_duplicate`, `fixed`) or explained (`explain`)."""

        TOPIC = "reconciliation-item.settled"
        action: str
        by: str
        note: str
        events: list[dict[str, Any]]  # the ledger events that settled it (apply, fixed)

        def apply(self, aggregate: ReconciliationItem) -> None:
            aggregate.status = EXPLAINED if self.action == EXPLAIN else RESOLVED
            aggregate.resolution = {
                "by": self.by,
                "at": self.timestamp.isoformat(),
                "action": self.action,
                "note": self.note,
                "events": list(self.events),
            }

    class Reopened(Event):
        """A run found again what had been resolved: what settled it did not hold."""

        TOPIC = "reconciliation-item.reopened"
        run_id: str
        difference: dict[str, Any]

        def apply(self, aggregate: ReconciliationItem) -> None:
            aggregate.status = OPEN
            aggregate.resolution = None
            aggregate.difference = dict(self.difference)

    def __init__(self, run_id: str, difference: dict[str, Any]) -> None:
        self.difference = dict(difference)
        self.cls = str(difference["cls"])
        self.status = OPEN
        self.resolution: dict[str, Any] | None = None
        self.detected_in = run_id

    @classmethod
    def detect(cls, difference: Difference, *, run_id: str, at: datetime) -> ReconciliationItem:
        return cls._create(
            cls.Detected, id=UUID(difference.id), timestamp=at, run_id=run_id, difference=difference.to_state()
        )

    @property
    def found(self) -> Difference:
        return Difference.from_state(self.difference)

    def settle(
        self, *, action: str, by: str, note: str, at: datetime, events: list[dict[str, Any]] | None = None
    ) -> None:
        """Record how the item was settled. A person's action needs a note and is refused on an
        item settled already or an action its class does not allow."""
        if action != FIXED:
            note = self.require_settleable(action, note=note, by=by)
        elif self.status == RESOLVED:
            return  # fixed after it was resolved: nothing more to say
        self.trigger_event(
            self.Settled,
            timestamp=at,
            action=action,
            by=require_text(by, field="by", limit=BY_LIMIT),
            note=note[:NOTE_LIMIT],
            events=list(events or []),
        )

    def require_settleable(self, action: str, *, note: str, by: str, note_limit: int = NOTE_LIMIT) -> str:
        """Refuse what `settle` would refuse of a person's action, without settling: lets a command
        check before it asks the provider for something it could then not record. The note."""
        if action not in ACTIONS or action not in allowed_actions(self.cls):
            raise ReconciliationActionError(self.cls, action)
        if self.status != OPEN:
            raise ItemSettledError(str(self.id), self.status)
        require_text(by, field="by", limit=BY_LIMIT)
        return require_text(note, field="note", limit=note_limit)

    def reopen(self, difference: Difference, *, run_id: str, at: datetime) -> bool:
        """Found again after it was resolved: open again. An explained item stays explained
        (the difference is known and accepted); an open one stays open."""
        if self.status != RESOLVED:
            return False
        self.trigger_event(self.Reopened, timestamp=at, run_id=run_id, difference=difference.to_state())
        return True


class ReconciliationActionError(InvalidInputError):
    """An action this class of difference does not allow (`apply` on a missing_in_stripe, say)."""

    def __init__(self, cls: str, action: str, reason: str = "") -> None:
        because = reason or f"allowed: {', '.join(allowed_actions(cls))}"
        super().__init__(f"{action!r} does not settle a {cls} item; {because}", field="action")


class ItemSettledError(RuleViolationError):
    """The item was resolved or explained already: a second settlement is refused (409)."""

    def __init__(self, item_id: str, status: str) -> None:
        super().__init__(f"reconciliation item {item_id} is {status} already")


class ReconciliationItemNotFoundError(NotFoundError):
    def __init__(self, item_id: object) -> None:
        super().__init__(f"reconciliation item {item_id} not found")
        self.item_id = item_id


class ApplyRefusedError(RuleViolationError):
    """`apply` of a fact the ledger cannot take as it stands (409): a closed dispute the provider
    shows otherwise, say. Nothing was stored; such an item is explained."""


class PaymentNotInLedgerError(ApplyRefusedError):
    """`apply` of a refund or dispute whose payment has not succeeded in the ledger (409): the
    missing payment is an item of its own, to apply first."""

    def __init__(self, provider_payment_id: str, status: str, what: str) -> None:
        super().__init__(
            f"{what} is on payment {provider_payment_id}, which is {status} in the ledger: "
            "apply the payment's missing_in_ledger item first"
        )
        self.provider_payment_id = provider_payment_id

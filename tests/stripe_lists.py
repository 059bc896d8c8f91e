"""The test Stripe server's records and list endpoints (tests/stripe_server.py serves them).

Six kinds of objects are kept, each listable as Stripe lists it: `GET /v1/balance_transactions`,
`/v1/charges`, `/v1/refunds`, `/v1/disputes`, `/v1/payouts`, `/v1/payment_intents` answer
`{"object": "list", "url": ..., "has_more": ..., "data": [...]}`, newest first (by `created`,
then by id, both descending), with Stripe's parameters: `limit` (1 to 100, 10 by default; any
other value is a 400 `invalid_request_error`), `starting_after` / `ending_before` (an unknown
id is a 400 `resource_missing`), `created` (an integer, or `created[gt|gte|lt|lte]`) and, on
balance transactions, `payout=` (the transactions the payout carried, plus its own). A
parameter the server does not implement, `expand` included, is a 400 rather than silently
ignored, so a test cannot pass on a request Stripe would answer differently.

Each kind is kept sorted by (created, id), so a page costs a bisection and `limit` copies,
however many objects a test or a benchmark seeds.

Seeding (`seed_*`) takes amounts in **Stripe's units** (what Stripe's API would answer: 500 for
5 kr, 1234 for 1,234 ariary), not the ledger's Money: this is Stripe's side, and a test may
need an amount the ledger cannot hold. Callers holding Money convert with
adapters/stripe/currency.py `to_stripe`. Objects start from Stripe's own examples
(`resources`: tests/fixtures/stripe_objects.json plus the newer fields) and are linked as Stripe
links them: a charge's balance transaction, a refund's and a dispute's (with the charge's
`amount_refunded` / `disputed` updated), a payout's own transaction and the ones it carried.
"""

from __future__ import annotations

import bisect
import copy
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Each kind and its list endpoint.
PATHS: dict[str, str] = {
    "balance_transaction": "/v1/balance_transactions",
    "charge": "/v1/charges",
    "refund": "/v1/refunds",
    "dispute": "/v1/disputes",
    "payout": "/v1/payouts",
    "payment_intent": "/v1/payment_intents",
}
PREFIXES = {
    "balance_transaction": "txn",
    "charge": "ch",
    "refund": "re",
    "dispute": "dp",
    "payout": "po",
    "payment_intent": "pi",
}
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
_PAGING = {"limit", "starting_after", "ending_before", "created"}
_CREATED_BOUNDS = {"gt", "gte", "lt", "lte"}
# A balance transaction's type -> its reporting category, as Stripe reports them.
_CATEGORIES = {
    "charge": "charge",
    "payment": "charge",
    "refund": "refund",
    "payment_refund": "refund",
    "adjustment": "dispute",
    "payout": "payout",
    "stripe_fee": "fee",
}
TWO_DAYS = 2 * 24 * 3600

Key = tuple[int, str]  # (created, id)


class ListRequestError(Exception):
    """A list request Stripe would refuse: its status and Stripe's error body."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.status = status
        self.error = error


@dataclass(frozen=True)
class SeededPayment:
    """The ids of a succeeded payment as Stripe keeps it: PaymentIntent, charge, balance transaction."""

    payment_intent: str
    charge: str
    balance_transaction: str


@dataclass
class Kind:
    """One kind of object: by id, and its keys in (created, id) order."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: list[Key] = field(default_factory=list)

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["id"] in self.objects:
            raise ValueError(f"{obj['id']} exists already")
        self.objects[obj["id"]] = obj
        bisect.insort(self.keys, (obj["created"], obj["id"]))
        return obj


def new_id(kind: str) -> str:
    return f"{PREFIXES[kind]}_{secrets.token_hex(12)}"


class StripeRecords:
    """What the account holds, built from Stripe's example objects (`resources`). Not locked:
    the server calls it under its own lock."""

    def __init__(self, resources: dict[str, Any]) -> None:
        self.resources = resources
        self.kinds = {kind: Kind() for kind in PATHS}
        self.payout_keys: dict[str, list[Key]] = {}  # payout id -> its transactions' keys, sorted

    def get(self, kind: str, object_id: str) -> dict[str, Any] | None:
        return self.kinds[kind].objects.get(object_id)

    def _example(self, kind: str) -> dict[str, Any]:
        return copy.deepcopy(self.resources[kind])

    # ------------------------------------------------------------------------------ seeding

    def balance_transaction(
        self,
        *,
        amount: int,
        currency: str = "usd",
        fee: int = 0,
        type: str = "charge",
        source: str | None = None,
        status: str = "available",
        created: int | None = None,
        object_id: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        created = _now() if created is None else created
        txn = self._example("balance_transaction")
        txn.update(
            id=object_id or new_id("balance_transaction"),
            amount=amount,
            fee=fee,
            net=amount - fee,
            currency=currency,
            type=type,
            reporting_category=_CATEGORIES.get(type, "other_adjustment"),
            source=source,
            status=status,
            created=created,
            available_on=created + TWO_DAYS,
            description=description,
            exchange_rate=None,
            fee_details=[]
            if not fee
            else [
                {
                    "amount": fee,
                    "application": None,
                    "currency": currency,
                    "description": "Stripe processing fees",
                    "type": "stripe_fee",
                }
            ],
        )
        return self.kinds["balance_transaction"].add(txn)

    def payment_intent(
        self,
        *,
        amount: int,
        currency: str = "usd",
        status: str = "succeeded",
        invoice_id: str | None = None,
        metadata: dict[str, str] | None = None,
        amount_received: int | None = None,
        latest_charge: str | None = None,
        created: int | None = None,
        object_id: str | None = None,
    ) -> dict[str, Any]:
        intent_id = object_id or new_id("payment_intent")
        intent = self._example("payment_intent")
        intent.update(
            id=intent_id,
            amount=amount,
            amount_received=(amount if status == "succeeded" else 0) if amount_received is None else amount_received,
            amount_capturable=0,
            currency=currency,
            status=status,
            canceled_at=None,
            cancellation_reason=None,
            client_secret=f"{intent_id}_secret_{secrets.token_hex(12)}",
            created=_now() if created is None else created,
            metadata=_metadata(invoice_id, metadata),
            latest_charge=latest_charge,
            last_payment_error=None,
            next_action=None,
            payment_method="pm_card_visa" if status == "succeeded" else None,
            livemode=False,
        )
        return self.kinds["payment_intent"].add(intent)

    def charge(
        self,
        *,
        amount: int,
        currency: str = "usd",
        payment_intent: str | None = None,
        invoice_id: str | None = None,
        metadata: dict[str, str] | None = None,
        status: str = "succeeded",
        captured: bool = True,
        balance_transaction: str | None = None,
        created: int | None = None,
        object_id: str | None = None,
    ) -> dict[str, Any]:
        charge_id = object_id or new_id("charge")
        charge = self._example("charge")
        succeeded = status == "succeeded"
        charge.update(
            id=charge_id,
            amount=amount,
            amount_captured=amount if succeeded and captured else 0,
            amount_refunded=0,
            captured=succeeded and captured,
            currency=currency,
            status=status,
            paid=succeeded,
            refunded=False,
            disputed=False,
            created=_now() if created is None else created,
            metadata=_metadata(invoice_id, metadata),
            payment_intent=payment_intent,
            balance_transaction=balance_transaction,
            failure_code=None if succeeded or status == "pending" else "card_declined",
            failure_message=None if succeeded or status == "pending" else "Your card was declined.",
            outcome={
                **charge["outcome"],
                "network_status": "approved_by_network" if succeeded else "declined_by_network",
                "seller_message": "Payment complete." if succeeded else "The bank did not return any further details.",
                "type": "authorized" if succeeded else "issuer_declined",
            },
            receipt_url=None,
            refunds={"object": "list", "data": [], "has_more": False, "url": f"/v1/charges/{charge_id}/refunds"},
            source=None,
            livemode=False,
        )
        return self.kinds["charge"].add(charge)

    def payment(
        self,
        *,
        amount: int,
        currency: str = "usd",
        fee: int = 0,
        invoice_id: str | None = None,
        metadata: dict[str, str] | None = None,
        created: int | None = None,
    ) -> SeededPayment:
        """A succeeded payment: its PaymentIntent, charge and the charge's balance transaction
        (`amount` gross, `fee`, net = amount - fee), all created at `created`."""
        created = _now() if created is None else created
        intent_id, charge_id = new_id("payment_intent"), new_id("charge")
        txn = self.balance_transaction(
            amount=amount, currency=currency, fee=fee, type="charge", source=charge_id, created=created
        )
        self.charge(
            amount=amount,
            currency=currency,
            payment_intent=intent_id,
            invoice_id=invoice_id,
            metadata=metadata,
            balance_transaction=txn["id"],
            created=created,
            object_id=charge_id,
        )
        self.payment_intent(
            amount=amount,
            currency=currency,
            invoice_id=invoice_id,
            metadata=metadata,
            latest_charge=charge_id,
            created=created,
            object_id=intent_id,
        )
        return SeededPayment(intent_id, charge_id, txn["id"])

    def refund(
        self,
        *,
        charge: str,
        amount: int | None = None,
        status: str = "succeeded",
        reason: str | None = None,
        created: int | None = None,
        object_id: str | None = None,
    ) -> dict[str, Any]:
        """A refund of a charge held here (all that is left of it by default), its balance
        transaction (unless it failed or was canceled), and the charge's `amount_refunded`."""
        refunded = self.kinds["charge"].objects[charge]
        amount = refunded["amount_captured"] - refunded["amount_refunded"] if amount is None else amount
        created = _now() if created is None else created
        refund_id = object_id or new_id("refund")
        txn_id = None
        if status in ("succeeded", "pending"):
            txn = self.balance_transaction(
                amount=-amount,
                currency=refunded["currency"],
                type="refund",
                source=refund_id,
                status="available" if status == "succeeded" else "pending",
                created=created,
                description="REFUND FOR CHARGE",
            )
            txn_id = txn["id"]
            refunded["amount_refunded"] += amount
            refunded["refunded"] = refunded["amount_refunded"] >= refunded["amount_captured"]
        refund = self._example("refund")
        refund.update(
            id=refund_id,
            amount=amount,
            charge=charge,
            currency=refunded["currency"],
            payment_intent=refunded["payment_intent"],
            status=status,
            reason=reason,
            balance_transaction=txn_id,
            created=created,
            metadata={},
        )
        return self.kinds["refund"].add(refund)

    def dispute(
        self,
        *,
        charge: str,
        amount: int | None = None,
        status: str = "needs_response",
        reason: str = "fraudulent",
        fee: int = 0,
        created: int | None = None,
        object_id: str | None = None,
    ) -> dict[str, Any]:
        """A dispute of a charge held here (all of it by default) and the balance transaction that
        withdrew the amount (an `adjustment` of -amount, Stripe's dispute fee as `fee`)."""
        disputed = self.kinds["charge"].objects[charge]
        amount = disputed["amount_captured"] if amount is None else amount
        created = _now() if created is None else created
        dispute_id = object_id or new_id("dispute")
        txn = self.balance_transaction(
            amount=-amount,
            currency=disputed["currency"],
            fee=fee,
            type="adjustment",
            source=dispute_id,
            created=created,
            description=f"Chargeback withdrawal for {charge}",
        )
        disputed["disputed"] = True
        dispute = self._example("dispute")
        dispute.update(
            id=dispute_id,
            amount=amount,
            charge=charge,
            currency=disputed["currency"],
            payment_intent=disputed["payment_intent"],
            status=status,
            reason=reason,
            balance_transactions=[copy.deepcopy(txn)],
            is_charge_refundable=False,
            created=created,
            metadata={},
        )
        dispute["evidence_details"] = {**dispute["evidence_details"], "due_by": created + 7 * 24 * 3600}
        return self.kinds["dispute"].add(dispute)

    def payout(
        self,
        *,
        transactions: Sequence[str] = (),
        amount: int | None = None,
        currency: str = "usd",
        status: str = "paid",
        failure_code: str | None = None,
        failure_message: str | None = None,
        created: int | None = None,
        arrival_date: int | None = None,
        object_id: str | None = None,
    ) -> dict[str, Any]:
        """A payout carrying `transactions` (balance transaction ids held here; its amount is their
        net by default) and its own balance transaction (-amount, type `payout`)."""
        carried = [self.kinds["balance_transaction"].objects[txn_id] for txn_id in transactions]
        amount = sum(txn["net"] for txn in carried) if amount is None else amount
        created = _now() if created is None else created
        payout_id = object_id or new_id("payout")
        own = self.balance_transaction(
            amount=-amount,
            currency=currency,
            type="payout",
            source=payout_id,
            created=created,
            description="STRIPE PAYOUT",
        )
        payout = self._example("payout")
        failed = status == "failed"
        payout.update(
            id=payout_id,
            amount=amount,
            currency=currency,
            status=status,
            automatic=True,
            balance_transaction=own["id"],
            failure_balance_transaction=None,
            failure_code=failure_code or ("account_closed" if failed else None),
            failure_message=failure_message or ("The bank account has been closed." if failed else None),
            created=created,
            arrival_date=created + TWO_DAYS if arrival_date is None else arrival_date,
            reconciliation_status="completed" if status == "paid" else "in_progress",
            metadata={},
        )
        self.payout_keys[payout_id] = sorted([(txn["created"], txn["id"]) for txn in [*carried, own]])
        return self.kinds["payout"].add(payout)

    # ------------------------------------------------------------------------------ listing

    def page(self, kind: str, query: dict[str, Any]) -> dict[str, Any]:
        """One page of `kind` as Stripe answers `GET /v1/<kinds>?<query>`; ListRequestError if
        Stripe would refuse the query."""
        known = _PAGING | ({"payout"} if kind == "balance_transaction" else set())
        for name in query:
            if name not in known:
                raise ListRequestError(400, _invalid(name, f"Received unknown parameter: {name}"))
        if "starting_after" in query and "ending_before" in query:
            raise ListRequestError(
                400,
                _invalid(
                    "ending_before", "You may only specify one of these parameters: ending_before, starting_after."
                ),
            )
        limit = _limit(query.get("limit"))
        keys = self._keys(kind, query.get("payout"))
        low, high = _created_range(keys, query.get("created"))
        objects = self.kinds[kind].objects
        if "starting_after" in query:
            high = min(high, bisect.bisect_left(keys, self._cursor(kind, query, "starting_after")))
            chosen = keys[max(low, high - limit) : high]
            has_more = high - limit > low
        elif "ending_before" in query:
            low = max(low, bisect.bisect_right(keys, self._cursor(kind, query, "ending_before")))
            chosen = keys[low : min(high, low + limit)]
            has_more = low + limit < high
        else:
            chosen = keys[max(low, high - limit) : high]
            has_more = high - limit > low
        return {
            "object": "list",
            "url": PATHS[kind],
            "has_more": has_more,
            "data": [objects[object_id] for _, object_id in reversed(chosen)],
        }

    def _keys(self, kind: str, payout: Any) -> list[Key]:
        if payout is None:
            return self.kinds[kind].keys
        if not isinstance(payout, str) or payout not in self.payout_keys:
            raise ListRequestError(400, _missing("payout", str(payout), "payout"))
        return self.payout_keys[payout]

    def _cursor(self, kind: str, query: dict[str, Any], name: str) -> Key:
        object_id = query[name]
        obj = self.kinds[kind].objects.get(object_id) if isinstance(object_id, str) else None
        if obj is None:
            raise ListRequestError(400, _missing(kind, str(object_id), name))
        return (obj["created"], obj["id"])


def _now() -> int:
    return int(time.time())


def _metadata(invoice_id: str | None, metadata: dict[str, str] | None) -> dict[str, str]:
    return {**(metadata or {}), **({"invoice_id": invoice_id} if invoice_id else {})}


def _integer(value: Any, param: str) -> int:
    if not isinstance(value, str) or not value.lstrip("-").isdigit():
        raise ListRequestError(400, _invalid(param, f"Invalid integer: {value}"))
    return int(value)


def _limit(value: Any) -> int:
    if value is None:
        return DEFAULT_LIMIT
    limit = _integer(value, "limit")
    if not 1 <= limit <= MAX_LIMIT:
        raise ListRequestError(400, _invalid("limit", f"Invalid limit: must be between 1 and {MAX_LIMIT}"))
    return limit


def _created_range(keys: list[Key], created: Any) -> tuple[int, int]:
    """[low, high) of `keys` within the `created` filter (an exact second, or bounds)."""
    if created is None:
        return 0, len(keys)
    if not isinstance(created, dict):
        second = _integer(created, "created")
        created = {"gte": str(second), "lte": str(second)}
    unknown = set(created) - _CREATED_BOUNDS
    if unknown:
        name = f"created[{sorted(unknown)[0]}]"
        raise ListRequestError(400, _invalid(name, f"Received unknown parameter: {name}"))
    bounds = {name: _integer(value, f"created[{name}]") for name, value in created.items()}
    # As half-open seconds [first, last): gt s is gte s + 1, lte s is lt s + 1.
    first = max((bounds[name] + (name == "gt") for name in ("gt", "gte") if name in bounds), default=None)
    last = min((bounds[name] + (name == "lte") for name in ("lt", "lte") if name in bounds), default=None)
    # Every id sorts after "": (s, "") is the first key of second s.
    low = 0 if first is None else bisect.bisect_left(keys, (first, ""))
    high = len(keys) if last is None else bisect.bisect_left(keys, (last, ""))
    return low, max(low, high)


def _invalid(param: str, message: str) -> dict[str, Any]:
    return {"type": "invalid_request_error", "param": param, "message": message}


def _missing(kind: str, object_id: str, param: str) -> dict[str, Any]:
    return {
        "type": "invalid_request_error",
        "code": "resource_missing",
        "param": param,
        "message": f"No such {kind}: '{object_id}'",
    }

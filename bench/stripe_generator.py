"""A lean Stripe-compatible list server for the reconcile bench: objects made from their index.

Why not the test server (tests/stripe_server.py + tests/stripe_lists.py): it keeps every object
as a full dict. Measured on the 2-core machine, seeding N payments (PaymentIntent, charge,
balance transaction) plus 5% refunds there took 2.4 s and 157 MiB at 10k, 31.5 s and 1,180 MiB
at 100k (`bisect.insort` is O(N) per object): some 12 GB at 1M. Here nothing is kept: each object
is Stripe's example object (the test server's own, built once through tests/stripe_lists.py, so
the shape is the one the tests check) with its fields set from its index, and each page is
encoded as it is asked for.

The account (`Account(payments, start)`), N payments, index i, created at `start + 4 i`:
- a PaymentIntent `pi_bench<i>`, its charge `ch_bench<i>` and the charge's balance transaction
  `txn_bench<i>c` (amount `amount(i)`, Stripe's fee `fee(i)`, metadata.invoice_id `invoice_id(i)`);
- every 20th payment (5%) half refunded, at `start + 4 i + 1`: refund `re_bench<i>`, its
  transaction `txn_bench<i>r` (no fee returned, as Stripe does), the charge's `amount_refunded`;
- one payout per PAYOUT_BLOCK payments (the last block may be shorter), created at
  `start + 4 last + 2`: `po_bench<p>`, carrying the block's transactions (its amount their net),
  and its own transaction `txn_bench<last>p`.
Every balance transaction has its own second, so (created, id) order is created order, and a
page is arithmetic: no index is held, whatever N.

It answers what adapters/stripe/listing.py sends: `GET /v1/<list>?limit=&starting_after=&
created[gte]=&created[lt]=` and `/v1/balance_transactions?payout=`, newest first, Stripe's list
shape; anything else is a 400. Run: `python -m bench.stripe_generator --payments N --start S
--port P` (uvicorn, one worker).
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from uuid import UUID

import msgspec

PAYOUT_BLOCK = 10_000
REFUND_EVERY = 20
STEP = 4  # seconds between payments: the charge, its refund (+1) and a payout (+2) each get their own
API_KEY = "sk_test_bench_reconcile_0123456789"
_INVOICE_BASE = 0xBE7C_0000_0000_4000_8000_0000_0000_0000


def amount(i: int) -> int:
    return 1_000 + (i % 50) * 100


def fee(i: int) -> int:
    return amount(i) * 29 // 1000 + 30


def refunded(i: int) -> int:
    """What of payment i is refunded (Stripe's units): half of every 20th."""
    return amount(i) // 2 if i % REFUND_EVERY == 0 else 0


def invoice_id(i: int) -> UUID:
    return UUID(int=_INVOICE_BASE | i)


def pi_id(i: int) -> str:
    return f"pi_bench{i:010d}"


def charge_id(i: int) -> str:
    return f"ch_bench{i:010d}"


def refund_id(i: int) -> str:
    return f"re_bench{i:010d}"


def payout_id(p: int) -> str:
    return f"po_bench{p:08d}"


@dataclass(frozen=True)
class Account:
    payments: int
    start: int  # unix seconds of payment 0

    @property
    def payouts(self) -> int:
        return -(-self.payments // PAYOUT_BLOCK)

    @property
    def refunds(self) -> int:
        return -(-self.payments // REFUND_EVERY)

    @property
    def end(self) -> int:
        """The first second after everything (the period is [start, end))."""
        return self.start + STEP * self.payments

    def block(self, p: int) -> range:
        return range(p * PAYOUT_BLOCK, min((p + 1) * PAYOUT_BLOCK, self.payments))

    def payout_created(self, p: int) -> int:
        return self.start + STEP * self.block(p)[-1] + 2

    def payout_amount(self, p: int) -> int:
        return sum(amount(i) - fee(i) - refunded(i) for i in self.block(p))

    def balance_transactions(self) -> int:
        return self.payments + self.refunds + self.payouts


# ------------------------------------------------------------------------------ sequences


class Sequence_:
    """One kind of object, index k in [0, count), created ascending with k."""

    def __init__(self, count: int, created: Callable[[int], int], make: Callable[[int], dict[str, Any]]) -> None:
        self.count = count
        self.created = created
        self.make = make
        self._createds: list[int] | None = None

    def below(self, second: int) -> int:
        """How many were created before `second`."""
        low, high = 0, self.count
        while low < high:  # the created times are arithmetic but for the last payout: bisect on k
            mid = (low + high) // 2
            if self.created(mid) < second:
                low = mid + 1
            else:
                high = mid
        return low

    def newest(self, low: int, high: int, limit: int) -> list[tuple[int, int]]:
        """Up to `limit` (created, k) with low <= created < high, newest first."""
        top = self.below(high) - 1
        bottom = self.below(low)
        return [(self.created(k), k) for k in range(top, max(bottom, top - limit + 1) - 1, -1)]


class Generated:
    """The account's objects, from their index, in the test server's shapes."""

    def __init__(self, account: Account) -> None:
        from tests.stripe_lists import StripeRecords
        from tests.stripe_server import _resources

        self.account = account
        records = StripeRecords(_resources())
        paid = records.payment(amount=1000, fee=59, invoice_id=str(invoice_id(0)), created=account.start)
        records.refund(charge=paid.charge, amount=500, created=account.start + 1)
        records.payout(transactions=[paid.balance_transaction], created=account.start + 2)
        self.templates = {kind: next(iter(k.objects.values())) for kind, k in records.kinds.items() if k.objects}
        txns = list(records.kinds["balance_transaction"].objects.values())
        self.txn = {t["type"]: t for t in txns}
        self.payout_amounts = [account.payout_amount(p) for p in range(account.payouts)]
        start = account.start
        self.kinds: dict[str, list[tuple[str, Sequence_]]] = {
            "charge": [("c", Sequence_(account.payments, lambda k: start + STEP * k, self.charge))],
            "payment_intent": [("", Sequence_(account.payments, lambda k: start + STEP * k, self.payment_intent))],
            "refund": [("", Sequence_(account.refunds, lambda k: start + STEP * REFUND_EVERY * k + 1, self.refund))],
            "payout": [("", Sequence_(account.payouts, account.payout_created, self.payout))],
            "dispute": [],
        }
        self.kinds["balance_transaction"] = [
            ("c", Sequence_(account.payments, lambda k: start + STEP * k, self.charge_txn)),
            ("r", Sequence_(account.refunds, lambda k: start + STEP * REFUND_EVERY * k + 1, self.refund_txn)),
            ("p", Sequence_(account.payouts, account.payout_created, self.payout_txn)),
        ]

    # ------------------------------------------------------------------------------ objects

    def charge(self, i: int) -> dict[str, Any]:
        obj = dict(self.templates["charge"])
        charge = charge_id(i)
        obj.update(
            id=charge,
            amount=amount(i),
            amount_captured=amount(i),
            amount_refunded=refunded(i),
            created=self.account.start + STEP * i,
            metadata={"invoice_id": str(invoice_id(i))},
            payment_intent=pi_id(i),
            balance_transaction=f"txn_bench{i:010d}c",
            refunds={"object": "list", "data": [], "has_more": False, "url": f"/v1/charges/{charge}/refunds"},
        )
        return obj

    def payment_intent(self, i: int) -> dict[str, Any]:
        obj = dict(self.templates["payment_intent"])
        intent = pi_id(i)
        obj.update(
            id=intent,
            amount=amount(i),
            amount_received=amount(i),
            client_secret=f"{intent}_secret_bench",
            created=self.account.start + STEP * i,
            metadata={"invoice_id": str(invoice_id(i))},
            latest_charge=charge_id(i),
        )
        return obj

    def refund(self, k: int) -> dict[str, Any]:
        i = k * REFUND_EVERY
        obj = dict(self.templates["refund"])
        obj.update(
            id=refund_id(i),
            amount=refunded(i),
            charge=charge_id(i),
            payment_intent=pi_id(i),
            balance_transaction=f"txn_bench{i:010d}r",
            created=self.account.start + STEP * i + 1,
        )
        return obj

    def payout(self, p: int) -> dict[str, Any]:
        obj = dict(self.templates["payout"])
        created = self.account.payout_created(p)
        last = self.account.block(p)[-1]
        obj.update(
            id=payout_id(p),
            amount=self.payout_amounts[p],
            balance_transaction=f"txn_bench{last:010d}p",
            created=created,
            arrival_date=created + 2 * 24 * 3600,
        )
        return obj

    def _txn(self, kind: str, txn_id: str, amount_: int, fee_: int, source: str, created: int) -> dict[str, Any]:
        obj = dict(self.txn[kind])
        details = copy.copy(obj["fee_details"])
        if details:
            details = [{**details[0], "amount": fee_}]
        obj.update(
            id=txn_id,
            amount=amount_,
            fee=fee_,
            net=amount_ - fee_,
            source=source,
            created=created,
            available_on=created + 2 * 24 * 3600,
            fee_details=details,
        )
        return obj

    def charge_txn(self, i: int) -> dict[str, Any]:
        created = self.account.start + STEP * i
        return self._txn("charge", f"txn_bench{i:010d}c", amount(i), fee(i), charge_id(i), created)

    def refund_txn(self, k: int) -> dict[str, Any]:
        i = k * REFUND_EVERY
        created = self.account.start + STEP * i + 1
        return self._txn("refund", f"txn_bench{i:010d}r", -refunded(i), 0, refund_id(i), created)

    def payout_txn(self, p: int) -> dict[str, Any]:
        last = self.account.block(p)[-1]
        created = self.account.payout_created(p)
        return self._txn("payout", f"txn_bench{last:010d}p", -self.payout_amounts[p], 0, payout_id(p), created)

    # ------------------------------------------------------------------------------ listing

    def created_of(self, kind: str, object_id: str) -> int | None:
        """The creation second of an object of `kind` by id (a cursor); None if there is none."""
        try:
            if kind == "balance_transaction":
                index, suffix = int(object_id[9:-1]), object_id[-1]
                if not object_id.startswith("txn_bench") or suffix not in "crp":
                    return None
                return self.account.start + STEP * index + "crp".index(suffix)
            if kind == "payout":
                return self.account.payout_created(int(object_id.removeprefix("po_bench")))
            index = int(object_id.split("bench", 1)[1])
            return self.account.start + STEP * index + (1 if kind == "refund" else 0)
        except (ValueError, IndexError):
            return None

    def page(self, kind: str, query: dict[str, str]) -> tuple[int, bytes]:
        allowed = {"limit", "starting_after", "created[gte]", "created[lt]"} | (
            {"payout"} if kind == "balance_transaction" else set()
        )
        unknown = set(query) - allowed
        if unknown:
            return 400, _error(f"Received unknown parameter: {sorted(unknown)[0]}")
        limit = int(query.get("limit", "10"))
        if not 1 <= limit <= 100:
            return 400, _error("Invalid limit: must be between 1 and 100")
        low = int(query.get("created[gte]", "0"))
        high = int(query.get("created[lt]", str(2**62)))
        if "payout" in query:
            p = int(query["payout"].removeprefix("po_bench"))
            block = self.account.block(p)
            # What the payout carried, whatever the dates (Stripe ignores `created` with `payout=` too).
            low, high = self.account.start + STEP * block[0], self.account.payout_created(p) + 1
        if "starting_after" in query:
            cursor = self.created_of(kind, query["starting_after"])
            if cursor is None:
                return 400, _error(f"No such {kind}: '{query['starting_after']}'")
            high = min(high, cursor)
        candidates: list[tuple[int, str, Sequence_, int]] = []
        for tag, sequence in self.kinds[kind]:
            candidates += [(created, tag, sequence, k) for created, k in sequence.newest(low, high, limit + 1)]
        candidates.sort(key=lambda c: c[0], reverse=True)
        data = [sequence.make(k) for _, _, sequence, k in candidates[:limit]]
        body = {"object": "list", "url": PATHS[kind], "has_more": len(candidates) > limit, "data": data}
        return 200, msgspec.json.encode(body)


PATHS = {
    "/v1/balance_transactions": "balance_transaction",
    "/v1/charges": "charge",
    "/v1/refunds": "refund",
    "/v1/disputes": "dispute",
    "/v1/payouts": "payout",
    "/v1/payment_intents": "payment_intent",
}
PATHS.update({kind: path for path, kind in list(PATHS.items())})


def _error(message: str) -> bytes:
    return msgspec.json.encode({"error": {"type": "invalid_request_error", "message": message}})


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def app(generated: Generated) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI app: list pages, Bearer API_KEY required, Stripe's error shape otherwise."""
    expected = f"Bearer {API_KEY}".encode()

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        kind = PATHS.get(scope["path"])
        if headers.get(b"authorization") != expected:
            status, body = 401, _error("Invalid API Key provided")
        elif scope["method"] != "GET" or kind is None or scope["path"] != PATHS.get(kind):
            status, body = 404, _error(f"Unrecognized request URL ({scope['method']}: {scope['path']})")
        else:
            query = dict(parse_qsl(scope["query_string"].decode()))
            status, body = generated.page(kind, query)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"request-id", b"req_bench")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return asgi


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.stripe_generator")
    parser.add_argument("--payments", type=int, required=True)
    parser.add_argument("--start", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    generated = Generated(Account(args.payments, args.start))
    uvicorn.run(app(generated), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

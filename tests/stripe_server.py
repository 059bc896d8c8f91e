"""A Stripe-compatible HTTP server for tests: the real SDK talks to it over loopback.

It answers the endpoints our adapter calls, the way Stripe does:

- form-encoded bodies with nested keys (`metadata[invoice_id]`, `line_items[0][price_data][unit_amount]`);
- `Authorization: Bearer <key>` checked (401, Stripe-shaped error, otherwise);
- `Idempotency-Key` honoured: the same key with the same request replays the first response
  (`Idempotent-Replayed: true`); with a different one, 400 `idempotency_error`;
- `POST /v1/checkout/sessions`, `GET /v1/checkout/sessions/{id}`, `POST /v1/billing/meter_events`,
  `GET /v1/payment_intents/{id}`, `POST /v1/payment_intents/{id}/confirm`, `POST /v1/refunds`
  (`charge` or `payment_intent`, `amount`: all that is left by default, never more; the refund
  and its balance transaction are kept), with objects shaped like Stripe's own fixtures
  (fixtures3.json of stripe/openapi: the objects used are copied verbatim into
  tests/fixtures/stripe_objects.json) and our fields filled in;
- the list endpoints of balance transactions, charges, refunds, disputes, payouts and
  PaymentIntents, paged and filtered as Stripe's (tests/stripe_lists.py: `limit`,
  `starting_after`, `ending_before`, `created[...]`, `payout=`).

The account's records are seeded in Stripe's units (not the ledger's Money: tests/stripe_lists.py
says why): `seed_payment(amount=, currency=, fee=, invoice_id=, created=)` puts a succeeded
PaymentIntent, its charge and the charge's balance transaction in one call; `seed_charge`,
`seed_payment_intent`, `seed_balance_transaction`, `seed_refund(charge=...)`,
`seed_dispute(charge=...)` and `seed_payout(transactions=[...])` one object each (a refund,
dispute or payout with its own balance transaction), and `objects(kind)` shows them. Checkout
completions and successful or declined confirmations are recorded as charges too.

`add_failed_payment_intent(...)` puts a PaymentIntent whose last attempt failed (as Stripe
leaves one: `requires_payment_method`, the failed card in `last_payment_error.payment_method`);
`confirm_outcomes(pi, ...)` says what its next confirmations do (`succeeded` by default,
`declined`: a 402 `card_error` naming the PaymentIntent and the new failed charge, as Stripe
answers, or `processing`). A confirmation in a state that cannot be confirmed answers 400
`payment_intent_unexpected_state`.

`complete_session(id)` pays an open session as a customer would (the session `complete`/`paid`,
its PaymentIntent `succeeded`), so a test can send the webhooks Stripe would.

Every object it returns has every field the SDK's resource class declares: Stripe's example
objects, plus the fields API versions newer than the examples added (`NEWER_FIELDS`, null as
Stripe writes them when unused); tests/integration/test_stripe_server.py keeps that true.

`fail_next(kind, times)` makes the next requests fail with a Stripe error (`card_error` 402,
`rate_limit` 429, `api_error` 500, `authentication` 401, `permission` 403, `invalid_request`
400), or with what is not Stripe at all (`not_json_404`: an HTML 404, as a wrong
STRIPE_API_BASE or a proxy answers; `not_json_200`: an HTML page, as a captive proxy answers);
a failed request is not kept against its idempotency key, as Stripe does not keep requests
that never ran. Every request is recorded (`requests`) for assertions.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.served import ServedApp
from tests.stripe_lists import PATHS, ListRequestError, SeededPayment, StripeRecords

FIXTURES = Path(__file__).parent / "fixtures" / "stripe_objects.json"
API_KEY = "sk_test_ledger_0123456789"
SESSION_LIFETIME_SECONDS = 24 * 3600

ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "card_error": (
        402,
        {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "generic_decline",
            "message": "Your card was declined.",
        },
    ),
    "rate_limit": (429, {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests."}),
    "api_error": (500, {"type": "api_error", "message": "An unknown error occurred."}),
    "authentication": (401, {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_***"}),
    "permission": (403, {"type": "invalid_request_error", "message": "This key does not have the permissions."}),
    "invalid_request": (
        400,
        {"type": "invalid_request_error", "param": "currency", "message": "Invalid currency: xxx."},
    ),
}


# Not Stripe's API: a page from whatever answers at a wrong base URL.
NOT_JSON: dict[str, tuple[int, str]] = {
    "not_json_404": (404, "<html><body><h1>404 Not Found</h1>nginx</body></html>"),
    "not_json_200": (200, "<html><body><h1>Sign in to continue</h1></body></html>"),  # a captive proxy
}

# Fields the SDK's resource classes declare that Stripe's examples (fixtures3.json, written for an
# older API version) lack: each null, as Stripe writes an unused one.
NEWER_FIELDS: dict[str, tuple[str, ...]] = {
    "checkout.session": (
        "allowed_payment_method_types",
        "branding_settings",
        "excluded_payment_method_types",
        "line_items",
        "name_collection",
        "optional_items",
        "presentment_details",
        "redirect_on_completion",
        "return_url",
        "tax_id_collection",
    ),
    "payment_intent": (
        "allowed_payment_method_types",
        "hooks",
        "payment_details",
        "payment_record",
        "presentment_details",
    ),
    "billing.meter_event": (),
    "balance_transaction": (),
    "charge": ("authorization_code", "level3", "presentment_details", "radar_options", "transfer"),
    "refund": (
        "description",
        "failure_balance_transaction",
        "failure_reason",
        "instructions_email",
        "next_action",
        "pending_reason",
        "presentment_details",
    ),
    "dispute": ("intended_submission_method", "network_reason_code"),
    "payout": (),
}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, Any]
    status: int = 0


@dataclass
class StripeState:
    api_key: str
    base_url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    intent_metadata: dict[str, dict[str, str]] = field(default_factory=dict)  # by session id
    meter_events: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: StripeRecords = field(default_factory=lambda: StripeRecords(_resources()))
    confirm_outcomes: dict[str, list[str]] = field(default_factory=dict)
    idempotency: dict[str, tuple[str, int, Any]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    # Reentrant: a seeding helper may build on another (a payment's charge, its transaction).
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def payment_intents(self) -> dict[str, dict[str, Any]]:
        return self.records.kinds["payment_intent"].objects


def parse_form(body: bytes) -> dict[str, Any]:
    """Stripe's form encoding back into nested objects: `a[b][0][c]=x` -> {"a": {"b": [{"c": "x"}]}}."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False):
        parts = re.findall(r"[^\[\]]+", key) or [key]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {key: _lists(item) for key, item in value.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def _error(status: int, error: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"error": {**error, "request_log_url": "https://dashboard.stripe.com/test/logs"}}, status, headers
    )


def _resources() -> dict[str, Any]:
    resources: dict[str, Any] = json.loads(FIXTURES.read_text())["resources"]
    for resource, fields in NEWER_FIELDS.items():
        resources[resource] = {**dict.fromkeys(fields), **resources[resource]}
    return resources


class StripeServer:
    """The app served by uvicorn on a free loopback port until `stop()`."""

    def __init__(self, api_key: str = API_KEY) -> None:
        self.state = StripeState(api_key=api_key)
        self.resources = self.state.records.resources
        lists = [Route(path, self._list(kind), methods=["GET"]) for kind, path in PATHS.items()]
        asgi = Starlette(
            routes=[
                *lists,
                Route("/v1/refunds", self._create_refund, methods=["POST"]),
                Route("/v1/checkout/sessions", self._create_session, methods=["POST"]),
                Route("/v1/checkout/sessions/{session_id}", self._read_session, methods=["GET"]),
                Route("/v1/billing/meter_events", self._create_meter_event, methods=["POST"]),
                Route("/v1/payment_intents/{intent_id}", self._read_payment_intent, methods=["GET"]),
                Route("/v1/payment_intents/{intent_id}/confirm", self._confirm_payment_intent, methods=["POST"]),
                Route("/{path:path}", self._unknown, methods=["GET", "POST", "DELETE"]),
            ]
        )
        self._served = ServedApp(asgi, lifespan="off", name="the Stripe test server")
        self.base_url = self._served.base_url
        self.state.base_url = self.base_url

    def stop(self) -> None:
        self._served.stop()

    # ------------------------------------------------------------------------------ for tests

    def fail_next(self, kind: str, times: int = 1) -> None:
        """The next `times` requests fail with the Stripe error `kind` (see ERRORS)."""
        if kind not in ERRORS and kind not in NOT_JSON:
            raise ValueError(f"unknown Stripe error kind {kind!r}")
        with self.state.lock:
            self.state.failures.extend([kind] * times)

    @property
    def requests(self) -> list[Recorded]:
        with self.state.lock:
            return list(self.state.requests)

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    @property
    def sessions(self) -> dict[str, dict[str, Any]]:
        with self.state.lock:
            return copy.deepcopy(self.state.sessions)

    @property
    def payment_intents(self) -> dict[str, dict[str, Any]]:
        with self.state.lock:
            return copy.deepcopy(self.state.payment_intents)

    def add_failed_payment_intent(
        self,
        *,
        amount: int,
        currency: str,
        invoice_id: str | None = None,
        payment_method: str | None = "pm_card_chargeDeclined",
        status: str = "requires_payment_method",
    ) -> str:
        """A PaymentIntent whose last attempt was declined, as Stripe leaves it; its id."""
        intent_id = f"pi_{secrets.token_hex(12)}"
        intent = copy.deepcopy(self.resources["payment_intent"])
        charge = f"ch_{secrets.token_hex(12)}"
        intent.update(
            id=intent_id,
            amount=amount,
            amount_received=0,
            currency=currency,
            status=status,
            canceled_at=None,
            created=int(time.time()),
            metadata={"invoice_id": invoice_id} if invoice_id else {},
            payment_method=None,
            latest_charge=charge,
            next_action=None,
            last_payment_error=None
            if payment_method is None
            else _decline(charge, {"id": payment_method, "object": "payment_method", "type": "card"}),
        )
        with self.state.lock:
            self.state.records.kinds["payment_intent"].add(intent)
        return intent_id

    def complete_session(self, session_id: str, *, fee: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
        """Pay the open session as its customer would: (the session, its PaymentIntent), each as
        Stripe shows it afterwards, `payment_intent_data.metadata` on the intent and its charge;
        the charge and its balance transaction (`fee` kept by Stripe) are listed like any other."""
        with self.state.lock:
            session = self.state.sessions[session_id]
            paid = self.state.records.payment(
                amount=session["amount_total"],
                currency=session["currency"],
                fee=fee,
                metadata=dict(self.state.intent_metadata.get(session_id, {})),
            )
            intent = self.state.payment_intents[paid.payment_intent]
            session.update(status="complete", payment_status="paid", payment_intent=paid.payment_intent)
            return copy.deepcopy(session), copy.deepcopy(intent)

    # ------------------------------------------------------------------------------ the account's records
    # Amounts in Stripe's units (tests/stripe_lists.py says why); each answers the object's id.

    def seed_payment(
        self,
        *,
        amount: int,
        currency: str = "usd",
        fee: int = 0,
        invoice_id: str | None = None,
        metadata: dict[str, str] | None = None,
        created: int | None = None,
    ) -> SeededPayment:
        """A succeeded payment: PaymentIntent, charge and balance transaction (gross, fee, net)."""
        with self.state.lock:
            return self.state.records.payment(
                amount=amount, currency=currency, fee=fee, invoice_id=invoice_id, metadata=metadata, created=created
            )

    def seed_payment_intent(self, **fields: Any) -> str:
        """A PaymentIntent (`amount`, `currency`, `status`, `invoice_id`, `latest_charge`, `created`, ...)."""
        with self.state.lock:
            return str(self.state.records.payment_intent(**fields)["id"])

    def seed_charge(self, **fields: Any) -> str:
        """A charge (`amount`, `currency`, `payment_intent`, `invoice_id`, `status`, `balance_transaction`, ...)."""
        with self.state.lock:
            return str(self.state.records.charge(**fields)["id"])

    def seed_balance_transaction(self, **fields: Any) -> str:
        """A balance transaction (`amount`, `currency`, `fee`, `type`, `source`, `status`, `created`)."""
        with self.state.lock:
            return str(self.state.records.balance_transaction(**fields)["id"])

    def seed_refund(self, *, charge: str, **fields: Any) -> str:
        """A refund of a seeded charge (all that is left of it by default), with its balance transaction."""
        with self.state.lock:
            return str(self.state.records.refund(charge=charge, **fields)["id"])

    def seed_dispute(self, *, charge: str, **fields: Any) -> str:
        """A dispute of a seeded charge (`amount`, `status`, `reason`, `fee`), with its balance transaction."""
        with self.state.lock:
            return str(self.state.records.dispute(charge=charge, **fields)["id"])

    def seed_payout(self, *, transactions: Sequence[str] = (), **fields: Any) -> str:
        """A payout carrying seeded balance transactions (their net by default), with its own."""
        with self.state.lock:
            return str(self.state.records.payout(transactions=transactions, **fields)["id"])

    def objects(self, kind: str) -> dict[str, dict[str, Any]]:
        """A copy of every object of `kind` (`charge`, `refund`, ...) the account holds, by id."""
        with self.state.lock:
            return copy.deepcopy(self.state.records.kinds[kind].objects)

    def confirm_outcomes(self, intent_id: str, *outcomes: str) -> None:
        """What the next confirmations of the PaymentIntent do: succeeded, declined or processing."""
        if set(outcomes) - {"succeeded", "declined", "processing"}:
            raise ValueError(f"unknown confirmation outcomes {outcomes}")
        with self.state.lock:
            self.state.confirm_outcomes[intent_id] = list(outcomes)

    # ------------------------------------------------------------------------------ the protocol

    async def _handle(self, request: Request, answer: Any) -> Response:
        """Authentication, injected failures, idempotency, then `answer(form)` -> (status, object)."""
        body = await request.body()
        form = parse_form(body if request.method == "POST" else request.scope["query_string"])
        recorded = Recorded(request.method, request.url.path, dict(request.headers), form)
        with self.state.lock:
            self.state.requests.append(recorded)
            response = self._respond(request, body, form, answer)
            recorded.status = response.status_code
        return response

    def _respond(self, request: Request, body: bytes, form: dict[str, Any], answer: Any) -> Response:
        headers = {"Request-Id": f"req_{secrets.token_hex(7)}"}
        if "stripe-version" in request.headers:
            headers["Stripe-Version"] = request.headers["stripe-version"]
        if request.headers.get("authorization") != f"Bearer {self.state.api_key}":
            status, error = ERRORS["authentication"]
            return _error(status, error, headers)
        if self.state.failures and self.state.failures[0] in NOT_JSON:
            status, page = NOT_JSON[self.state.failures.pop(0)]
            return Response(page, status, media_type="text/html")
        if self.state.failures:
            status, error = ERRORS[self.state.failures.pop(0)]
            # Stripe's answers say whether a retry may help; the SDK follows them.
            headers["Stripe-Should-Retry"] = "true" if status in (429, 500) else "false"
            return _error(status, error, headers)
        key = request.headers.get("idempotency-key") if request.method == "POST" else None
        fingerprint = f"{request.method} {request.url.path} {body.decode()}"
        if key is not None and key in self.state.idempotency:
            first, status, content = self.state.idempotency[key]
            if first != fingerprint:
                message = (
                    "Keys for idempotent requests can only be used with the same parameters they were first used "
                    f"with. Try using a key other than '{key}' if you meant to execute a different request."
                )
                return _error(400, {"type": "idempotency_error", "message": message}, headers)
            return JSONResponse(content, status, {**headers, "Idempotent-Replayed": "true"})
        status, content = answer(form)
        if key is not None and status < 500:
            self.state.idempotency[key] = (fingerprint, status, content)
        return JSONResponse(content, status, headers)

    def _list(self, kind: str) -> Any:
        async def endpoint(request: Request) -> Response:
            def answer(query: dict[str, Any]) -> tuple[int, Any]:
                try:
                    return 200, self.state.records.page(kind, query)
                except ListRequestError as refused:
                    return refused.status, {"error": refused.error}

            return await self._handle(request, answer)

        return endpoint

    async def _create_refund(self, request: Request) -> Response:
        return await self._handle(request, self._new_refund)

    async def _create_session(self, request: Request) -> Response:
        return await self._handle(request, self._new_session)

    async def _read_session(self, request: Request) -> Response:
        session_id = request.path_params["session_id"]

        def answer(_: dict[str, Any]) -> tuple[int, Any]:
            if session_id not in self.state.sessions:
                return 404, _missing("checkout.session", session_id)
            return 200, self.state.sessions[session_id]

        return await self._handle(request, answer)

    async def _create_meter_event(self, request: Request) -> Response:
        return await self._handle(request, self._new_meter_event)

    async def _read_payment_intent(self, request: Request) -> Response:
        intent_id = request.path_params["intent_id"]

        def answer(_: dict[str, Any]) -> tuple[int, Any]:
            if intent_id not in self.state.payment_intents:
                return 404, _missing("payment_intent", intent_id)
            return 200, self.state.payment_intents[intent_id]

        return await self._handle(request, answer)

    async def _confirm_payment_intent(self, request: Request) -> Response:
        intent_id = request.path_params["intent_id"]
        return await self._handle(request, lambda form: self._confirm(intent_id, form))

    async def _unknown(self, request: Request) -> Response:
        def answer(_: dict[str, Any]) -> tuple[int, Any]:
            message = f"Unrecognized request URL ({request.method}: {request.url.path})."
            return 404, {"error": {"type": "invalid_request_error", "message": message}}

        return await self._handle(request, answer)

    # ------------------------------------------------------------------------------ the objects

    def _new_session(self, form: dict[str, Any]) -> tuple[int, Any]:
        missing = _missing_params(form, ["mode", "success_url", "line_items"])
        if missing is not None:
            return 400, missing
        items = form["line_items"]
        currencies = {item["price_data"]["currency"] for item in items}
        if len(currencies) != 1:
            return 400, _invalid("line_items", "All line items must share one currency.")
        try:
            total = sum(int(item["price_data"]["unit_amount"]) * int(item.get("quantity", "1")) for item in items)
        except (KeyError, ValueError):
            return 400, _invalid("line_items", "Invalid integer.")
        now = int(time.time())
        session_id = f"cs_test_{secrets.token_urlsafe(45).replace('-', 'a').replace('_', 'b')}"
        session = copy.deepcopy(self.resources["checkout.session"])
        session.update(
            id=session_id,
            object="checkout.session",
            mode=form["mode"],
            status="open",
            payment_status="unpaid",
            payment_intent=None,
            customer=None,
            customer_details=None,
            customer_email=form.get("customer_email"),
            client_reference_id=form.get("client_reference_id"),
            currency=currencies.pop(),
            amount_subtotal=total,
            amount_total=total,
            total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            metadata=form.get("metadata", {}),
            success_url=form["success_url"],
            cancel_url=form.get("cancel_url"),
            created=now,
            expires_at=now + SESSION_LIFETIME_SECONDS,
            livemode=False,
            url=f"{self.base_url}/c/pay/{session_id}",
            shipping_cost=None,
            shipping_address_collection=None,
            currency_conversion=None,
        )
        self.state.sessions[session_id] = session
        # Kept for `complete_session` (Stripe puts it on the PaymentIntent it creates then).
        self.state.intent_metadata[session_id] = (form.get("payment_intent_data") or {}).get("metadata", {})
        return 200, session

    def _new_meter_event(self, form: dict[str, Any]) -> tuple[int, Any]:
        missing = _missing_params(form, ["event_name", "payload"])
        if missing is not None:
            return 400, missing
        identifier = form.get("identifier") or secrets.token_hex(8)
        event = copy.deepcopy(self.resources["billing.meter_event"])
        event.update(
            event_name=form["event_name"],
            identifier=identifier,
            payload=form["payload"],
            created=int(time.time()),
            timestamp=int(form.get("timestamp") or time.time()),
            livemode=False,
        )
        self.state.meter_events.setdefault(identifier, event)
        return 200, self.state.meter_events[identifier]

    def _new_refund(self, form: dict[str, Any]) -> tuple[int, Any]:
        records = self.state.records
        charge_id = form.get("charge")
        if not charge_id and form.get("payment_intent"):
            intent = records.get("payment_intent", form["payment_intent"])
            if intent is None:
                return 400, {
                    "error": _missing("payment_intent", form["payment_intent"])["error"] | {"param": "payment_intent"}
                }
            charge_id = intent["latest_charge"]
        if not charge_id:
            return 400, _invalid(
                "charge", "One of the following params should be provided for this request: payment_intent or charge."
            )
        charge = records.get("charge", charge_id)
        if charge is None:
            return 400, {"error": _missing("charge", charge_id)["error"] | {"param": "charge"}}
        left = charge["amount_captured"] - charge["amount_refunded"]
        if left <= 0:
            error = {"type": "invalid_request_error", "code": "charge_already_refunded"}
            return 400, {"error": error | {"message": f"Charge {charge_id} has already been refunded."}}
        amount = left
        if "amount" in form:
            if not str(form["amount"]).isdigit() or int(form["amount"]) < 1:
                return 400, _invalid("amount", f"Invalid positive integer: {form['amount']}")
            amount = int(form["amount"])
        if amount > left:
            message = f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})"
            return 400, _invalid("amount", message)
        return 200, records.refund(charge=charge_id, amount=amount, reason=form.get("reason"))

    def _confirm(self, intent_id: str, form: dict[str, Any]) -> tuple[int, Any]:
        intent = self.state.payment_intents.get(intent_id)
        if intent is None:
            return 404, _missing("payment_intent", intent_id)
        if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
            message = (
                f"You cannot confirm this PaymentIntent because it has a status of {intent['status']}. "
                "Only a PaymentIntent with one of the following statuses may be confirmed: "
                "requires_confirmation, requires_action, requires_payment_method."
            )
            error = {"type": "invalid_request_error", "code": "payment_intent_unexpected_state", "message": message}
            return 400, {"error": {**error, "payment_intent": intent}}
        method = form.get("payment_method") or intent["payment_method"]
        if not method:
            return 400, _invalid("payment_method", "You cannot confirm this PaymentIntent: it has no payment method.")
        outcomes = self.state.confirm_outcomes.get(intent_id) or []
        outcome = outcomes.pop(0) if outcomes else "succeeded"
        charge = f"ch_{secrets.token_hex(12)}"
        intent["latest_charge"] = charge
        records = self.state.records
        money = {"amount": intent["amount"], "currency": intent["currency"]}
        if outcome == "declined":
            records.charge(
                **money, payment_intent=intent_id, metadata=intent["metadata"], status="failed", object_id=charge
            )
            error = _decline(charge, {"id": method, "object": "payment_method", "type": "card"})
            intent.update(status="requires_payment_method", payment_method=None, last_payment_error=error)
            return 402, {"error": {**error, "payment_intent": copy.deepcopy(intent)}}
        intent.update(status=outcome, payment_method=method, last_payment_error=None)
        if outcome == "succeeded":
            intent["amount_received"] = intent["amount"]
            txn = records.balance_transaction(**money, source=charge)
            records.charge(
                **money,
                payment_intent=intent_id,
                metadata=intent["metadata"],
                balance_transaction=txn["id"],
                object_id=charge,
            )
        return 200, intent


def _decline(charge: str, payment_method: dict[str, Any]) -> dict[str, Any]:
    """Stripe's `last_payment_error` (and 402 error body) for a declined card."""
    return {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
        "charge": charge,
        "payment_method": payment_method,
        "doc_url": "https://stripe.com/docs/error-codes/card-declined",
    }


def _missing_params(form: dict[str, Any], names: list[str]) -> dict[str, Any] | None:
    for name in names:
        if not form.get(name):
            return {
                "error": {"type": "invalid_request_error", "param": name, "message": f"Missing required param: {name}."}
            }
    return None


def _invalid(param: str, message: str) -> dict[str, Any]:
    return {"error": {"type": "invalid_request_error", "param": param, "message": message}}


def _missing(kind: str, object_id: str) -> dict[str, Any]:
    return {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": "id",
            "message": f"No such {kind}: '{object_id}'",
        }
    }

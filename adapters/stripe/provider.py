"""`PaymentProvider` on Stripe, through `stripe.StripeClient`.

Errors are mapped at this boundary, as httpx maps httpcore's: nothing above it ever sees a
`stripe.*` exception.

    stripe.StripeError
    ├── CardError                        -> PaymentDeclinedError         (402)
    ├── IdempotencyError                 -> IdempotencyKeyReusedError    (422: same key, other request)
    ├── RateLimitError                   -> ProviderUnavailableError     (503)
    ├── APIConnectionError               -> ProviderUnavailableError     (503: timeout, refused, reset)
    ├── APIError                         -> ProviderUnavailableError     (503: Stripe's 5xx)
    │     with a 4xx and a body that is
    │     not JSON                       -> ProviderConfigurationError   (503: not Stripe's API at
    │                                                                     STRIPE_API_BASE, or a proxy)
    ├── AuthenticationError              -> ProviderConfigurationError   (503: bad key)
    ├── PermissionError                  -> ProviderConfigurationError   (503: restricted key)
    ├── InvalidRequestError              -> ProviderConfigurationError   (503: we sent what Stripe refuses)
    └── anything else                    -> ProviderUnavailableError

A payment retry (`retry_payment`) answers two InvalidRequestErrors itself, since they are
facts about the payment, not our setup: `resource_missing` (no such PaymentIntent) and
`payment_intent_unexpected_state` (it cannot be confirmed now) are `not_retryable`.

Amounts cross in Stripe's units for their currency (adapters/stripe/currency.py): an amount
Stripe cannot take raises StripeAmountError (422) before any request. Every request is typed
with the SDK's own parameter TypedDicts, so mypy checks its shape against Stripe's.

The API version of our requests is pinned to the one this SDK release was generated for, so an
upgrade of the account's default version cannot change the responses we read. Webhook payloads
are another matter: Stripe writes them in the webhook endpoint's version (docs/stripe.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import stripe
from stripe.params import PaymentIntentConfirmParams
from stripe.params.billing import MeterEventCreateParams
from stripe.params.checkout import SessionCreateParams

from adapters.stripe.currency import to_stripe
from adapters.stripe.payloads import read_retried_intent
from commands.ports import ATTEMPTED, NOT_RETRYABLE, SETTLED, CheckoutSession, PaymentRetry
from ledger.errors import (
    IdempotencyKeyReusedError,
    PaymentDeclinedError,
    ProviderConfigurationError,
    ProviderError,
    ProviderUnavailableError,
)
from ledger.money import Money

STRIPE_API_VERSION: str = stripe.api_version
# A web request waits on these calls: fail within seconds rather than Stripe's default 80 s.
TIMEOUT_SECONDS = 20.0
MAX_NETWORK_RETRIES = 2
# 4xx statuses that say "later", whatever the body: a timeout, a conflict, a rate limit.
_TRANSIENT = (408, 409, 429)

# A PaymentIntent whose last attempt failed waits in one of these for another confirmation.
RETRYABLE_STATUSES = ("requires_payment_method", "requires_confirmation")
# Money is moving or moved already: no new attempt.
IN_FLIGHT_STATUSES = ("succeeded", "processing", "requires_capture")


class StripePaymentProvider:
    """Checkout Sessions, payment retries and meter events on Stripe (or on a Stripe-compatible server at
    `api_base`, e.g. the test server in tests/stripe_server.py)."""

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        api_version: str = STRIPE_API_VERSION,
        max_network_retries: int = MAX_NETWORK_RETRIES,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        if not api_key:
            raise ProviderConfigurationError("set STRIPE_API_KEY to take payments with Stripe")
        self.api_version = api_version
        # The SDK's default client (requests), with our timeout: it keeps a session per thread;
        # urllib3 closes a pool's connections when the pool is collected.
        self._http = stripe.RequestsClient(timeout=timeout)
        self._client = stripe.StripeClient(
            api_key,
            stripe_version=api_version,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    def close(self) -> None:
        """Close the connections this thread keeps open to Stripe (other threads' close when collected)."""
        self._http.close()  # type: ignore[no-untyped-call]

    def create_checkout_session(
        self,
        *,
        invoice_id: str,
        amount: int,
        currency: str,
        customer_email: str,
        description: str,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> CheckoutSession:
        """One line for the amount due: the invoice's own lines are already priced and taxed by us."""
        metadata = {"invoice_id": invoice_id}
        unit_amount = to_stripe(Money(amount, currency))  # refused here, before any request
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency,
                        "unit_amount": unit_amount,
                        "product_data": {"name": description},
                    },
                }
            ],
            "customer_email": customer_email,
            "client_reference_id": invoice_id,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": metadata,
            "payment_intent_data": {"description": description, "metadata": metadata},
        }
        with stripe_errors_mapped(idempotency_key):
            session = self._client.v1.checkout.sessions.create(
                params=params,
                options={"idempotency_key": idempotency_key},
            )
        payment_intent = session.payment_intent
        return CheckoutSession(
            id=session.id,
            url=session.url or "",
            payment_intent_id=payment_intent if isinstance(payment_intent, str | None) else payment_intent.id,
            expires_at=datetime.fromtimestamp(session.expires_at, UTC),
        )

    def report_meter_event(
        self, *, event_name: str, customer_id: str, value: int, identifier: str, at: datetime
    ) -> None:
        """Stripe counts an `identifier` once; it is also the request's idempotency key."""
        params: MeterEventCreateParams = {
            "event_name": event_name,
            "payload": {"stripe_customer_id": customer_id, "value": str(value)},
            "identifier": identifier,
            "timestamp": int(at.timestamp()),
        }
        key = f"meter-event-{identifier}"
        with stripe_errors_mapped(key):
            self._client.v1.billing.meter_events.create(
                params=params,
                options={"idempotency_key": key},
            )

    def retry_payment(self, *, provider_payment_id: str, idempotency_key: str) -> PaymentRetry:
        """Confirm the PaymentIntent again, off-session, with the payment method it last failed with.

        Read first: a PaymentIntent that succeeded or is processing is `settled`, one that was
        canceled, has no payment method left or does not exist is `not_retryable`. A decline
        raises PaymentDeclinedError (a CardError, like any other).
        """
        intents = self._client.v1.payment_intents
        with stripe_errors_mapped(idempotency_key):
            try:
                answer = intents.retrieve(provider_payment_id).to_dict()
            except stripe.InvalidRequestError as error:
                if error.code != "resource_missing":
                    raise
                return PaymentRetry(
                    provider_payment_id, NOT_RETRYABLE, "missing", f"Stripe has no {provider_payment_id}"
                )
        try:
            intent = read_retried_intent(answer)
        except ValueError as error:  # not what Stripe's API answers: something else is at api_base
            raise ProviderConfigurationError(str(error)) from None
        status = intent.status
        if status in IN_FLIGHT_STATUSES:
            return PaymentRetry(provider_payment_id, SETTLED, status)
        method = intent.failed_payment_method()
        if status not in RETRYABLE_STATUSES or method is None:
            detail = f"the PaymentIntent is {status}" + ("" if method else " and has no payment method")
            return PaymentRetry(provider_payment_id, NOT_RETRYABLE, status, detail)
        params: PaymentIntentConfirmParams = {"payment_method": method, "off_session": True}
        with stripe_errors_mapped(idempotency_key):
            try:
                confirmed = intents.confirm(
                    provider_payment_id, params=params, options={"idempotency_key": idempotency_key}
                )
            except stripe.InvalidRequestError as error:
                if error.code != "payment_intent_unexpected_state":
                    raise
                return PaymentRetry(provider_payment_id, NOT_RETRYABLE, status, f"Stripe: {error.user_message}")
        return PaymentRetry(provider_payment_id, ATTEMPTED, str(confirmed.status))


@contextmanager
def stripe_errors_mapped(idempotency_key: str) -> Iterator[None]:
    """Turn every Stripe error into the ledger's ProviderError branch (or a reused key into 422)."""
    try:
        yield
    except stripe.StripeError as error:
        raise _mapped(error, idempotency_key) from error


def _mapped(error: stripe.StripeError, idempotency_key: str) -> ProviderError | IdempotencyKeyReusedError:
    request_id = error.request_id
    detail = f"Stripe: {error.user_message or type(error).__name__}" + (
        f" (request {request_id})" if request_id else ""
    )
    if isinstance(error, stripe.CardError):
        return PaymentDeclinedError(detail, request_id=request_id)
    if isinstance(error, stripe.IdempotencyError):
        return IdempotencyKeyReusedError(idempotency_key)
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError | stripe.InvalidRequestError):
        return ProviderConfigurationError(detail, request_id=request_id)
    status = error.http_status
    if isinstance(error, stripe.APIError) and status is not None and 400 <= status < 500 and status not in _TRANSIENT:
        # Stripe answers every error with JSON; a 4xx without is not from Stripe's API: a wrong
        # STRIPE_API_BASE, a proxy or a firewall in the way. Retrying the same will not help.
        return ProviderConfigurationError(
            f"the Stripe API answered {status} with a body that is not JSON: check STRIPE_API_BASE and any proxy "
            "between us and Stripe (a configuration error, not a temporary failure)"
            + (f" (request {request_id})" if request_id else ""),
            request_id=request_id,
        )
    return ProviderUnavailableError(detail, request_id=request_id)

"""`PaymentProvider` on Stripe, through `stripe.StripeClient` (built, and its errors mapped, by
adapters/stripe/client.py: nothing above this module ever sees a `stripe.*` exception).

A payment retry (`retry_payment`) answers two InvalidRequestErrors itself, since they are
facts about the payment, not our setup: `resource_missing` (no such PaymentIntent) and
`payment_intent_unexpected_state` (it cannot be confirmed now) are `not_retryable`.

Amounts cross in Stripe's units for their currency (adapters/stripe/currency.py): an amount
Stripe cannot take raises StripeAmountError (422) before any request. Every request is typed
with the SDK's own parameter TypedDicts, so mypy checks its shape against Stripe's.

Requests pin the SDK's API version (adapters/stripe/client.py). Webhook payloads are another
matter: Stripe writes them in the webhook endpoint's version (docs/stripe.md).
"""

from __future__ import annotations

from datetime import UTC, datetime

import stripe
from stripe.params import PaymentIntentConfirmParams, RefundCreateParams
from stripe.params.billing import MeterEventCreateParams
from stripe.params.checkout import SessionCreateParams

from adapters.stripe.client import MAX_NETWORK_RETRIES, STRIPE_API_VERSION, TIMEOUT_SECONDS, StripeConnection
from adapters.stripe.currency import to_stripe
from adapters.stripe.payloads import read_retried_intent
from commands.ports import ATTEMPTED, NOT_RETRYABLE, SETTLED, CheckoutSession, PaymentRetry
from ledger.errors import ProviderConfigurationError
from ledger.money import Money

# A PaymentIntent whose last attempt failed waits in one of these for another confirmation.
RETRYABLE_STATUSES = ("requires_payment_method", "requires_confirmation")
# Money is moving or moved already: no new attempt.
IN_FLIGHT_STATUSES = ("succeeded", "processing", "requires_capture")


class StripePaymentProvider:
    """Checkout Sessions, payment retries, refunds and meter events on Stripe (or on a Stripe-compatible server at
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
        self._stripe = StripeConnection(
            api_key,
            needed_for="take payments with Stripe",
            api_base=api_base,
            api_version=api_version,
            max_network_retries=max_network_retries,
            timeout=timeout,
        )
        self.api_version = api_version
        self._client = self._stripe.client

    def close(self) -> None:
        """Close the connections this thread keeps open to Stripe (other threads' close when collected)."""
        self._stripe.close()

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
        with self._stripe.errors_mapped(idempotency_key):
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
        with self._stripe.errors_mapped(key):
            self._client.v1.billing.meter_events.create(
                params=params,
                options={"idempotency_key": key},
            )

    def refund_charge(self, *, charge_id: str, amount: int, currency: str, idempotency_key: str) -> str:
        """Refund `amount` (ledger minor units of `currency`, the charge's) of a charge; the refund's id.

        Only `charge` and `amount` are sent: Stripe refunds in the charge's currency. The refund
        reaches the ledger as a webhook (`refund.created`, `charge.refunded`), like any other.
        """
        params: RefundCreateParams = {"charge": charge_id, "amount": to_stripe(Money(amount, currency))}
        with self._stripe.errors_mapped(idempotency_key):
            refund = self._client.v1.refunds.create(params=params, options={"idempotency_key": idempotency_key})
        return refund.id

    def retry_payment(self, *, provider_payment_id: str, idempotency_key: str) -> PaymentRetry:
        """Confirm the PaymentIntent again, off-session, with the payment method it last failed with.

        Read first: a PaymentIntent that succeeded or is processing is `settled`, one that was
        canceled, has no payment method left or does not exist is `not_retryable`. A decline
        raises PaymentDeclinedError (a CardError, like any other).
        """
        intents = self._client.v1.payment_intents
        with self._stripe.errors_mapped(idempotency_key):
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
        with self._stripe.errors_mapped(idempotency_key):
            try:
                confirmed = intents.confirm(
                    provider_payment_id, params=params, options={"idempotency_key": idempotency_key}
                )
            except stripe.InvalidRequestError as error:
                if error.code != "payment_intent_unexpected_state":
                    raise
                return PaymentRetry(provider_payment_id, NOT_RETRYABLE, status, f"Stripe: {error.user_message}")
        return PaymentRetry(provider_payment_id, ATTEMPTED, str(confirmed.status))

"""One way to reach Stripe, shared by the payment provider and the records reader: the client
(API key, `STRIPE_API_BASE`, the pinned API version, timeout, the SDK's own network retries)
and the mapping of Stripe's errors onto the ledger's, at this boundary, as httpx maps
httpcore's: nothing above the adapter ever sees a `stripe.*` exception.

    stripe.StripeError
    ├── CardError                        -> PaymentDeclinedError         (402)
    ├── IdempotencyError                 -> IdempotencyKeyReusedError    (422: same key, other request)
    ├── RateLimitError                   -> ProviderUnavailableError     (503)
    ├── APIConnectionError               -> ProviderUnavailableError     (503: timeout, refused, reset)
    ├── APIError                         -> ProviderUnavailableError     (503: Stripe's 5xx)
    │     below 500 with a body that is
    │     not JSON                       -> ProviderConfigurationError   (503: not Stripe's API at
    │                                                                     STRIPE_API_BASE, or a proxy)
    ├── AuthenticationError              -> ProviderConfigurationError   (503: bad key, named masked)
    ├── PermissionError                  -> ProviderConfigurationError   (503: restricted key, named masked)
    ├── InvalidRequestError              -> ProviderConfigurationError   (503: we sent what Stripe refuses)
    └── anything else                    -> ProviderUnavailableError

The API version of our requests is pinned to the one this SDK release was generated for, so an
upgrade of the account's default version cannot change the responses we read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import stripe

from ledger.errors import (
    IdempotencyKeyReusedError,
    PaymentDeclinedError,
    ProviderConfigurationError,
    ProviderError,
    ProviderUnavailableError,
)

STRIPE_API_VERSION: str = stripe.api_version
# A web request waits on these calls: fail within seconds rather than Stripe's default 80 s.
TIMEOUT_SECONDS = 20.0
MAX_NETWORK_RETRIES = 2
# 4xx statuses that say "later", whatever the body: a timeout, a conflict, a rate limit.
_TRANSIENT = (408, 409, 429)


def masked(api_key: str) -> str:
    """`sk_test_...6789`: enough to tell which key was used, not enough to use it."""
    parts = api_key.split("_")
    prefix = "_".join(parts[:2]) + "_" if len(parts) > 2 and len(parts[0]) == 2 else ""
    # A key too short to be a real one shows no tail: four of eight characters would be half of it.
    tail = api_key[-4:] if len(api_key) - len(prefix) >= 12 else ""
    return f"{prefix}...{tail}"


class StripeConnection:
    """A `stripe.StripeClient` on Stripe (or on a Stripe-compatible server at `api_base`, e.g. the
    test server in tests/stripe_server.py), with its HTTP client and its error mapping."""

    def __init__(
        self,
        api_key: str,
        *,
        needed_for: str,
        api_base: str | None = None,
        api_version: str = STRIPE_API_VERSION,
        max_network_retries: int = MAX_NETWORK_RETRIES,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        if not api_key:
            raise ProviderConfigurationError(f"set STRIPE_API_KEY to {needed_for}")
        self.api_version = api_version
        self.masked_key = masked(api_key)
        # The SDK's default client (requests), with our timeout: it keeps a session per thread;
        # urllib3 closes a pool's connections when the pool is collected.
        self._http = stripe.RequestsClient(timeout=timeout)
        self.client = stripe.StripeClient(
            api_key,
            stripe_version=api_version,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    def close(self) -> None:
        """Close the connections this thread keeps open to Stripe (other threads' close when collected)."""
        self._http.close()  # type: ignore[no-untyped-call]

    @contextmanager
    def errors_mapped(self, idempotency_key: str | None = None) -> Iterator[None]:
        """Turn every Stripe error into the ledger's ProviderError branch (or a reused key into 422)."""
        try:
            yield
        except stripe.StripeError as error:
            raise mapped(error, idempotency_key, self.masked_key) from error


def mapped(
    error: stripe.StripeError, idempotency_key: str | None, masked_key: str
) -> ProviderError | IdempotencyKeyReusedError:
    """The ledger's error for a Stripe error (the tree in this module's docstring)."""
    request_id = error.request_id
    request = f" (request {request_id})" if request_id else ""
    detail = f"Stripe: {error.user_message or type(error).__name__}{request}"
    if isinstance(error, stripe.CardError):
        return PaymentDeclinedError(detail, request_id=request_id)
    if isinstance(error, stripe.IdempotencyError) and idempotency_key is not None:
        return IdempotencyKeyReusedError(idempotency_key)
    if isinstance(error, stripe.AuthenticationError):
        return ProviderConfigurationError(
            f"{detail}: Stripe refused the API key {masked_key}; check STRIPE_API_KEY", request_id=request_id
        )
    if isinstance(error, stripe.PermissionError):
        return ProviderConfigurationError(
            f"{detail}: the API key {masked_key} (STRIPE_API_KEY) may not do this; a restricted key needs "
            "the permission",
            request_id=request_id,
        )
    if isinstance(error, stripe.InvalidRequestError | stripe.IdempotencyError):
        return ProviderConfigurationError(detail, request_id=request_id)
    status = error.http_status
    if isinstance(error, stripe.APIError) and status is not None and status < 500 and status not in _TRANSIENT:
        # Stripe answers every error with JSON; a 4xx without is not from Stripe's API: a wrong
        # STRIPE_API_BASE, a proxy or a firewall in the way. Retrying the same will not help.
        return ProviderConfigurationError(
            f"the Stripe API answered {status} with a body that is not JSON: check STRIPE_API_BASE and any proxy "
            f"between us and Stripe (a configuration error, not a temporary failure){request}",
            request_id=request_id,
        )
    return ProviderUnavailableError(detail, request_id=request_id)

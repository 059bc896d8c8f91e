"""What the web layer is given by the composition root: the application, the read side, a clock,
the payment provider (None when Stripe is not configured), the dashboard's sessions and login limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from adapters.admin.sessions import SessionStore
from commands.application import BillingApplication
from commands.ingestion.provider_events import WebhookVerifier
from commands.ingestion.stripe_events import StripeIngestion
from commands.ports import Clock, PaymentProvider
from commands.reconciliation.facts import ProviderRecords
from ledger.dunning.policy import DunningPolicy
from ledger.seller import Seller
from projections.queries import Page, list_invoices
from web.limiter import LoginLimiter
from web.rendered import RenderedInvoices

STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"


class ReadSide(Protocol):
    """The read models in this process: `catch_up` applies what is logged so far."""

    @property
    def engine(self) -> Any: ...

    def catch_up(self) -> None: ...


@dataclass
class Services:
    app: BillingApplication
    read_models: ReadSide
    clock: Clock
    api_token: str
    rendered: RenderedInvoices = field(default_factory=RenderedInvoices)
    # True when the store is a local file (SQLite): its single-row reads are cheaper on the
    # event loop than a trip to a worker thread. Never for a networked database.
    inline_reads: bool = False
    payments: PaymentProvider | None = None
    # The base URL customers reach us at (LEDGER_PUBLIC_URL), for Checkout's default return pages;
    # None: the URL the API request came in on.
    public_url: str | None = None
    # Checks webhook deliveries (adapters/stripe/webhooks.py); None when no secret is configured.
    webhooks: WebhookVerifier | None = None
    # Whether the database answers now, on a connection of its own (adapters/persistence.py's
    # database_probe), for /healthz; None: whether the event store can read its head.
    database_up: Callable[[], bool] | None = None
    # The provider's records for reconciliation runs (adapters/stripe/listing.py); None without Stripe.
    records: ProviderRecords | None = None
    # The dunning schedule in force (LEDGER_DUNNING_SCHEDULE): a dunning started by hand from the
    # dashboard (retry now, send reminder) keeps it, as one started by `ledger dunning run` does.
    dunning_policy: DunningPolicy = field(default_factory=DunningPolicy.parse)
    # The dashboard's server-side sessions (adapters/admin/sessions.py); None: built on the read
    # side's engine with this clock at first use (session_store()).
    admin_sessions: SessionStore | None = None
    # Failed dashboard logins, limited per account and per client address.
    login_limiter: LoginLimiter = field(default_factory=LoginLimiter)
    # Whether the session cookie is marked Secure; None: when the request came over https or
    # public_url is https.
    secure_cookies: bool | None = None
    # Who issues the invoices (LEDGER_SELLER_*), printed on PDFs and emails.
    seller: Seller = field(default_factory=Seller)
    # LEDGER_PDF_FONT_DIR: the invoice PDFs' fonts; None: Debian's fonts-dejavu-core (adapters/pdf/fonts.py).
    pdf_font_dir: Path | None = None
    # Where the payment provider's hosted checkout pages are: the portal's Pay form is answered
    # with a redirect there, which its Content-Security-Policy (form-action) must allow.
    checkout_origins: tuple[str, ...] = (STRIPE_CHECKOUT_ORIGIN,)
    # LEDGER_SECRET_KEY: signs the client portal's links; None: the portal is off.
    secret_key: str | None = None
    # Records and handles verified deliveries, several to a commit when they arrive together.
    ingestion: StripeIngestion = field(init=False)

    def __post_init__(self) -> None:
        self.ingestion = StripeIngestion(self.app)

    def session_store(self) -> SessionStore:
        if self.admin_sessions is None:
            self.admin_sessions = SessionStore(self.read_models.engine, clock=self.clock)
        return self.admin_sessions

    def list_invoices(self, **filters: Any) -> Page:
        return list_invoices(self.read_models.engine, **filters)

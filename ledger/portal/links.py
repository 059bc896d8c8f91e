"""A portal link: what lets whoever holds it see one customer's invoices, until it expires or is
revoked.

The link is an aggregate (id uuid4, unguessable) whose token is signed by the application
(commands/portal/tokens.py): the URL carries the id and its signature, never the customer's email,
and the store says whose invoices the link shows, until when, and whether it still may.

    issued ──revoke──> revoked          (and, whatever its state, expired after `expires_at`)

Whether a link still opens is decided at a moment the caller gives (`require_usable(at=...)`),
so a test's fake clock and the request's clock are the same thing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from ledger.admin.users import normalize_email
from ledger.errors import InvalidDateError, InvalidInputError, NotFoundError
from ledger.events import CopiedCheaply, SharedWhenCopied
from ledger.validation import require_text

# Who asked for a link: the CLI, the API, Checkout's return pages, an invoice email, the dashboard.
ISSUERS = ("cli", "api", "checkout", "mail", "dashboard")
MAX_LIFETIME = timedelta(days=366)  # a link is a bearer credential: no link for ever
REASON_LIMIT = 500

ACTIVE = "active"
EXPIRED = "expired"
REVOKED = "revoked"


class PortalLink(CopiedCheaply, Aggregate):
    TOPIC = "portal-link"

    class Event(SharedWhenCopied, Aggregate.Event):
        pass

    class Issued(Event, Aggregate.Created):
        TOPIC = "portal-link.issued"
        customer_email: str  # normalized: stripped, lower-case
        invoice_id: str | None  # the invoice it was made for, if any (it shows all the customer's)
        expires_at: str  # ISO 8601, UTC
        issued_by: str

    class Revoked(Event):
        TOPIC = "portal-link.revoked"
        reason: str

        def apply(self, aggregate: PortalLink) -> None:
            aggregate.revoked_at = self.timestamp
            aggregate.revoked_reason = self.reason

    Created = Issued

    def __init__(self, customer_email: str, invoice_id: str | None, expires_at: str, issued_by: str) -> None:
        self.customer_email = customer_email
        self.invoice_id = invoice_id
        self.expires_at = expires_at
        self.issued_by = issued_by
        self.revoked_at: datetime | None = None
        self.revoked_reason: str | None = None

    @classmethod
    def issue(
        cls,
        *,
        customer_email: object,
        expires_at: datetime,
        invoice_id: UUID | None,
        issued_by: object,
        at: datetime,
        link_id: UUID | None = None,
    ) -> PortalLink:
        """A new link for the customer, valid until `expires_at` (after `at`, within MAX_LIFETIME)."""
        email = normalize_email(customer_email)
        if issued_by not in ISSUERS:
            message = f"issued_by must be one of {', '.join(ISSUERS)}, not {issued_by!r}"
            raise InvalidInputError(message, field="issued_by")
        if expires_at.tzinfo is None:
            raise InvalidDateError("expires_at needs a timezone, e.g. 2026-05-01T00:00:00Z", field="expires_at")
        if expires_at <= at:
            raise InvalidDateError(f"expires_at {expires_at.isoformat()} is not in the future", field="expires_at")
        if expires_at - at > MAX_LIFETIME:
            raise InvalidDateError(f"a portal link lives at most {MAX_LIFETIME.days} days", field="expires_at")
        return cls._create(
            cls.Issued,
            id=link_id or uuid4(),
            timestamp=at,
            customer_email=email,
            invoice_id=None if invoice_id is None else str(invoice_id),
            expires_at=expires_at.isoformat(),
            issued_by=str(issued_by),
        )

    def revoke(self, *, reason: object, at: datetime) -> bool:
        """Revoke the link for good; False (nothing stored) when it was revoked already."""
        said = require_text(reason, field="reason", limit=REASON_LIMIT, required=False)
        if self.revoked_at is not None:
            return False
        self.trigger_event(self.Revoked, timestamp=at, reason=said)
        return True

    @property
    def expiry(self) -> datetime:
        return datetime.fromisoformat(self.expires_at)

    def status(self, *, at: datetime) -> str:
        if self.revoked_at is not None:
            return REVOKED
        return EXPIRED if at >= self.expiry else ACTIVE

    def require_usable(self, *, at: datetime) -> None:
        """Refuse a revoked link (PortalLinkRevokedError) or one past its expiry (PortalLinkExpiredError)."""
        state = self.status(at=at)
        if state == REVOKED:
            raise PortalLinkRevokedError(self.id)
        if state == EXPIRED:
            raise PortalLinkExpiredError(self.id, self.expiry)

    def shows(self, customer_email: str) -> bool:
        """Whether an invoice billed to this address is this link's customer's (case aside, as
        `normalize_email` keeps it)."""
        return customer_email.strip().lower() == self.customer_email


class PortalLinkNotFoundError(NotFoundError):
    """No portal link has that id."""

    def __init__(self, link_id: UUID) -> None:
        super().__init__(f"portal link {link_id} not found")
        self.link_id = link_id


class PortalLinkGoneError(NotFoundError):
    """The link existed and no longer opens (the portal answers 410 Gone; elsewhere a 404)."""


class PortalLinkExpiredError(PortalLinkGoneError):
    def __init__(self, link_id: UUID, expired_at: datetime) -> None:
        super().__init__(f"portal link {link_id} expired at {expired_at.isoformat()}")
        self.link_id = link_id


class PortalLinkRevokedError(PortalLinkGoneError):
    def __init__(self, link_id: UUID) -> None:
        super().__init__(f"portal link {link_id} was revoked")
        self.link_id = link_id

"""The portal's links (`app.portal`): issue, revoke, read, and the link for one invoice's customer.

A link is a `PortalLink` aggregate (ledger/portal/links.py); its URL carries a token signed with
the application's secret (commands/portal/tokens.py, LEDGER_SECRET_KEY). Without a secret the
portal is off: nothing here can make a URL (PortalOffError), though links may still be revoked.

`link_for_invoice` is what invoice emails call: a link for the invoice's customer, pointing at
the invoice's page. Given an idempotency key, a retried request gets the same link, hence the
same URL: the link's id is derived from the key, the invoice and the secret (`keyed_link_id`),
and issuing a link that exists stores nothing. Checkout's return pages (web/checkout.py) use
the same id, so they can name the link before the provider opens its page and issue it only
once it has.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from commands.portal.tokens import keyed_link_id, require_secret, token_for
from commands.runner import CommandRunner, Decision, Outcome
from ledger.admin.users import normalize_email
from ledger.errors import InvalidInputError, InvoiceDeletedError, RuleViolationError
from ledger.invoices import DELETED, DRAFT
from ledger.portal.links import PortalLink, PortalLinkNotFoundError

DEFAULT_LIFETIME = timedelta(days=30)


class PortalCommands:
    """Portal links on the application's command runner. `secret`: LEDGER_SECRET_KEY (None: the
    portal is off); the methods that make URLs also take one explicitly."""

    def __init__(self, runner: CommandRunner, secret: str | None = None) -> None:
        self._runner = runner
        self._secret = None if secret is None else require_secret(secret)

    @property
    def enabled(self) -> bool:
        return self._secret is not None

    # ------------------------------------------------------------------------ commands

    def issue(
        self,
        customer_email: str,
        *,
        expires_at: datetime,
        invoice_id: UUID | None = None,
        issued_by: str,
        link_id: UUID | None = None,
    ) -> Outcome[UUID]:
        """A new link showing the customer's invoices until `expires_at` (422 for a malformed
        email, a moment not in the future or over a year away, an unknown `issued_by`, an
        `invoice_id` billed to another address; 404 for an unknown invoice).

        `link_id` (from `keyed_link_id`): a request's retry meets the link its first try
        issued, and nothing more is stored."""
        address = normalize_email(customer_email)

        def decide(at: datetime) -> Decision:
            if link_id is not None and self._runner.get(link_id, PortalLink) is not None:
                return {"link_id": str(link_id)}, []
            if invoice_id is not None:
                self._require_customers(invoice_id, address)
            link = PortalLink.issue(
                customer_email=address,
                expires_at=expires_at,
                invoice_id=invoice_id,
                issued_by=issued_by,
                at=at,
                link_id=link_id,
            )
            return {"link_id": str(link.id)}, [link]

        arguments: dict[str, Any] = {
            "customer_email": address,
            "expires_at": expires_at.isoformat(),
            "invoice_id": None if invoice_id is None else str(invoice_id),
            "issued_by": issued_by,
            "link_id": None if link_id is None else str(link_id),
        }
        outcome = self._runner.execute("portal.issue", arguments, None, decide)
        return outcome.map(lambda result: UUID(result["link_id"]))

    def _require_customers(self, invoice_id: UUID, address: str) -> None:
        """The invoice a link names is its customer's: the portal lists by the spelling on that
        invoice too (web/portal/access.py), so another customer's would widen the link."""
        written = self._runner.invoice(invoice_id).customer["email"]
        if written.strip().lower() != address:
            message = f"invoice {invoice_id} is not billed to {address}: a link names only its customer's invoice"
            raise InvalidInputError(message, field="invoice_id")

    def revoke(self, link_id: UUID, *, reason: str = "") -> Outcome[bool]:
        """Revoke the link: it opens nothing from now on. False when it was revoked already;
        PortalLinkNotFoundError (404) for an unknown id."""

        def decide(at: datetime) -> Decision:
            link = self._runner.get(link_id, PortalLink)
            if link is None:
                raise PortalLinkNotFoundError(link_id)
            changed = link.revoke(reason=reason, at=at)
            return {"revoked": changed}, [link] if changed else []

        outcome = self._runner.execute("portal.revoke", {"link_id": str(link_id), "reason": reason}, None, decide)
        return outcome.map(lambda result: bool(result["revoked"]))

    def link_for_invoice(
        self,
        invoice_id: UUID,
        *,
        base_url: str,
        expires_in: timedelta = DEFAULT_LIFETIME,
        idempotency_key: str | None = None,
        issued_by: str = "mail",
        secret: str | None = None,
    ) -> Outcome[str]:
        """The URL of the invoice's page in the portal, under a new link for its customer:
        `<base_url>/portal/<token>/invoices/<id>`; the same link again for the same
        `idempotency_key`. InvoiceNotFoundError (404) for an unknown or deleted invoice,
        PortalDraftError (409) for a draft, PortalOffError without a secret."""
        key = self._key(secret)
        email = self.customer_of(invoice_id)
        link_id = None if idempotency_key is None else keyed_link_id(key, invoice_id, idempotency_key)
        expires_at = self._runner.clock.now() + expires_in
        issued = self.issue(email, expires_at=expires_at, invoice_id=invoice_id, issued_by=issued_by, link_id=link_id)
        return issued.map(lambda made: self.invoice_url(made, invoice_id, base_url=base_url, secret=key))

    def customer_of(self, invoice_id: UUID) -> str:
        """The email of the invoice's customer, for a link to it: InvoiceNotFoundError for an
        unknown or deleted invoice, PortalDraftError for a draft."""
        invoice = self._runner.invoice(invoice_id)
        if invoice.status == DELETED:
            raise InvoiceDeletedError(invoice_id)
        if invoice.status == DRAFT:
            raise PortalDraftError(invoice_id)
        return invoice.customer["email"]

    # ------------------------------------------------------------------------ reads

    def link(self, link_id: UUID) -> PortalLink | None:
        return self._runner.get(link_id, PortalLink)

    def token(self, link_id: UUID, *, secret: str | None = None) -> str:
        return token_for(link_id, self._key(secret))

    def url(self, link_id: UUID, *, base_url: str, secret: str | None = None) -> str:
        """The address of the link's list of invoices."""
        return f"{base_url.rstrip('/')}/portal/{self.token(link_id, secret=secret)}"

    def invoice_url(self, link_id: UUID, invoice_id: UUID, *, base_url: str, secret: str | None = None) -> str:
        """The address of one invoice's page under the link."""
        return f"{self.url(link_id, base_url=base_url, secret=secret)}/invoices/{invoice_id}"

    def keyed_link_id(self, invoice_id: UUID, idempotency_key: str, *, secret: str | None = None) -> UUID:
        """The id a link for the invoice made under this key has (commands/portal/tokens.py)."""
        return keyed_link_id(self._key(secret), invoice_id, idempotency_key)

    def _key(self, secret: str | None) -> str:
        chosen = secret if secret is not None else self._secret
        if chosen is None:
            raise PortalOffError()
        return require_secret(chosen)


class PortalOffError(RuleViolationError):
    """No LEDGER_SECRET_KEY: the portal is off and no link can be made."""

    def __init__(self) -> None:
        super().__init__("the client portal is off: set LEDGER_SECRET_KEY (at least 32 characters) to turn it on")


class PortalDraftError(RuleViolationError):
    """A draft is not the customer's to see yet: no portal link is made for it."""

    def __init__(self, invoice_id: UUID) -> None:
        super().__init__(f"invoice {invoice_id} is a draft: issue it before sending the customer a link")
        self.invoice_id = invoice_id

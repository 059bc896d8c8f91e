"""A portal link's rules (ledger/portal/links.py): who it is for, until when, and revoking it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from ledger.errors import InvalidDateError, InvalidInputError, InvalidTextError
from ledger.portal.links import (
    ACTIVE,
    EXPIRED,
    MAX_LIFETIME,
    REVOKED,
    PortalLink,
    PortalLinkExpiredError,
    PortalLinkRevokedError,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _link(days: int = 30, email: str = "Ann@Customer.Example ") -> PortalLink:
    return PortalLink.issue(
        customer_email=email, expires_at=NOW + timedelta(days=days), invoice_id=None, issued_by="cli", at=NOW
    )


def test_a_link_keeps_the_normalized_email_and_shows_that_customers_invoices_whatever_the_case() -> None:
    link = _link()
    assert link.customer_email == "ann@customer.example"
    assert link.shows("ANN@customer.example")
    assert not link.shows("bob@customer.example")
    assert link.issued_by == "cli"


def test_a_link_opens_until_its_expiry_and_not_from_then_on() -> None:
    link = _link(days=1)
    link.require_usable(at=NOW + timedelta(days=1) - timedelta(microseconds=1))
    assert link.status(at=NOW) == ACTIVE
    with pytest.raises(PortalLinkExpiredError):
        link.require_usable(at=NOW + timedelta(days=1))
    assert link.status(at=NOW + timedelta(days=2)) == EXPIRED


def test_a_revoked_link_opens_nothing_and_revoking_again_changes_nothing() -> None:
    link = _link()
    assert link.revoke(reason="sent to the wrong address", at=NOW) is True
    assert link.revoked_reason == "sent to the wrong address"
    with pytest.raises(PortalLinkRevokedError):
        link.require_usable(at=NOW)
    version = link.version
    assert link.revoke(reason="again", at=NOW) is False
    assert link.version == version
    assert link.status(at=NOW + timedelta(days=99)) == REVOKED  # revoked says more than expired


@pytest.mark.parametrize(
    ("expires_at", "error"),
    [
        (NOW, InvalidDateError),  # not in the future
        (NOW - timedelta(days=1), InvalidDateError),
        (NOW + MAX_LIFETIME + timedelta(seconds=1), InvalidDateError),
        (datetime(2026, 4, 1, 9, 0), InvalidDateError),  # no timezone
    ],
)
def test_an_expiry_must_be_in_the_future_within_a_year_and_zoned(expires_at: datetime, error: type[Exception]) -> None:
    with pytest.raises(error):
        PortalLink.issue(customer_email="a@b.example", expires_at=expires_at, invoice_id=None, issued_by="cli", at=NOW)


def test_a_link_needs_a_real_email_and_a_known_issuer() -> None:
    with pytest.raises(InvalidTextError):
        _link(email="not an email")
    with pytest.raises(InvalidInputError):
        PortalLink.issue(
            customer_email="a@b.example", expires_at=NOW + timedelta(days=1), invoice_id=None, issued_by="x", at=NOW
        )


def test_a_link_remembers_the_invoice_it_was_made_for() -> None:
    invoice_id = uuid4()
    link = PortalLink.issue(
        customer_email="a@b.example",
        expires_at=NOW + timedelta(days=1),
        invoice_id=invoice_id,
        issued_by="checkout",
        at=NOW,
    )
    assert link.invoice_id == str(invoice_id)

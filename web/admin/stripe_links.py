"""Links from the dashboard to the object on Stripe's own dashboard, by the kind of id.

Stripe's ids say what they are by their prefix (`pi_` a PaymentIntent, `ch_` a charge, `re_` a
refund, `po_` a payout, ...). Test-mode objects live under `/test/`; the key reading the
account's records says which mode it is (adapters/stripe/listing.py `livemode`). An id of a
kind the dashboard has no page for gets no link rather than a wrong one.
"""

from __future__ import annotations

from typing import Any

DASHBOARD = "https://dashboard.stripe.com/"

_PAGES = {
    "pi_": "payments",
    "ch_": "payments",
    "py_": "payments",
    "re_": "refunds",
    "pyr_": "refunds",
    "dp_": "disputes",
    "du_": "disputes",
    "po_": "payouts",
    "evt_": "events",
    "cus_": "customers",
    "in_": "invoices",
}


def livemode_of(records: Any) -> bool:
    """Whether the configured Stripe key reads live objects; False without Stripe (or for a
    reader that does not say), so links go to test mode rather than to a live page that is not there."""
    return bool(getattr(records, "livemode", False))


def stripe_url(stripe_id: str | None, *, livemode: bool) -> str | None:
    """The dashboard page of the object, or None for an id of a kind without one."""
    if not stripe_id:
        return None
    prefix = stripe_id.split("_", 1)[0] + "_"
    page = _PAGES.get(prefix)
    if page is None or stripe_id == prefix:
        return None
    return f"{DASHBOARD}{'' if livemode else 'test/'}{page}/{stripe_id}"

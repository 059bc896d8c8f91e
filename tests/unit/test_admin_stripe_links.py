"""Links from the dashboard to Stripe's: the page follows the kind of id, and the mode the key."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from web.admin.stripe_links import livemode_of, stripe_url


@pytest.mark.parametrize(
    ("stripe_id", "page"),
    [
        ("pi_3Nx", "payments/pi_3Nx"),
        ("ch_3Nx", "payments/ch_3Nx"),
        ("re_1Ab", "refunds/re_1Ab"),
        ("du_1Ab", "disputes/du_1Ab"),
        ("po_1Ab", "payouts/po_1Ab"),
        ("evt_1Ab", "events/evt_1Ab"),
    ],
)
def test_each_kind_of_id_links_to_its_page_in_test_mode(stripe_id: str, page: str) -> None:
    assert stripe_url(stripe_id, livemode=False) == f"https://dashboard.stripe.com/test/{page}"


def test_a_live_key_links_to_live_pages() -> None:
    assert stripe_url("pi_3Nx", livemode=True) == "https://dashboard.stripe.com/payments/pi_3Nx"


@pytest.mark.parametrize("stripe_id", [None, "", "txn_1Ab", "pi_", "somethingelse"])
def test_an_id_without_a_page_gets_no_link(stripe_id: str | None) -> None:
    assert stripe_url(stripe_id, livemode=False) is None


@dataclass
class Records:
    livemode: bool


def test_the_mode_is_the_records_readers_and_test_without_one() -> None:
    assert livemode_of(Records(livemode=True)) is True
    assert livemode_of(Records(livemode=False)) is False
    assert livemode_of(None) is False

"""How a Stripe API key is shown in errors: enough to tell which key, never enough to use it."""

from __future__ import annotations

import pytest

from adapters.stripe.client import masked


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("sk_test_ledger_0123456789", "sk_test_...6789"),
        ("sk_live_51H8xYzAbCdEfGhIjKlMnOpQr", "sk_live_...OpQr"),
        ("rk_test_51H8xYzAbCdEfGhIj9876", "rk_test_...9876"),
        ("sk_test_short", "sk_test_..."),  # a tail would be a third of it
        ("not-a-stripe-key-at-all-1234", "...1234"),
        ("secret", "..."),
    ],
)
def test_a_key_is_masked_to_its_kind_and_last_four(key: str, shown: str) -> None:
    assert masked(key) == shown

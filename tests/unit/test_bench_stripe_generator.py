"""The reconcile bench's Stripe side (bench/stripe_generator.py) pages as Stripe does and reads as
StripeRecords reads: every object once, newest first, the payouts carrying their block."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from adapters.stripe import listing
from bench.stripe_generator import PAYOUT_BLOCK, Account, Generated, payout_id

ACCOUNT = Account(payments=PAYOUT_BLOCK + 2_500, start=1_700_000_000)
DECODERS = {
    "balance_transaction": listing.BALANCE_TRANSACTIONS,
    "charge": listing.CHARGES,
    "refund": listing.REFUNDS,
    "dispute": listing.DISPUTES,
    "payout": listing.PAYOUTS,
    "payment_intent": listing.PAYMENT_INTENTS,
}


@pytest.fixture(scope="module")
def generated() -> Generated:
    return Generated(ACCOUNT)


def _walk(generated: Generated, kind: str, params: dict[str, str]) -> list[Any]:
    """Every object of the list, as StripeRecords asks for it (limit=100, starting_after)."""
    objects: list[Any] = []
    after: str | None = None
    while True:
        query = {**params, "limit": "100", **({"starting_after": after} if after else {})}
        status, body = generated.page(kind, query)
        assert status == 200, body
        endpoint = DECODERS[kind]
        page = endpoint.decoder.decode(body)  # StripeRecords' own strict decoder
        objects += [endpoint.fact(obj) for obj in page.data]
        if not page.has_more:
            return objects
        after = page.data[-1].id


def test_each_list_holds_every_object_once_newest_first(generated: Generated) -> None:
    period = {"created[gte]": str(ACCOUNT.start), "created[lt]": str(ACCOUNT.end)}
    counts = {}
    for kind in DECODERS:
        facts = _walk(generated, kind, period)
        ids = [f.id for f in facts]
        assert len(ids) == len(set(ids)), kind
        assert [f.created for f in facts] == sorted((f.created for f in facts), reverse=True), kind
        counts[kind] = len(ids)
    assert counts == {
        "balance_transaction": ACCOUNT.balance_transactions(),
        "charge": ACCOUNT.payments,
        "refund": ACCOUNT.refunds,
        "dispute": 0,
        "payout": 2,
        "payment_intent": ACCOUNT.payments,
    }


def test_a_payout_carries_its_block_and_its_amount_is_their_net(generated: Generated) -> None:
    for p in range(ACCOUNT.payouts):
        facts = _walk(generated, "balance_transaction", {"payout": payout_id(p)})
        own = [f for f in facts if f.kind == "payout"]
        carried = [f for f in facts if f.kind != "payout"]
        assert [f.source for f in own] == [payout_id(p)]
        assert len([f for f in carried if f.kind == "charge"]) == len(ACCOUNT.block(p))
        assert sum(f.net.amount for f in carried) == ACCOUNT.payout_amount(p) == -own[0].amount.amount


def test_a_period_filter_and_an_unknown_cursor(generated: Generated) -> None:
    half = {"created[gte]": str(ACCOUNT.start + 4 * 100), "created[lt]": str(ACCOUNT.start + 4 * 200)}
    assert len(_walk(generated, "charge", half)) == 100
    status, body = generated.page("charge", {"limit": "100", "starting_after": "ch_nope"})
    assert status == 400
    assert msgspec.json.decode(body)["error"]["type"] == "invalid_request_error"
    assert generated.page("charge", {"limit": "100", "expand[]": "data.customer"})[0] == 400

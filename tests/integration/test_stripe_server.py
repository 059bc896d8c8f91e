"""The Stripe test server cannot drift into a Stripe that does not exist: its objects are
Stripe's own examples, and carry every field the SDK's resource classes declare."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from adapters.stripe import StripePaymentProvider
from tests.stripe_lists import PATHS
from tests.stripe_server import API_KEY, FIXTURES, StripeServer

ROOT = Path(__file__).resolve().parents[2]
# ../shared beside the clone (CI); a worktree sits one level deeper.
CANDIDATES = [base / "shared" / "stripe" / "fixtures3.json" for base in (ROOT.parent, ROOT.parent.parent)]


def _declared(resource: type[Any]) -> set[str]:
    """The fields the SDK's class for a Stripe object declares (not its class-level constants)."""
    return {name for name, kind in resource.__annotations__.items() if "ClassVar" not in str(kind)}


def _missing(obj: dict[str, Any], resource: type[Any]) -> list[str]:
    return sorted(_declared(resource) - set(obj))


def test_every_object_the_server_returns_has_every_field_the_sdk_declares(stripe_server: StripeServer) -> None:
    provider = StripePaymentProvider(API_KEY, api_base=stripe_server.base_url, max_network_retries=0)
    try:
        session = provider.create_checkout_session(
            invoice_id="0b9b6f2e-8c1d-4f5e-9a3b-2c7d1e0f4a56",
            amount=1_000,
            currency="usd",
            customer_email="ap@acme.example",
            description="Invoice",
            success_url="https://billing.example/ok",
            cancel_url="https://billing.example/cancel",
            idempotency_key="k",
        )
        failed = stripe_server.add_failed_payment_intent(amount=1_000, currency="usd")
        provider.retry_payment(provider_payment_id=failed, idempotency_key="r")
        provider.report_meter_event(
            event_name="api_calls", customer_id="cus_1", value=3, identifier="m-1", at=datetime.now(UTC)
        )
    finally:
        provider.close()
    paid_session, paid_intent = stripe_server.complete_session(session.id)
    answered = [r for r in stripe_server.requests if r.status == 200]
    assert {r.path for r in answered} >= {"/v1/checkout/sessions", f"/v1/payment_intents/{failed}"}

    assert _missing(stripe_server.sessions[session.id], stripe.checkout.Session) == []
    assert _missing(paid_session, stripe.checkout.Session) == []
    assert _missing(stripe_server.payment_intents[failed], stripe.PaymentIntent) == []
    assert _missing(paid_intent, stripe.PaymentIntent) == []
    assert _missing(next(iter(stripe_server.state.meter_events.values())), stripe.billing.MeterEvent) == []
    charges = stripe_server.objects("charge")  # the paid session's and the retry's, as Stripe keeps them
    assert {paid_intent["latest_charge"], stripe_server.payment_intents[failed]["latest_charge"]} <= set(charges)
    assert [_missing(charge, stripe.Charge) for charge in charges.values()] == [[], []]


def test_the_copied_examples_are_stripes_own() -> None:
    """tests/fixtures/stripe_objects.json is a verbatim copy of the resources used from fixtures3.json."""
    found = [path for path in CANDIDATES if path.exists()]
    if not found:
        pytest.skip("no ../shared/stripe/fixtures3.json beside the clone")
    shared = json.loads(found[0].read_text())["resources"]
    copied = json.loads(FIXTURES.read_text())["resources"]
    assert {name: shared[name] for name in copied} == copied


RESOURCES = {
    "balance_transaction": stripe.BalanceTransaction,
    "charge": stripe.Charge,
    "refund": stripe.Refund,
    "dispute": stripe.Dispute,
    "payout": stripe.Payout,
    "payment_intent": stripe.PaymentIntent,
}


def _get(server: StripeServer, path: str, **query: str) -> httpx.Response:
    return httpx.get(f"{server.base_url}{path}", params=query, headers={"Authorization": f"Bearer {API_KEY}"})


def test_every_listed_object_has_every_field_the_sdk_declares(stripe_server: StripeServer) -> None:
    paid = stripe_server.seed_payment(amount=1_000, fee=59, invoice_id="0b9b6f2e-8c1d-4f5e-9a3b-2c7d1e0f4a56")
    stripe_server.seed_refund(charge=paid.charge, amount=100)
    stripe_server.seed_dispute(charge=paid.charge, amount=200, fee=1_500)
    stripe_server.seed_payout(transactions=[paid.balance_transaction])

    for kind, resource in RESOURCES.items():
        answer = _get(stripe_server, PATHS[kind])
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert _missing(page, stripe.ListObject) == []
        assert (page["object"], page["url"], page["has_more"]) == ("list", PATHS[kind], False)
        assert page["data"], kind
        for obj in page["data"]:
            assert obj["object"] == kind
            assert _missing(obj, resource) == [], kind


def test_a_list_is_newest_first_ten_by_default_and_pages_both_ways(stripe_server: StripeServer) -> None:
    ids = [stripe_server.seed_charge(amount=100, created=1_000 + i) for i in range(25)]
    newest_first = ids[::-1]

    first = _get(stripe_server, "/v1/charges").json()
    assert [c["id"] for c in first["data"]] == newest_first[:10]
    assert first["has_more"] is True
    last = _get(stripe_server, "/v1/charges", limit="10", starting_after=newest_first[19]).json()
    assert ([c["id"] for c in last["data"]], last["has_more"]) == (newest_first[20:], False)
    before = _get(stripe_server, "/v1/charges", limit="3", ending_before=newest_first[10]).json()
    assert ([c["id"] for c in before["data"]], before["has_more"]) == (newest_first[7:10], True)


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ({"created[gte]": "1002", "created[lt]": "1005"}, [1004, 1003, 1002]),
        ({"created[gt]": "1002", "created[lte]": "1005"}, [1005, 1004, 1003]),
        ({"created": "1003"}, [1003]),
        ({"created[gte]": "1005", "created[lt]": "1005"}, []),
    ],
)
def test_created_filters_as_stripe_reads_them(
    stripe_server: StripeServer, bounds: dict[str, str], expected: list[int]
) -> None:
    for second in range(1_000, 1_008):
        stripe_server.seed_charge(amount=100, created=second)
    page = _get(stripe_server, "/v1/charges", **bounds).json()
    assert [c["created"] for c in page["data"]] == expected


@pytest.mark.parametrize(
    ("query", "param", "code"),
    [
        ({"limit": "101"}, "limit", None),
        ({"limit": "0"}, "limit", None),
        ({"limit": "ten"}, "limit", None),
        ({"starting_after": "ch_unknown"}, "starting_after", "resource_missing"),
        ({"created[gte]": "yesterday"}, "created[gte]", None),
        ({"expand[0]": "data.balance_transaction"}, "expand", None),
        ({"customer": "cus_1"}, "customer", None),
    ],
)
def test_a_list_request_stripe_would_refuse_is_a_400(
    stripe_server: StripeServer, query: dict[str, str], param: str, code: str | None
) -> None:
    stripe_server.seed_charge(amount=100)
    answer = _get(stripe_server, "/v1/charges", **query)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["type"], error["param"], error.get("code")) == ("invalid_request_error", param, code)


def test_a_refund_stripe_would_refuse_is_a_400_and_changes_nothing(stripe_server: StripeServer) -> None:
    paid = stripe_server.seed_payment(amount=1_000)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    url = f"{stripe_server.base_url}/v1/refunds"

    too_much = httpx.post(url, data={"charge": paid.charge, "amount": "1001"}, headers=headers)
    unknown = httpx.post(url, data={"charge": "ch_unknown"}, headers=headers)
    everything = httpx.post(url, data={"payment_intent": paid.payment_intent}, headers=headers)
    again = httpx.post(url, data={"charge": paid.charge}, headers=headers)

    assert (too_much.status_code, too_much.json()["error"]["param"]) == (400, "amount")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "resource_missing")
    assert (everything.status_code, everything.json()["amount"]) == (200, 1_000)
    assert (again.status_code, again.json()["error"]["code"]) == (400, "charge_already_refunded")
    assert list(stripe_server.objects("refund")) == [everything.json()["id"]]
    assert stripe_server.objects("charge")[paid.charge]["refunded"] is True

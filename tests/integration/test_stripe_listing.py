"""Reading Stripe's records for reconciliation (adapters/stripe/listing.py) with the real SDK, over
HTTP, against the Stripe-compatible test server: paging, filters, decoding, retries, errors; and
the refund request (StripePaymentProvider.refund_charge)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from adapters.stripe import StripePaymentProvider, StripeRecords
from commands.reconciliation.facts import (
    BalanceTransactionFact,
    ChargeFact,
    DisputeFact,
    PaymentIntentFact,
    PayoutFact,
    Period,
    ProviderRecords,
    RefundFact,
)
from ledger.errors import ProviderConfigurationError, ProviderRecordsError, ProviderUnavailableError
from ledger.money import Money
from tests.stripe_server import API_KEY, StripeServer

INVOICE_ID = "0b9b6f2e-8c1d-4f5e-9a3b-2c7d1e0f4a56"
START = 1_772_323_200  # 2026-03-01T00:00:00Z
END = START + 31 * 24 * 3600
MARCH = Period(datetime.fromtimestamp(START, UTC), datetime.fromtimestamp(END, UTC))


class Records:
    """A StripeRecords on the test server whose backoff waits are recorded, not slept."""

    def __init__(self, server: StripeServer, api_key: str = API_KEY) -> None:
        self.waits: list[float] = []
        self.reader = StripeRecords(api_key, api_base=server.base_url, sleep=self.waits.append)


@pytest.fixture
def records(stripe_server: StripeServer) -> Iterator[Records]:
    made = Records(stripe_server)
    yield made
    made.reader.close()


def _all(pages: Iterator[list[Any]]) -> list[list[Any]]:
    return list(pages)


def _charges(server: StripeServer, count: int, *, first: int = START) -> list[str]:
    return [server.seed_charge(amount=100 + i, created=first + i) for i in range(count)]


# ------------------------------------------------------------------------------ paging


def test_a_hundred_objects_are_one_page_and_no_second_request(records: Records, stripe_server: StripeServer) -> None:
    seeded = _charges(stripe_server, 100)

    pages = _all(records.reader.charges(MARCH))

    assert [len(page) for page in pages] == [100]
    assert [fact.id for fact in pages[0]] == seeded[::-1]  # newest first
    [sent] = stripe_server.requests_to("GET", "/v1/charges")
    assert sent.form == {"limit": "100", "created": {"gte": str(START), "lt": str(END)}}


def test_a_hundred_and_one_objects_are_two_pages_the_second_after_the_first(
    records: Records, stripe_server: StripeServer
) -> None:
    seeded = _charges(stripe_server, 101)

    pages = _all(records.reader.charges(MARCH))

    assert [len(page) for page in pages] == [100, 1]
    assert [fact.id for page in pages for fact in page] == seeded[::-1]
    first, second = stripe_server.requests_to("GET", "/v1/charges")
    assert "starting_after" not in first.form
    assert second.form == {
        "limit": "100",
        "created": {"gte": str(START), "lt": str(END)},
        "starting_after": pages[0][-1].id,
    }


def test_no_objects_is_one_empty_page(records: Records, stripe_server: StripeServer) -> None:
    _charges(stripe_server, 3, first=END)  # after the period

    assert _all(records.reader.charges(MARCH)) == [[]]
    assert len(stripe_server.requests_to("GET", "/v1/charges")) == 1


def test_pages_are_read_one_at_a_time_as_they_are_consumed(records: Records, stripe_server: StripeServer) -> None:
    _charges(stripe_server, 250)

    pages = records.reader.charges(MARCH)
    assert stripe_server.requests_to("GET", "/v1/charges") == []  # nothing asked before it is read
    assert len(next(pages)) == 100
    assert len(stripe_server.requests_to("GET", "/v1/charges")) == 1
    assert [len(page) for page in pages] == [100, 50]
    assert len(stripe_server.requests_to("GET", "/v1/charges")) == 3


def test_ties_on_created_are_paged_by_id_without_loss_or_repeat(records: Records, stripe_server: StripeServer) -> None:
    """Stripe's `created` is in seconds: a busy second holds many objects, across a page boundary."""
    seeded = {stripe_server.seed_charge(amount=100, created=START + 5) for _ in range(150)}

    pages = _all(records.reader.charges(MARCH))

    ids = [fact.id for page in pages for fact in page]
    assert [len(page) for page in pages] == [100, 50]
    assert sorted(ids, reverse=True) == ids
    assert set(ids) == seeded


def test_the_period_is_half_open_in_stripes_seconds(records: Records, stripe_server: StripeServer) -> None:
    at = {
        created: stripe_server.seed_charge(amount=100, created=created)
        for created in (START - 1, START, START + 1, END - 1, END)
    }

    [page] = _all(records.reader.charges(MARCH))
    assert {fact.id for fact in page} == {at[START], at[START + 1], at[END - 1]}

    # A start within a second begins at the next whole one: that second's objects came before it.
    later = Period(MARCH.start + timedelta(milliseconds=500), MARCH.end)
    [page] = _all(records.reader.charges(later))
    assert {fact.id for fact in page} == {at[START + 1], at[END - 1]}


def test_a_period_without_a_timezone_is_refused(records: Records, stripe_server: StripeServer) -> None:
    naive = Period(datetime(2026, 3, 1), datetime(2026, 4, 1))  # the point of the test
    with pytest.raises(ValueError, match="timezone"):
        next(records.reader.charges(naive))
    assert stripe_server.requests == []


def test_a_payouts_transactions_are_listed_by_payout_whatever_their_dates(
    records: Records, stripe_server: StripeServer
) -> None:
    old = stripe_server.seed_payment(amount=5_000, fee=175, created=START - 86_400)  # before the period
    new = stripe_server.seed_payment(amount=2_000, fee=88, created=START + 60)
    stripe_server.seed_payment(amount=9_999, created=START + 120)  # not in this payout
    refund = stripe_server.seed_refund(charge=new.charge, amount=500, created=START + 180)
    refund_txn = stripe_server.objects("refund")[refund]["balance_transaction"]
    payout = stripe_server.seed_payout(
        transactions=[old.balance_transaction, new.balance_transaction, refund_txn], created=START + 3_600
    )
    own = stripe_server.objects("payout")[payout]["balance_transaction"]

    [page] = _all(records.reader.payout_transactions(payout))

    assert [fact.id for fact in page] == [own, refund_txn, new.balance_transaction, old.balance_transaction]
    assert page[0] == BalanceTransactionFact(
        id=own,
        kind="payout",
        amount=Money(-(4_825 + 1_912 - 500), "usd"),
        fee=Money(0, "usd"),
        net=Money(-(4_825 + 1_912 - 500), "usd"),
        source=payout,
        status="available",
        created=START + 3_600,
    )
    [sent] = stripe_server.requests_to("GET", "/v1/balance_transactions")
    assert sent.form == {"limit": "100", "payout": payout}


# ------------------------------------------------------------------------------ decoding


@pytest.mark.parametrize(
    ("currency", "stripe_amounts", "ledger_amounts"),
    [
        # (amount, fee, refund, dispute) in Stripe's units -> the ledger's minor units
        ("usd", (309_219, 9_297, 10_000, 50_000), (309_219, 9_297, 10_000, 50_000)),
        ("jpy", (5_000, 180, 1_000, 2_000), (5_000, 180, 1_000, 2_000)),
        ("kwd", (5_120, 150, 1_000, 2_000), (5_120, 150, 1_000, 2_000)),
        ("isk", (500_000, 14_500, 100_000, 200_000), (5_000, 145, 1_000, 2_000)),
        ("mga", (12_300, 400, 1_000, 2_000), (1_230_000, 40_000, 100_000, 200_000)),
    ],
)
def test_every_resource_is_decoded_into_its_fact_in_the_ledgers_units(
    records: Records,
    stripe_server: StripeServer,
    currency: str,
    stripe_amounts: tuple[int, int, int, int],
    ledger_amounts: tuple[int, int, int, int],
) -> None:
    amount, fee, refunded, disputed = stripe_amounts
    paid = stripe_server.seed_payment(
        amount=amount, currency=currency, fee=fee, invoice_id=INVOICE_ID, created=START + 10
    )
    refund = stripe_server.seed_refund(charge=paid.charge, amount=refunded, created=START + 20)
    dispute = stripe_server.seed_dispute(
        charge=paid.charge, amount=disputed, status="lost", reason="fraudulent", created=START + 30
    )
    payout = stripe_server.seed_payout(
        transactions=[paid.balance_transaction], currency=currency, created=START + 40, arrival_date=START + 99
    )
    seeded = {kind: stripe_server.objects(kind) for kind in ("refund", "dispute", "payout")}
    money = dict(zip(("amount", "fee", "refund", "dispute"), (Money(x, currency) for x in ledger_amounts), strict=True))
    net = Money(money["amount"].amount - money["fee"].amount, currency)
    reader: ProviderRecords = records.reader

    [intents] = _all(reader.payment_intents(MARCH))
    assert intents == [
        PaymentIntentFact(
            id=paid.payment_intent,
            invoice_id=UUID(INVOICE_ID),
            amount=money["amount"],
            amount_received=money["amount"],
            status="succeeded",
            latest_charge=paid.charge,
            created=START + 10,
        )
    ]
    [charges] = _all(reader.charges(MARCH))
    assert charges == [
        ChargeFact(
            id=paid.charge,
            payment_id=paid.payment_intent,
            invoice_id=UUID(INVOICE_ID),
            amount=money["amount"],
            amount_captured=money["amount"],
            amount_refunded=money["refund"],
            status="succeeded",
            captured=True,
            balance_transaction=paid.balance_transaction,
            created=START + 10,
        )
    ]
    [refunds] = _all(reader.refunds(MARCH))
    assert refunds == [
        RefundFact(
            id=refund,
            charge_id=paid.charge,
            payment_id=paid.payment_intent,
            amount=money["refund"],
            status="succeeded",
            balance_transaction=seeded["refund"][refund]["balance_transaction"],
            created=START + 20,
        )
    ]
    [disputes] = _all(reader.disputes(MARCH))
    assert disputes == [
        DisputeFact(
            id=dispute,
            charge_id=paid.charge,
            payment_id=paid.payment_intent,
            amount=money["dispute"],
            status="lost",
            reason="fraudulent",
            created=START + 30,
        )
    ]
    [payouts] = _all(reader.payouts(MARCH))
    assert payouts == [
        PayoutFact(
            id=payout,
            amount=net,
            status="paid",
            arrival_date=START + 99,
            failure_code="",
            failure_message="",
            created=START + 40,
        )
    ]
    [transactions] = _all(reader.balance_transactions(MARCH))
    by_kind = {fact.kind: fact for fact in transactions}
    assert [fact.kind for fact in transactions] == ["payout", "adjustment", "refund", "charge"]
    assert by_kind["charge"] == BalanceTransactionFact(
        id=paid.balance_transaction,
        kind="charge",
        amount=money["amount"],
        fee=money["fee"],
        net=net,
        source=paid.charge,
        status="available",
        created=START + 10,
    )
    assert (by_kind["refund"].amount, by_kind["refund"].source) == (-money["refund"], refund)
    assert (by_kind["adjustment"].amount, by_kind["adjustment"].source) == (-money["dispute"], dispute)
    assert (by_kind["payout"].amount, by_kind["payout"].source) == (-net, payout)
    assert seeded["payout"][payout]["amount"] == amount - fee  # in Stripe's units on the wire


def test_a_failed_payout_carries_its_failure(records: Records, stripe_server: StripeServer) -> None:
    payout = stripe_server.seed_payout(
        amount=10_000,
        status="failed",
        failure_code="no_account",
        failure_message="The bank account details on file are probably incorrect.",
        created=START,
    )
    [[fact]] = _all(records.reader.payouts(MARCH))
    assert fact == PayoutFact(
        id=payout,
        amount=Money(10_000, "usd"),
        status="failed",
        arrival_date=START + 2 * 86_400,
        failure_code="no_account",
        failure_message="The bank account details on file are probably incorrect.",
        created=START,
    )


@pytest.mark.parametrize("invoice_id", ["INV-2026-000042", "", "0b9b6f2e"])
def test_an_invoice_id_that_is_not_a_uuid_is_someone_elses(
    records: Records, stripe_server: StripeServer, invoice_id: str
) -> None:
    stripe_server.seed_payment(amount=1_000, metadata={"invoice_id": invoice_id}, created=START)
    [[charge]] = _all(records.reader.charges(MARCH))
    [[intent]] = _all(records.reader.payment_intents(MARCH))
    assert (charge.invoice_id, intent.invoice_id) == (None, None)


def _tamper(server: StripeServer, kind: str, object_id: str, **fields: Any) -> None:
    """Change an object as a Stripe we were not checked against (or not Stripe) would answer it."""
    with server.state.lock:
        server.state.records.kinds[kind].objects[object_id].update(fields)


def test_a_field_of_the_wrong_type_is_refused_naming_it(records: Records, stripe_server: StripeServer) -> None:
    seeded = _charges(stripe_server, 3)
    _tamper(stripe_server, "charge", seeded[1], captured="true")  # the second on the page, newest first

    with pytest.raises(ProviderRecordsError, match=r"Expected `bool`, got `str` at `data\[1\].captured`") as raised:
        _all(records.reader.charges(MARCH))
    assert raised.value.field == "data[1].captured"
    assert "/v1/charges" in str(raised.value)
    assert isinstance(raised.value, ProviderConfigurationError)
    assert len(stripe_server.requests) == 1  # not retried: the same answer would come back


def test_a_missing_field_is_refused_naming_it(records: Records, stripe_server: StripeServer) -> None:
    txn = stripe_server.seed_balance_transaction(amount=1_000, created=START)
    with stripe_server.state.lock:
        del stripe_server.state.records.kinds["balance_transaction"].objects[txn]["net"]

    with pytest.raises(ProviderRecordsError, match="net") as raised:
        _all(records.reader.balance_transactions(MARCH))
    assert raised.value.field == "data[0]"


def test_an_amount_the_ledger_cannot_hold_is_refused_naming_the_object_and_field(
    records: Records, stripe_server: StripeServer
) -> None:
    refund = stripe_server.seed_refund(
        charge=stripe_server.seed_payment(amount=50_000, currency="isk", created=START).charge,
        amount=10_050,  # 100.50 kr: Stripe's isk is whole krónur
        created=START,
    )

    with pytest.raises(ProviderRecordsError, match=rf"{refund}: `data\[0\].amount`") as raised:
        _all(records.reader.refunds(MARCH))
    assert raised.value.field == "data[0].amount"


# ------------------------------------------------------------------------------ retries and errors


def test_a_rate_limit_is_retried_with_backoff_then_read(records: Records, stripe_server: StripeServer) -> None:
    seeded = _charges(stripe_server, 2)
    stripe_server.fail_next("rate_limit", 2)

    [page] = _all(records.reader.charges(MARCH))

    assert [fact.id for fact in page] == seeded[::-1]
    assert [r.status for r in stripe_server.requests_to("GET", "/v1/charges")] == [429, 429, 200]
    # Ours, not the SDK's: one wait before each retry, doubling (with jitter in its upper half).
    first, second = records.waits
    assert 0.25 <= first <= 0.5
    assert 0.5 <= second <= 1.0


def test_a_stripe_5xx_is_retried_then_read(records: Records, stripe_server: StripeServer) -> None:
    _charges(stripe_server, 1)
    stripe_server.fail_next("api_error")

    [page] = _all(records.reader.charges(MARCH))

    assert len(page) == 1
    assert [r.status for r in stripe_server.requests_to("GET", "/v1/charges")] == [500, 200]
    assert len(records.waits) == 1


def test_a_retry_in_the_middle_asks_for_the_same_page_again(records: Records, stripe_server: StripeServer) -> None:
    seeded = _charges(stripe_server, 150)
    pages = records.reader.charges(MARCH)
    first = next(pages)
    stripe_server.fail_next("rate_limit")

    second = next(pages)

    assert [fact.id for fact in first + second] == seeded[::-1]
    retried, answered = stripe_server.requests_to("GET", "/v1/charges")[1:]
    assert retried.form == answered.form
    assert (retried.status, answered.form["starting_after"]) == (429, first[-1].id)


def test_retries_exhausted_are_unavailable(records: Records, stripe_server: StripeServer) -> None:
    stripe_server.fail_next("api_error", 4)

    with pytest.raises(ProviderUnavailableError, match="after 4 attempts") as raised:
        _all(records.reader.charges(MARCH))
    assert raised.value.request_id is not None
    assert len(stripe_server.requests_to("GET", "/v1/charges")) == 4
    assert len(records.waits) == 3
    assert records.waits == sorted(records.waits)


def test_an_unreachable_stripe_is_retried_then_unavailable(records: Records, stripe_server: StripeServer) -> None:
    stripe_server.stop()

    with pytest.raises(ProviderUnavailableError, match="after 4 attempts"):
        _all(records.reader.payouts(MARCH))
    assert len(records.waits) == 3


def test_a_wrong_key_is_a_configuration_error_naming_the_masked_key(stripe_server: StripeServer) -> None:
    wrong = Records(stripe_server, api_key="sk_test_51NotOurs00000000006789")
    try:
        with pytest.raises(ProviderConfigurationError) as raised:
            _all(wrong.reader.charges(MARCH))
    finally:
        wrong.reader.close()
    message = str(raised.value)
    assert "sk_test_...6789" in message
    assert "STRIPE_API_KEY" in message
    assert "51NotOurs" not in message
    assert "Traceback" not in message
    assert len(stripe_server.requests) == 1  # a refused key is not retried
    assert wrong.waits == []


@pytest.mark.parametrize("kind", ["not_json_404", "not_json_200"])
def test_an_answer_that_is_not_json_says_so(records: Records, stripe_server: StripeServer, kind: str) -> None:
    stripe_server.fail_next(kind)

    with pytest.raises(ProviderConfigurationError, match=r"not JSON.*STRIPE_API_BASE") as raised:
        _all(records.reader.disputes(MARCH))
    assert not isinstance(raised.value, ProviderUnavailableError)
    assert len(stripe_server.requests) == 1


def test_no_key_is_a_configuration_error() -> None:
    with pytest.raises(ProviderConfigurationError, match="STRIPE_API_KEY"):
        StripeRecords("")


# ------------------------------------------------------------------------------ the refund request


@pytest.fixture
def provider(stripe_server: StripeServer) -> Iterator[StripePaymentProvider]:
    provider = StripePaymentProvider(API_KEY, api_base=stripe_server.base_url, max_network_retries=0)
    yield provider
    provider.close()


@pytest.mark.parametrize(("currency", "amount", "sent"), [("usd", 2_500, 2_500), ("isk", 25, 2_500), ("jpy", 700, 700)])
def test_a_refund_is_asked_for_the_charge_in_stripes_units_with_our_key(
    provider: StripePaymentProvider, stripe_server: StripeServer, currency: str, amount: int, sent: int
) -> None:
    paid = stripe_server.seed_payment(amount=10_000, currency=currency)

    refund_id = provider.refund_charge(
        charge_id=paid.charge, amount=amount, currency=currency, idempotency_key="reconciliation-item-1"
    )

    [request] = stripe_server.requests_to("POST", "/v1/refunds")
    assert request.form == {"charge": paid.charge, "amount": str(sent)}
    assert request.headers["idempotency-key"] == "reconciliation-item-1"
    refund = stripe_server.objects("refund")[refund_id]
    assert (refund["charge"], refund["amount"], refund["status"]) == (paid.charge, sent, "succeeded")
    assert stripe_server.objects("charge")[paid.charge]["amount_refunded"] == sent


def test_the_same_key_asks_for_one_refund(provider: StripePaymentProvider, stripe_server: StripeServer) -> None:
    paid = stripe_server.seed_payment(amount=10_000)

    ids = {
        provider.refund_charge(charge_id=paid.charge, amount=4_000, currency="usd", idempotency_key="dup-1")
        for _ in range(2)
    }

    assert len(ids) == 1
    assert list(stripe_server.objects("refund")) == list(ids)
    assert stripe_server.objects("charge")[paid.charge]["amount_refunded"] == 4_000


def test_a_refund_stripe_refuses_is_a_configuration_error(
    provider: StripePaymentProvider, stripe_server: StripeServer
) -> None:
    paid = stripe_server.seed_payment(amount=1_000)

    with pytest.raises(ProviderConfigurationError, match="greater than unrefunded"):
        provider.refund_charge(charge_id=paid.charge, amount=1_001, currency="usd", idempotency_key="k")
    assert stripe_server.objects("refund") == {}

"""The invoice API over real HTTP, on SQLite and PostgreSQL: every route and every error class."""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from adapters.clock import ManualClock
from adapters.read_models import read_model_engine
from tests.conftest import AppFactory
from tests.e2e.conftest import AUTH, INVOICE, Api, serve

PROBLEM = "application/problem+json"


def _create(api: Api, body: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
    response = api.client.post("/api/invoices", json=body or INVOICE, headers=headers)
    assert response.status_code == 201, response.text
    return response


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    return body


def _fields(response: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in _problem(response, 422)["errors"]}


# ------------------------------------------------------------------------------ create, read


def test_create_returns_the_draft_with_priced_lines(api: Api) -> None:
    response = _create(api)
    invoice = response.json()
    assert response.headers["location"] == f"/api/invoices/{invoice['id']}"
    assert response.headers["etag"] == f'"{invoice["version"]}"'
    assert invoice["status"] == "draft"
    assert invoice["number"] is None
    assert invoice["customer"] == INVOICE["customer"]
    assert [(line["amount"], line["tax"]) for line in invoice["lines"]] == [(50_000, 0), (30_000, 6_000)]
    assert all(line["id"] for line in invoice["lines"])
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (80_000, 6_000, 86_000)
    assert (invoice["amount_paid"], invoice["amount_refunded"], invoice["amount_due"]) == (0, 0, 86_000)
    assert invoice["due_date"] == "2026-04-01"
    assert invoice["metadata"] == {"po": "PO-1138"}
    assert invoice["created_at"] == "2026-03-02T09:00:00Z"
    assert invoice["issued_at"] is None
    assert api.client.get(f"/api/invoices/{invoice['id']}").json() == invoice


def test_read_as_of_shows_the_invoice_as_it_stood(api: Api) -> None:
    invoice = _create(api).json()
    api.clock.advance(timedelta(days=3))
    api.client.post(
        f"/api/invoices/{invoice['id']}/lines", json={"description": "Support", "quantity": 1, "unit_amount": 900}
    )
    before = api.client.get(f"/api/invoices/{invoice['id']}", params={"as_of": "2026-03-03T00:00:00Z"})
    assert before.status_code == 200
    assert before.json()["total"] == 86_000
    assert api.client.get(f"/api/invoices/{invoice['id']}").json()["total"] == 86_900
    earlier = api.client.get(f"/api/invoices/{invoice['id']}", params={"as_of": "2026-03-01T00:00:00+00:00"})
    _problem(earlier, 404)  # did not exist yet
    assert "as_of" in _fields(api.client.get(f"/api/invoices/{invoice['id']}", params={"as_of": "last week"}))
    assert "as_of" in _fields(api.client.get(f"/api/invoices/{invoice['id']}", params={"as_of": "2026-03-03T00:00"}))


def test_unknown_and_malformed_invoice_ids_are_404(api: Api) -> None:
    _problem(api.client.get("/api/invoices/9b0c3e3e-0000-4000-8000-000000000000"), 404)
    _problem(api.client.get("/api/invoices/not-an-id"), 404)
    _problem(api.client.post("/api/invoices/not-an-id/issue"), 404)


def test_list_filters_and_pages_with_a_cursor(api: Api) -> None:
    ids = []
    for i in range(5):
        body = copy.deepcopy(INVOICE)
        body["customer"]["email"] = "a@x.example" if i % 2 else "b@x.example"
        body["currency"] = "eur" if i == 4 else "usd"
        ids.append(_create(api, body).json()["id"])
        api.clock.advance(timedelta(hours=1))
    api.client.post(f"/api/invoices/{ids[0]}/issue")

    listed = api.client.get("/api/invoices").json()
    assert [row["id"] for row in listed["data"]] == ids[::-1]  # newest first, our own writes included
    assert listed["has_more"] is False
    open_ = api.client.get("/api/invoices", params={"status": "open"}).json()["data"]
    assert [(row["id"], row["number"]) for row in open_] == [(ids[0], "INV-000001")]
    by_customer = api.client.get("/api/invoices", params={"customer": "a@x.example"}).json()["data"]
    assert {row["id"] for row in by_customer} == {ids[1], ids[3]}
    assert [row["id"] for row in api.client.get("/api/invoices", params={"currency": "eur"}).json()["data"]] == [ids[4]]
    window = {"created_from": "2026-03-02T10:00:00Z", "created_to": "2026-03-02T12:00:00Z"}
    assert [row["id"] for row in api.client.get("/api/invoices", params=window).json()["data"]] == [ids[2], ids[1]]

    seen: list[str] = []
    params: dict[str, str] = {"limit": "2"}
    while True:
        page = api.client.get("/api/invoices", params=params).json()
        seen += [row["id"] for row in page["data"]]
        if not page["has_more"]:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == ids[::-1]


def test_list_refuses_bad_parameters(api: Api) -> None:
    assert "limit" in _fields(api.client.get("/api/invoices", params={"limit": "0"}))
    assert "limit" in _fields(api.client.get("/api/invoices", params={"limit": "abc"}))
    assert "sort" in _fields(api.client.get("/api/invoices", params={"sort": "total"}))
    _problem(api.client.get("/api/invoices", params={"cursor": "forged"}), 422)
    assert "created_from" in _fields(api.client.get("/api/invoices", params={"created_from": "yesterday"}))


# ------------------------------------------------------------------------------ drafts


def test_patch_changes_details_and_honours_if_match(api: Api) -> None:
    invoice = _create(api).json()
    url = f"/api/invoices/{invoice['id']}"
    version = invoice["version"]
    changed = api.client.patch(url, json={"memo": "Revised", "due_date": None}, headers={"If-Match": f'"{version}"'})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["memo"], changed.json()["due_date"]) == ("Revised", None)
    assert changed.json()["version"] == version + 1
    assert changed.headers["etag"] == f'"{version + 1}"'
    stale = _problem(api.client.patch(url, json={"memo": "Again"}, headers={"If-Match": f'"{version}"'}), 412)
    assert "version" in stale["detail"]
    assert api.client.get(url).json()["memo"] == "Revised"  # the stale write changed nothing
    assert "If-Match" in _fields(api.client.patch(url, json={"memo": "x"}, headers={"If-Match": "soon"}))
    # Thousands of digits are no version either (Python's int() refuses them: that was a 500).
    huge = {"If-Match": '"' + "9" * 5_000 + '"'}
    assert "If-Match" in _fields(api.client.post(f"{url}/void", headers=huge))
    assert "If-Match" in _fields(api.client.patch(url, json={"memo": "x"}, headers={"If-Match": "1" + "0" * 18}))
    assert _fields(api.client.patch(url, json={"number": "INV-9"})) == {"number": "unknown field"}
    assert "body" in _fields(api.client.patch(url, json={}))


def test_lines_are_added_and_removed_on_drafts_only(api: Api) -> None:
    invoice = _create(api).json()
    url = f"/api/invoices/{invoice['id']}"
    added = api.client.post(f"{url}/lines", json={"description": "Setup", "quantity": "0.5", "unit_amount": 1001})
    assert added.status_code == 201
    line = added.json()["lines"][-1]
    assert (line["quantity"], line["amount"]) == ("0.5", 501)  # 500.5 rounds half-up, once
    removed = api.client.delete(f"{url}/lines/{line['id']}")
    assert removed.status_code == 200
    assert len(removed.json()["lines"]) == 2
    _problem(api.client.delete(f"{url}/lines/no-such-line"), 404)
    api.client.post(f"{url}/issue")
    refused = _problem(
        api.client.post(f"{url}/lines", json={"description": "Late", "quantity": 1, "unit_amount": 1}), 409
    )
    assert "draft" in refused["detail"]


def test_delete_draft(api: Api) -> None:
    invoice = _create(api).json()
    url = f"/api/invoices/{invoice['id']}"
    assert api.client.delete(url).status_code == 204
    gone = _problem(api.client.get(url), 404)
    assert "deleted" in gone["detail"]
    history = api.client.get(f"{url}/events").json()["data"]
    assert [event["type"] for event in history][-1] == "invoice.draft-deleted"
    issued = _create(api).json()
    api.client.post(f"/api/invoices/{issued['id']}/issue")
    _problem(api.client.delete(f"/api/invoices/{issued['id']}"), 409)


def test_a_deleted_draft_is_gone_from_reads_lists_and_later_commands(api: Api) -> None:
    kept = _create(api).json()
    draft = _create(api).json()
    url = f"/api/invoices/{draft['id']}"
    once = {"Idempotency-Key": "delete-once"}
    assert api.client.delete(url, headers=once).status_code == 204
    assert api.client.delete(url, headers=once).status_code == 204  # the same request: the first answer
    assert _problem(api.client.delete(url), 404)["type"] == "urn:ledger:problem:invoice-deleted"
    _problem(api.client.get(url), 404)
    later = _problem(api.client.get(url, params={"as_of": "2999-01-01T00:00:00Z"}), 404)  # after it: gone
    assert later["type"] == "urn:ledger:problem:invoice-deleted"
    _problem(api.client.get(url), 404)  # and no render of it was kept for the next read
    assert _problem(api.client.post(f"{url}/checkout"), 404)["type"] == "urn:ledger:problem:invoice-deleted"
    _problem(api.client.post(f"{url}/lines", json={"description": "x", "quantity": 1, "unit_amount": 1}), 404)
    _problem(api.client.patch(url, json={"memo": "again"}), 404)
    assert [row["id"] for row in api.client.get("/api/invoices").json()["data"]] == [kept["id"]]
    assert api.client.get("/api/invoices", params={"status": "draft"}).json()["data"] == [
        api.client.get("/api/invoices").json()["data"][0]
    ]
    refused = _problem(api.client.get("/api/invoices", params={"status": "deleted"}), 422)
    assert refused["errors"][0]["field"] == "status"


# ------------------------------------------------------------------------------ lifecycle and payments


def test_issue_pay_and_read_the_trail(api: Api) -> None:
    invoice = _create(api).json()
    url = f"/api/invoices/{invoice['id']}"
    issued = api.client.post(url + "/issue", json={"due_date": "2026-04-15"})
    assert issued.status_code == 200, issued.text
    assert (issued.json()["status"], issued.json()["number"], issued.json()["due_date"]) == (
        "open",
        "INV-000001",
        "2026-04-15",
    )
    paid = api.client.post(url + "/payments", json={"amount": 6_000, "reference": "wire 7781"})
    assert paid.status_code == 201, paid.text
    payment, after = paid.json()["payment"], paid.json()["invoice"]
    assert (payment["amount"], payment["currency"], payment["status"], payment["reference"]) == (
        6_000,
        "usd",
        "succeeded",
        "wire 7781",
    )
    assert (after["amount_paid"], after["amount_due"]) == (6_000, 80_000)
    rest = api.client.post(url + "/payments", json={"amount": 80_000, "currency": "usd", "reference": "wire 7790"})
    assert rest.json()["invoice"]["status"] == "paid"
    trail = api.client.get(url + "/events").json()["data"]
    assert [e["type"] for e in trail] == [
        "invoice.created",
        "invoice.line-added",
        "invoice.line-added",
        "invoice.issued",
        "invoice.payment-applied",
        "invoice.payment-applied",
        "invoice.paid",
    ]
    assert trail[3]["data"]["number"] == "INV-000001"
    assert [e["version"] for e in trail] == list(range(1, 8))


def test_void_and_mark_uncollectible_follow_the_rules(api: Api) -> None:
    first = _create(api).json()["id"]
    _problem(api.client.post(f"/api/invoices/{first}/void"), 409)  # a draft is deleted, not voided
    api.client.post(f"/api/invoices/{first}/issue")
    voided = api.client.post(f"/api/invoices/{first}/void")
    assert (voided.status_code, voided.json()["status"], voided.json()["amount_due"]) == (200, "void", 0)
    _problem(api.client.post(f"/api/invoices/{first}/payments", json={"amount": 100, "reference": "w"}), 409)

    second = _create(api).json()["id"]
    api.client.post(f"/api/invoices/{second}/issue")
    written_off = api.client.post(f"/api/invoices/{second}/mark-uncollectible")
    assert written_off.json()["status"] == "uncollectible"
    recovered = api.client.post(f"/api/invoices/{second}/payments", json={"amount": 86_000, "reference": "w"})
    assert recovered.json()["invoice"]["status"] == "paid"
    assert _fields(api.client.post(f"/api/invoices/{second}/void", json={"reason": "x"})) == {"reason": "unknown field"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": 0, "reference": "w"}, "amount"),
        ({"amount": -5, "reference": "w"}, "amount"),
        ({"amount": 10.5, "reference": "w"}, "amount"),
        ({"amount": "100", "reference": "w"}, "amount"),
        ({"amount": True, "reference": "w"}, "amount"),
        ({"amount": 10**16, "reference": "w"}, "amount"),
        ({"reference": "w"}, "amount"),
        ({"amount": 100, "currency": "usdollars", "reference": "w"}, "currency"),
        ({"amount": 100, "fee": 1, "reference": "w"}, "fee"),
        ({"amount": 100}, "reference"),
        ({"amount": 100, "reference": ""}, "reference"),
        ({"amount": 100, "reference": "   "}, "reference"),
        ({"amount": 100, "reference": 42}, "reference"),
        ({"amount": 100, "reference": "x" * 256}, "reference"),
    ],
)
def test_payment_input_is_refused_by_field(api: Api, body: dict[str, Any], field: str) -> None:
    invoice = _create(api).json()["id"]
    api.client.post(f"/api/invoices/{invoice}/issue")
    head = api.app.head()
    assert field in _fields(api.client.post(f"/api/invoices/{invoice}/payments", json=body))
    assert api.app.head() == head  # nothing stored


def test_a_payment_in_another_currency_is_refused(api: Api) -> None:
    invoice = _create(api).json()["id"]
    api.client.post(f"/api/invoices/{invoice}/issue")
    _problem(
        api.client.post(f"/api/invoices/{invoice}/payments", json={"amount": 100, "currency": "eur", "reference": "w"}),
        422,
    )


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b.update(currency="XYZ"), "currency"),
        (lambda b: b.update(currency="zzz"), "currency"),
        (lambda b: b["lines"][1].update(unit_amount=25.0), "lines[1].unit_amount"),
        (lambda b: b["lines"][1].update(unit_amount="2500"), "lines[1].unit_amount"),
        (lambda b: b["lines"][0].update(quantity=-1), "lines[0].quantity"),
        (lambda b: b["lines"][0].update(quantity=1.5), "lines[0].quantity"),
        (lambda b: b["lines"][0].update(quantity="1e3"), "lines[0].quantity"),
        (lambda b: b["lines"][0].update(quantity="٣"), "lines[0].quantity"),  # was stored as 3
        (lambda b: b["lines"][0].update(quantity=" 1 "), "lines[0].quantity"),  # was stored as 1
        (lambda b: b["lines"][1].update(tax_rate="+20"), "lines[1].tax_rate"),
        (lambda b: b["lines"][1].update(tax_rate="120"), "lines[1].tax_rate"),
        (lambda b: b["lines"][0].update(colour="red"), "lines[0].colour"),
        (lambda b: b["lines"][0].pop("description"), "lines[0].description"),
        (lambda b: b["lines"][0].update(description="x" * 501), "lines[0].description"),
        (lambda b: b.update(due_date="2026-02-30"), "due_date"),
        (lambda b: b.update(due_date="01/04/2026"), "due_date"),
        (lambda b: b.update(memo="m" * 5001), "memo"),
        (lambda b: b.update(metadata={"k": 1}), "metadata"),
        (lambda b: b.update(extra=True), "extra"),
        (lambda b: b["customer"].update(email="not-an-email"), "customer.email"),
        (lambda b: b.update(customer="Acme"), "customer"),
        (lambda b: b.pop("currency"), "currency"),
        (lambda b: b.update(lines={"description": "x"}), "lines"),
    ],
)
def test_create_names_each_bad_field_and_stores_nothing(api: Api, change: Any, field: str) -> None:
    body = copy.deepcopy(INVOICE)
    change(body)
    head = api.app.head()
    assert field in _fields(api.client.post("/api/invoices", json=body))
    assert api.app.head() == head


def test_every_bad_field_is_named_at_once(api: Api) -> None:
    body = copy.deepcopy(INVOICE)
    body.update(currency="usx", extra=1)
    body["lines"][0].update(quantity=0)
    body["lines"][1].update(unit_amount=1.25)
    assert set(_fields(api.client.post("/api/invoices", json=body))) == {
        "currency",
        "extra",
        "lines[0].quantity",
        "lines[1].unit_amount",
    }


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b'{"customer": ', "application/json", 400),
        (b'{"currency": NaN}', "application/json", 400),
        (b'{"currency": "usd", "currency": "eur"}', "application/json", 400),
        (b"\xff\xfe", "application/json", 400),
        (b"[1, 2]", "application/json", 400),  # not an object: not a request at all
        (b"currency=usd", "application/x-www-form-urlencoded", 415),
        (b"x" * (1024 * 1024 + 1), "application/json", 413),
    ],
)
def test_malformed_bodies_are_refused(api: Api, raw: bytes, content_type: str, status: int) -> None:
    head = api.app.head()
    _problem(api.client.post("/api/invoices", content=raw, headers={"Content-Type": content_type}), status)
    assert api.app.head() == head


def test_a_huge_body_is_refused_while_streaming(api: Api) -> None:
    def chunks() -> Any:
        for _ in range(300):
            yield b" " * 4096  # no Content-Length: chunked, 1.2 MB

    response = api.client.post("/api/invoices", content=chunks(), headers={"Content-Type": "application/json"})
    _problem(response, 413)


# ------------------------------------------------------------------------------ auth, idempotency, HTTP


def test_api_routes_need_the_bearer_token(api: Api) -> None:
    with httpx.Client(base_url=api.base_url) as anonymous:
        missing = anonymous.get("/api/invoices")
        assert _problem(missing, 401)["detail"].startswith("send Authorization")
        assert missing.headers["www-authenticate"].startswith("Bearer")
        _problem(anonymous.post("/api/invoices", json=INVOICE, headers={"Authorization": "Bearer wrong"}), 401)
        _problem(anonymous.get("/api/invoices", headers={"Authorization": AUTH["Authorization"] + "x"}), 401)
        assert anonymous.get("/healthz").json()["status"] == "ok"
    assert api.app.head() == 0


def test_a_retry_with_the_same_key_returns_the_first_response(api: Api) -> None:
    key = {"Idempotency-Key": "create-7f3a"}
    first = _create(api, **key)
    invoice_id = first.json()["id"]
    api.client.post(f"/api/invoices/{invoice_id}/lines", json={"description": "Later", "quantity": 1, "unit_amount": 5})
    again = api.client.post("/api/invoices", json=INVOICE, headers=key)
    assert (again.status_code, again.json()) == (201, first.json())  # as it was, not as it is now
    assert len(api.client.get("/api/invoices").json()["data"]) == 1

    different = dict(INVOICE, memo="another request")
    _problem(api.client.post("/api/invoices", json=different, headers=key), 422)

    pay_key = {"Idempotency-Key": "pay-1"}
    api.client.post(f"/api/invoices/{invoice_id}/issue")
    pay = {"amount": 700, "reference": "wire 1"}
    paid = api.client.post(f"/api/invoices/{invoice_id}/payments", json=pay, headers=pay_key)
    repeat = api.client.post(f"/api/invoices/{invoice_id}/payments", json=pay, headers=pay_key)
    assert repeat.json() == paid.json()
    assert api.client.get(f"/api/invoices/{invoice_id}").json()["amount_paid"] == 700


def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    _problem(api.client.get("/api/nothing-here"), 404)
    _problem(api.client.put("/api/invoices"), 405)


def test_health_shows_anyone_the_database_state_and_nothing_more(api: Api) -> None:
    _create(api)
    health = httpx.get(api.base_url + "/healthz").json()
    assert health == {"status": "ok", "database": "up"}  # no log position for anonymous callers


# ------------------------------------------------------------------------------ concurrency


def test_concurrent_payments_on_one_invoice_are_never_lost_or_doubled(api: Api) -> None:
    invoice_id = _create(api).json()["id"]
    api.client.post(f"/api/invoices/{invoice_id}/issue")
    amounts = [100 + i for i in range(24)]
    # Every request is sent twice, concurrently, with its own key: the duplicate must not count.
    requests = [(amount, f"pay-{i}") for i, amount in enumerate(amounts)] * 2

    def pay(item: tuple[int, str]) -> int:
        amount, key = item
        with httpx.Client(base_url=api.base_url, headers=AUTH, timeout=60) as client:
            response = client.post(
                f"/api/invoices/{invoice_id}/payments",
                json={"amount": amount, "reference": f"wire {key}"},
                headers={"Idempotency-Key": key},
            )
        return response.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(pay, requests))
    assert set(statuses) == {201}, statuses
    invoice = api.client.get(f"/api/invoices/{invoice_id}").json()
    assert invoice["amount_paid"] == sum(amounts)
    assert invoice["amount_due"] == 86_000 - sum(amounts)
    applied = [
        e
        for e in api.client.get(f"/api/invoices/{invoice_id}/events").json()["data"]
        if e["type"] == "invoice.payment-applied"
    ]
    assert sorted(e["data"]["amount"] for e in applied) == sorted(amounts)
    assert json.dumps(invoice)  # plain JSON throughout


def test_concurrent_creates_with_the_in_process_follower_running(
    make_app: AppFactory, database_url: str, clock: ManualClock
) -> None:
    """The follower never waits on the event store while holding the read models' write lock:
    on SQLite (one database, one writer) that once deadlocked with commands until a 5 s timeout."""
    app = make_app()
    engine = read_model_engine(database_url)
    served = serve(app, engine, clock, follow=True)
    try:

        def create(i: int) -> int:
            with httpx.Client(base_url=served.base_url, headers=AUTH, timeout=60) as client:
                body = dict(INVOICE, memo=f"concurrent {i}")
                return client.post("/api/invoices", json=body, headers={"Idempotency-Key": f"c-{i}"}).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(create, range(64)))
        assert statuses == [201] * 64
        with httpx.Client(base_url=served.base_url, headers=AUTH) as client:
            assert len(client.get("/api/invoices", params={"limit": "100"}).json()["data"]) == 64
    finally:
        served.stop()
        engine.dispose()


def test_a_read_never_serves_a_kept_rendering_after_another_process_wrote(api: Api, make_app: AppFactory) -> None:
    invoice = _create(api).json()
    url = f"/api/invoices/{invoice['id']}"
    assert api.client.get(url).json() == api.client.get(url).json() == invoice  # the second from what was kept
    other = make_app()  # another process on the same database: this server's caches know nothing of it
    other.issue(UUID(invoice["id"]))
    now = api.client.get(url)
    assert (now.json()["status"], now.json()["version"]) == ("open", invoice["version"] + 1)
    assert now.headers["etag"] == f'"{invoice["version"] + 1}"'
    api.clock.advance(timedelta(days=40))  # past the due date: "overdue" is a function of the day
    assert api.client.get(url).json()["overdue"] is True


# ------------------------------------------------------------------------------ offline payments


def test_a_payment_retried_without_a_key_is_recorded_once_by_its_reference(api: Api) -> None:
    invoice = _create(api).json()["id"]
    api.client.post(f"/api/invoices/{invoice}/issue")
    body = {"amount": 6_000, "reference": "BACS 88213"}
    first = api.client.post(f"/api/invoices/{invoice}/payments", json=body)
    assert first.status_code == 201, first.text
    head = api.app.head()
    again = api.client.post(f"/api/invoices/{invoice}/payments", json=body)  # the response was lost: retried
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert api.app.head() == head  # nothing stored
    assert api.client.get(f"/api/invoices/{invoice}").json()["amount_paid"] == 6_000

    other = _problem(api.client.post(f"/api/invoices/{invoice}/payments", json={**body, "amount": 7_000}), 409)
    assert "BACS 88213" in other["detail"]
    assert api.app.head() == head


def test_a_payment_honours_if_match(api: Api) -> None:
    invoice = _create(api).json()["id"]
    issued = api.client.post(f"/api/invoices/{invoice}/issue")
    version = issued.headers["ETag"]
    paid = api.client.post(
        f"/api/invoices/{invoice}/payments",
        json={"amount": 1_000, "reference": "wire 1"},
        headers={"If-Match": version},
    )
    assert paid.status_code == 201, paid.text
    head = api.app.head()
    stale = api.client.post(
        f"/api/invoices/{invoice}/payments",
        json={"amount": 1_000, "reference": "wire 2"},
        headers={"If-Match": version},
    )
    _problem(stale, 412)
    assert api.app.head() == head
    assert "If-Match" in _fields(
        api.client.post(
            f"/api/invoices/{invoice}/payments", json={"amount": 1, "reference": "wire 3"}, headers={"If-Match": "soon"}
        )
    )
    current = paid.headers["ETag"]
    fresh = api.client.post(
        f"/api/invoices/{invoice}/payments",
        json={"amount": 1_000, "reference": "wire 2"},
        headers={"If-Match": current},
    )
    assert fresh.status_code == 201, fresh.text

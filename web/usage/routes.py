"""The usage routes: meters, prices, usage customers, batches of usage records, closing a
period into a draft invoice. Parse -> command or query -> render; writes take
`Idempotency-Key` like the invoice routes (a repeat is answered as the first request was).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ledger.errors import InvalidInputError, MeterNotFoundError
from ledger.usage.pricing import require_terms
from web.body import read_json
from web.decoding import RequestInvalidError, decode
from web.invoices import _blocking, idempotency_key_of, services_of
from web.models import Empty
from web.operations import READ, WRITE, Endpoint, Operation
from web.render import invoice_json
from web.usage import models
from web.usage.rendering import accepted_json, meter_json, price_json, usage_customer_json


def routes() -> list[Route]:
    key, write = ("Idempotency-Key",), (*WRITE, 409)
    return [
        Endpoint("/api/meters", create_meter, "POST", Operation(
            "createMeter", "Define a meter", 201, models.Meter, models.NewMeter, body_required=True, headers=key,
            problems=write, response_headers=("Location",))),
        Endpoint("/api/meters", list_meters, "GET", Operation(
            "listMeters", "List the meters", response=models.MeterList)),
        Endpoint("/api/meters/{key}", read_meter, "GET", Operation(
            "getMeter", "Read a meter", response=models.Meter, problems=(*READ, 404))),
        Endpoint("/api/prices", create_price, "POST", Operation(
            "createPrice", "Define a metered price", 201, models.Price, models.NewPrice, body_required=True,
            headers=key, problems=write, response_headers=("Location",))),
        Endpoint("/api/prices", list_prices, "GET", Operation(
            "listPrices", "List the prices", response=models.PriceList)),
        Endpoint("/api/prices/{key}", read_price, "GET", Operation(
            "getPrice", "Read a price", response=models.Price, problems=(*READ, 404))),
        Endpoint("/api/usage-customers", create_usage_customer, "POST", Operation(
            "createUsageCustomer", "Set up a customer billed for usage", 201, models.UsageCustomer,
            models.NewUsageCustomer, body_required=True, headers=key, problems=write,
            response_headers=("Location",))),
        Endpoint("/api/usage-customers/{key}", read_usage_customer, "GET", Operation(
            "getUsageCustomer", "Read a usage customer and its periods", response=models.UsageCustomer,
            problems=(*READ, 404))),
        Endpoint("/api/usage-customers/{key}/close-period", close_period, "POST", Operation(
            "closeUsagePeriod", "Close the next billing period into a draft invoice", 201, models.PeriodClosed,
            Empty, headers=key, problems=(*write, 404), response_headers=("Location",))),
        Endpoint("/api/usage", record_usage, "POST", Operation(
            "recordUsage", "Record a batch of usage records", response=models.UsageBatch, body=models.NewUsageBatch,
            body_required=True, headers=key, problems=(*WRITE, 404))),
    ]  # fmt: skip


async def create_meter(request: Request) -> Response:
    """Define a meter: 201 with it; 409 if the key is taken (meters never change)."""
    services = services_of(request)
    new = decode(models.NewMeter, await read_json(request))
    key = idempotency_key_of(request)

    def run() -> Response:
        meter_key = services.app.usage.define_meter(
            key=new.key, name=new.name, aggregation=new.aggregation, event_name=new.event_name, idempotency_key=key
        ).result
        meter = services.app.usage.catalog().meter(meter_key)
        return JSONResponse(meter_json(meter), 201, headers={"Location": f"/api/meters/{meter_key}"})

    return await _blocking(run)


async def list_meters(request: Request) -> Response:
    services = services_of(request)
    catalog = await _blocking(services.app.usage.catalog)
    body: models.MeterList = {"object": "list", "data": [meter_json(m) for _, m in sorted(catalog.meters.items())]}
    return JSONResponse(body)


async def read_meter(request: Request) -> Response:
    services = services_of(request)
    catalog = await _blocking(services.app.usage.catalog)
    meter = catalog.meters.get(request.path_params["key"])
    if meter is None:
        raise MeterNotFoundError(request.path_params["key"])
    return JSONResponse(meter_json(meter))


async def create_price(request: Request) -> Response:
    """Define a metered price: 201 with it; 409 if the key is taken (prices never change)."""
    services = services_of(request)
    new = decode(models.NewPrice, await read_json(request))
    terms = _terms(new)
    key = idempotency_key_of(request)

    def run() -> Response:
        price_key = services.app.usage.define_price(
            key=new.key, meter=new.meter, currency=new.currency, model=new.model, terms=terms, idempotency_key=key
        ).result
        definition = services.app.usage.catalog().price(price_key)
        return JSONResponse(price_json(definition), 201, headers={"Location": f"/api/prices/{price_key}"})

    return await _blocking(run)


async def list_prices(request: Request) -> Response:
    services = services_of(request)
    catalog = await _blocking(services.app.usage.catalog)
    body: models.PriceList = {"object": "list", "data": [price_json(p) for _, p in sorted(catalog.prices.items())]}
    return JSONResponse(body)


async def read_price(request: Request) -> Response:
    services = services_of(request)
    catalog = await _blocking(services.app.usage.catalog)
    return JSONResponse(price_json(catalog.price(request.path_params["key"])))


def _terms(new: models.NewPrice) -> dict[str, Any]:
    """The price's terms, checked here by the domain's rule so that a bad term is named as a field."""
    terms = new.terms()
    try:
        require_terms(new.model, terms)
    except InvalidInputError as error:
        raise RequestInvalidError([{"field": error.field or "model", "message": str(error)}]) from None
    return terms


async def create_usage_customer(request: Request) -> Response:
    """Set up a customer billed for usage: 201 with it."""
    services = services_of(request)
    new = decode(models.NewUsageCustomer, await read_json(request))
    key = idempotency_key_of(request)

    def run() -> Response:
        customer_key = services.app.usage.set_up_customer(
            key=new.key,
            customer=new.customer.model_dump(),
            currency=new.currency,
            timezone=new.timezone,
            prices=new.prices,
            billing_anchor_day=new.billing_anchor_day,
            starts_at=new.starts_at,
            stripe_customer_id=new.stripe_customer_id,
            idempotency_key=key,
        ).result
        customer = services.app.usage.customer(customer_key)
        headers = {"Location": f"/api/usage-customers/{customer_key}"}
        return JSONResponse(usage_customer_json(customer), 201, headers=headers)

    return await _blocking(run)


async def read_usage_customer(request: Request) -> Response:
    services = services_of(request)
    customer = await _blocking(services.app.usage.customer, request.path_params["key"])
    return JSONResponse(usage_customer_json(customer))


async def record_usage(request: Request) -> Response:
    """A batch of usage records: 200 naming each one accepted or duplicate; 422 (nothing stored)
    if any record is bad, each named as `records[i].field`."""
    services = services_of(request)
    records = decode(models.NewUsageBatch, await read_json(request)).records
    key = idempotency_key_of(request)
    outcome = await _blocking(services.app.usage.record, records, idempotency_key=key)
    return JSONResponse(accepted_json(outcome.result, records))


async def close_period(request: Request) -> Response:
    """Close the customer's next billing period into a draft invoice: 201 with its id and the draft;
    409 if that period has not ended."""
    services = services_of(request)
    decode(Empty, await read_json(request))
    customer_key = request.path_params["key"]
    key = idempotency_key_of(request)

    def run() -> Response:
        app = services.app
        outcome = app.usage.close_period(customer_key, idempotency_key=key)
        closed = outcome.result
        invoice = app.invoice(closed.invoice_id, version=outcome.version_of(closed.invoice_id))
        body: models.PeriodClosed = {
            "object": "period_closed",
            "invoice_id": str(closed.invoice_id),
            "period_start": closed.period_start,
            "period_end": closed.period_end,
            "invoice": invoice_json(invoice, today=services.clock.now().date()),
        }
        return JSONResponse(body, 201, headers={"Location": f"/api/invoices/{closed.invoice_id}"})

    return await _blocking(run)

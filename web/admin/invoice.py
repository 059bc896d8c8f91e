"""`/admin/invoices/{id}`: one invoice, its history, its audit, and what may be done to it.

The page shows the invoice as it stands, or as it stood (`?as_of=<moment>`, `?version=<n>`).
"As it stood" is exactly the API's `GET /api/invoices/{id}?as_of=`: the same replay
(`app.invoice_as_of`) and the same rendering of the invoice (`web.render.invoice_json`), so the
dashboard and the API never disagree about an amount. Refunds and disputes are read from the
invoice's own events, so they too are shown as they stood; payments, dunning and the actions
belong to the present and are shown only then.

The timeline lists the events (moment, topic, version, what it carried), each moment a link
to the invoice as it stood right after it, beside the audit chain's verdict on that event
(projections/admin/invoices.py `invoice_audit`: its stored bytes re-hashed against the chain).
It shows TIMELINE_PAGE of them, the newest (or, as it stood, those around the version shown),
with keyset links to older and newer ones (`?events_before=<version>`): an invoice with a
thousand events costs a page of them to show, not its whole history read, decoded, audited and
rendered. The invoice itself comes from the application (its aggregate cache, or one load at
`?version=`), never from replaying the history a second time here.

Actions are POST forms (the CSRF token is checked by web/admin/security.py, which also refuses
an auditor's POST). Each runs its command off the event loop inside `acting(...)`, so the
activity page lists it with who did it, then redirects back here with a flash (PRG). A hidden
`version` field makes a click on a page gone stale (someone acted meanwhile) a 412, not an
action on an invoice the admin did not see. Opening a checkout is the exception to PRG: its
answer is the page of the provider's session URL, to open or hand to the customer (repeating the
POST meets the same session: web/checkout.py derives the provider's idempotency key).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from uuid import UUID

from eventsourcing.utils import get_topic
from pydantic import BaseModel, ConfigDict, PlainValidator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from commands.runner import Outcome
from ledger.errors import InvalidInputError
from ledger.invoices import DRAFT, OPEN, UNCOLLECTIBLE, Invoice
from ledger.money import Money
from ledger.validation import require_date
from projections.admin.dunning import dunning_row
from projections.admin.invoices import NOT_CHAINED, OK, invoice_audit
from projections.payments import list_payments
from web import models
from web.admin.context import acting
from web.admin.invoices import major_units, text_field
from web.admin.rendering import badge, render
from web.admin.security import blocking
from web.checkout import open_checkout
from web.decoding import RequestInvalidError, decode, rule
from web.invoices import invoice_id_of
from web.render import invoice_json, moment
from web.services import Services

# The fixed texts of the flash a redirect names (`?done=voided`): a link cannot make the page say
# anything else.
FLASH = {
    "issued": "The invoice was issued.",
    "voided": "The invoice was voided.",
    "uncollectible": "The invoice was marked uncollectible.",
    "payment": "The payment was recorded.",
    "reminded": "A reminder was requested: the mailer sends it.",
}
# Event fields that are amounts in the invoice's minor units: shown with its decimals.
AMOUNT_FIELDS = frozenset(
    {
        "amount",
        "fee",
        "subtotal",
        "tax",
        "total",
        "unit_amount",
        "amount_paid",
        "written_off",
        "recovered",
        "from_credit",
    }
)
# The audit verdicts of projections/admin/invoices.py, as badge colours: anything else is a problem.
AUDIT_BADGES = {OK: "ok", NOT_CHAINED: "pending"}
TIMELINE_PAGE = 100  # events per page of the timeline, as a payment provider's event lists page them
PAYMENTS_SHOWN = 200  # an invoice has a handful; a page would not show more usefully
# Every event has these (web/render.py leaves them out of an event's data too).
_BASE_FIELDS = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})


def routes() -> list[BaseRoute]:
    return [
        Route("/invoices/{invoice_id}", invoice_page, methods=["GET"]),
        Route("/invoices/{invoice_id}/issue", issue, methods=["POST"]),
        Route("/invoices/{invoice_id}/void", void, methods=["POST"]),
        Route("/invoices/{invoice_id}/uncollectible", uncollectible, methods=["POST"]),
        Route("/invoices/{invoice_id}/payment", record_payment, methods=["POST"]),
        Route("/invoices/{invoice_id}/checkout", checkout, methods=["POST"]),
        Route("/invoices/{invoice_id}/remind", remind, methods=["POST"]),
    ]


# ------------------------------------------------------------------------------ the page


def _moment(value: object) -> datetime:
    """An ISO 8601 moment with its zone (the timeline's links), or the `datetime-local` input's
    value without one, read as UTC (the form says so)."""
    if not isinstance(value, str):
        raise InvalidInputError("must be a date and time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError("must be a date and time such as 2026-03-01T14:05:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidInputError("is out of range") from None


def _version(value: object) -> int:
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:
        raise InvalidInputError("must be a version number, 1 or more")
    return int(text)


class InvoiceView(BaseModel):
    model_config = ConfigDict(extra="ignore")

    as_of: Annotated[datetime | None, PlainValidator(rule(_moment))] = None
    version: Annotated[int | None, PlainValidator(rule(_version))] = None
    events_before: Annotated[int | None, PlainValidator(rule(_version))] = None
    done: str | None = None


@dataclass
class InvoicePage:
    """Everything the template shows, read in one trip off the event loop."""

    invoice: models.Invoice
    number: str | None
    status: str
    latest_version: int
    as_of: datetime | None
    at_version: int | None
    timeline: list[dict[str, Any]]  # one page of the events, oldest first
    audit_problems: int  # of the versions shown: events altered, or chained and no longer stored
    audit_pending: int  # of the versions shown: events newer than the chain's head
    refunds: list[dict[str, Any]]
    disputes: list[dict[str, Any]]
    checkouts: list[dict[str, Any]]
    payments: list[dict[str, Any]] = field(default_factory=list)
    dunning: dict[str, Any] | None = None
    actions: dict[str, bool] = field(default_factory=dict)
    older_href: str | None = None  # the timeline's page before this one, if there are older events
    newer_href: str | None = None  # the one after it, if there are newer events


async def invoice_page(request: Request) -> Response:
    services: Services = request.app.state.services
    invoice_id = invoice_id_of(request)
    view = decode(InvoiceView, {k: v for k, v in request.query_params.items() if v != ""})
    if view.as_of is not None and view.version is not None:
        raise RequestInvalidError([{"field": "as_of", "message": "give a moment or a version, not both"}])
    page = await run_in_threadpool(_read, services, invoice_id, view)
    return _render(request, page, flash=FLASH.get(view.done or ""))


def _render(
    request: Request, page: InvoicePage, *, flash: str | None = None, checkout_url: str | None = None
) -> Response:
    return render(
        request,
        "admin/invoice.html",
        {
            "page": page,
            "invoice": page.invoice,
            "flash": flash,
            "checkout_url": checkout_url,
            "amount_example": major_units(1234, page.invoice["currency"]),
        },
    )


def _read(services: Services, invoice_id: UUID, view: InvoiceView) -> InvoicePage:
    app = services.app
    services.read_models.catch_up()  # the audit chain and the payments of what was just recorded
    latest = app.invoice(invoice_id)  # 404 for an invoice that never was; the aggregate cache's
    if view.as_of is not None:
        invoice = app.invoice_as_of(invoice_id, view.as_of)  # 404 before its creation, as the API
    elif view.version is not None:
        if view.version > latest.version:
            raise RequestInvalidError(
                [{"field": "version", "message": f"the invoice has {latest.version} versions, not {view.version}"}]
            )
        invoice = app.invoice(invoice_id, version=view.version)
    else:
        invoice = latest
    past = view.as_of is not None or view.version is not None
    before = _events_before(view, latest.version, invoice.version if past else None)
    events = app.invoice_events(invoice_id, before=before, limit=TIMELINE_PAGE)
    engine = services.read_models.engine
    audit: dict[int, str] = {}
    if events:  # only the versions shown are re-hashed against the chain
        first, last = events[0].originator_version, events[-1].originator_version
        entries = invoice_audit(engine, app.recorder, invoice_id, after=first - 1, upto=last)
        audit = {entry["version"]: entry["status"] for entry in entries}
    here = f"/admin/invoices/{invoice_id}"
    page = InvoicePage(
        invoice=invoice_json(invoice, today=services.clock.now().date()),
        number=invoice.number,
        status=invoice.status,
        latest_version=latest.version,
        as_of=view.as_of,
        at_version=invoice.version if past else None,
        timeline=[_timeline_entry(event, here, invoice, audit) for event in events],
        audit_problems=sum(1 for status in audit.values() if status not in (OK, NOT_CHAINED)),
        audit_pending=sum(1 for status in audit.values() if status == NOT_CHAINED),
        refunds=[],
        disputes=[],
        checkouts=[{"session_id": key, **value} for key, value in invoice.checkouts.items()],
    )
    _page_links(page, here, view, events, before=before, latest=latest.version)
    if invoice.refund_ids or invoice.disputes:  # most invoices have neither: nothing more to read
        moved = app.invoice_events(invoice_id, before=invoice.version + 1, topics=_REFUND_AND_DISPUTE_TOPICS)
        page.refunds = _refunds(moved)
        page.disputes = _disputes(moved, invoice)
    if not past:
        page.payments = list_payments(engine, invoice_id=str(invoice_id), limit=PAYMENTS_SHOWN).rows
        page.dunning = dunning_row(engine, str(invoice_id))
        # Checkout's return pages are the portal's, under a signed link: without LEDGER_SECRET_KEY
        # there are none to send the customer back to, so the button is not offered.
        configured = services.payments is not None and services.secret_key is not None
        page.actions = allowed_actions(invoice, checkout_configured=configured)
    return page


# The stored topics of the events the refunds and disputes tables are read from.
_REFUND_AND_DISPUTE_TOPICS = (get_topic(Invoice.RefundApplied), get_topic(Invoice.DisputeOpened))


def _events_before(view: InvoiceView, latest: int, shown: int | None) -> int:
    """The version the timeline's page ends before: the one asked for, else past the newest,
    else (the invoice as it stood) so that the version shown is in the middle of the page."""
    if view.events_before is not None:
        if view.events_before > latest + 1:
            message = f"the invoice has {latest} versions, not {view.events_before - 1}"
            raise RequestInvalidError([{"field": "events_before", "message": message}])
        return view.events_before
    if shown is None:
        return latest + 1
    return min(latest, shown + TIMELINE_PAGE // 2) + 1


def _page_links(
    page: InvoicePage, here: str, view: InvoiceView, events: list[Invoice.Event], *, before: int, latest: int
) -> None:
    """The keyset links to the timeline's older and newer pages, keeping what the page shows
    (`as_of` or `version`)."""
    kept: dict[str, str] = {}
    if view.as_of is not None:
        kept["as_of"] = view.as_of.isoformat().replace("+00:00", "Z")
    elif view.version is not None:
        kept["version"] = str(view.version)
    oldest = events[0].originator_version if events else before
    if oldest > 1:
        page.older_href = f"{here}?{urlencode({**kept, 'events_before': oldest})}"
    newest = before - 1
    if newest < latest:
        page.newer_href = f"{here}?{urlencode({**kept, 'events_before': min(newest + TIMELINE_PAGE, latest) + 1})}"


def allowed_actions(invoice: Invoice, *, checkout_configured: bool) -> dict[str, bool]:
    """What the invoice's state allows (the commands check again: a button is a convenience)."""
    collectible = invoice.status in (OPEN, UNCOLLECTIBLE) and invoice.amount_due > 0
    return {
        "issue": invoice.status == DRAFT,
        "void": invoice.status in (OPEN, UNCOLLECTIBLE) and invoice.amount_paid == 0,
        "uncollectible": invoice.status == OPEN,
        "payment": collectible,
        "checkout": collectible and checkout_configured,
        "remind": invoice.status == OPEN,
    }


def _timeline_entry(event: Invoice.Event, here: str, shown: Invoice, audit: dict[int, str]) -> dict[str, Any]:
    """One row of the timeline, its texts made here: a page may hold a thousand of them, and a
    string built in Python costs less than the template's loops and filters."""
    at = moment(event.timestamp) or ""
    when = event.timestamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    topic = getattr(type(event), "TOPIC", type(event).__name__)
    check = audit.get(event.originator_version, NOT_CHAINED)
    return {
        "version": event.originator_version,
        "topic": topic,
        "at": at,
        "href": f"{here}?as_of={quote(at)}",
        "moment": f"{when} UTC",
        "changes": "; ".join(
            f"{name} {_shown_value(name, getattr(event, name), shown.currency)}" for name in _fields_of(type(event))
        ),
        "applied": event.originator_version <= shown.version,
        "audit": check,
        "audit_badge": badge(AUDIT_BADGES.get(check, "broken")),
    }


@cache
def _fields_of(kind: type) -> tuple[str, ...]:
    """What an event class carries besides where and when it happened, in declaration order."""
    if not is_dataclass(kind):
        return ()
    return tuple(f.name for f in fields(kind) if f.name not in _BASE_FIELDS)


def _shown_value(name: str, value: Any, currency: str) -> str:
    if name in AMOUNT_FIELDS and isinstance(value, int) and not isinstance(value, bool):
        return Money(value, currency).format()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {item}" for key, item in value.items()) + "}"
    if isinstance(value, datetime):
        return moment(value) or ""
    if value is None or value == "":
        return "—"
    return str(value)


def _refunds(events: list[Invoice.Event]) -> list[dict[str, Any]]:
    return [
        {"refund_id": e.refund_id, "payment_id": e.payment_id, "amount": e.amount, "at": e.timestamp}
        for e in events
        if isinstance(e, Invoice.RefundApplied)
    ]


def _disputes(events: list[Invoice.Event], invoice: Invoice) -> list[dict[str, Any]]:
    opened = {e.dispute_id: e.timestamp for e in events if isinstance(e, Invoice.DisputeOpened)}
    return [{"dispute_id": key, "opened_at": opened.get(key), **value} for key, value in invoice.disputes.items()]


# ------------------------------------------------------------------------------ actions


class ActionForm(BaseModel):
    """Every action's form: the version the page showed (optional: a script may leave it out)."""

    model_config = ConfigDict(extra="ignore")  # the CSRF token, checked before the handler runs

    version: Annotated[int | None, PlainValidator(rule(_version))] = None


def _dunning_version(value: object) -> int:
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InvalidInputError("must be a version number, 0 or more")
    return int(text)


class RemindForm(ActionForm):
    """A reminder changes the dunning, not the invoice: the dunning's version the page showed
    (0: not started) is what refuses the same form posted twice."""

    dunning_version: Annotated[int | None, PlainValidator(rule(_dunning_version))] = None


class IssueForm(ActionForm):
    due_date: Annotated[str | None, PlainValidator(rule(lambda value: require_date(value).isoformat()))] = None


class PaymentForm(ActionForm):
    amount: Annotated[str, text_field(40)]
    reference: Annotated[str, text_field(255)]


async def _form(request: Request) -> dict[str, str]:
    """The posted fields, empty ones left out (an empty optional field is no value)."""
    form = await request.form()
    return {name: value for name, value in form.items() if isinstance(value, str) and value != ""}


def _back(invoice_id: UUID, done: str) -> Response:
    return RedirectResponse(f"/admin/invoices/{invoice_id}?done={done}", status_code=303)


async def _act(
    request: Request, invoice_id: UUID, action: str, command: Callable[[Services], Outcome[Any]], detail: str = ""
) -> None:
    """Run `command` off the event loop as the signed-in admin, then bring the read models up
    to date so the page redirected to shows what it did."""
    services: Services = request.app.state.services

    def run() -> None:
        with acting(request, action, target=str(invoice_id), detail=detail):
            command(services)
        services.read_models.catch_up()

    await run_in_threadpool(run)


async def issue(request: Request) -> Response:
    invoice_id = invoice_id_of(request)
    form = decode(IssueForm, await _form(request))
    await _act(
        request,
        invoice_id,
        "invoice.issue",
        lambda s: s.app.issue(invoice_id, due_date=form.due_date, expected_version=form.version),
    )
    return _back(invoice_id, "issued")


async def void(request: Request) -> Response:
    invoice_id = invoice_id_of(request)
    form = decode(ActionForm, await _form(request))
    await _act(request, invoice_id, "invoice.void", lambda s: s.app.void(invoice_id, expected_version=form.version))
    return _back(invoice_id, "voided")


async def uncollectible(request: Request) -> Response:
    invoice_id = invoice_id_of(request)
    form = decode(ActionForm, await _form(request))
    await _act(
        request,
        invoice_id,
        "invoice.mark-uncollectible",
        lambda s: s.app.mark_uncollectible(invoice_id, expected_version=form.version),
    )
    return _back(invoice_id, "uncollectible")


async def record_payment(request: Request) -> Response:
    """An offline payment: the amount in major units ("12.34"), in the invoice's currency."""
    services: Services = request.app.state.services
    invoice_id = invoice_id_of(request)
    form = decode(PaymentForm, await _form(request))
    currency = (await blocking(services, services.app.invoice, invoice_id)).currency
    try:
        amount = Money.parse(form.amount.strip(), currency)
    except InvalidInputError as error:
        raise RequestInvalidError([{"field": "amount", "message": str(error)}]) from None
    await _act(
        request,
        invoice_id,
        "invoice.record-payment",
        lambda s: s.app.record_offline_payment(
            invoice_id, amount, reference=form.reference, expected_version=form.version
        ),
        detail=f"{amount.format()}, reference {form.reference.strip()}",
    )
    return _back(invoice_id, "payment")


async def checkout(request: Request) -> Response:
    """Open a checkout session for what is due (web/checkout.py, as the API does) and show its URL."""
    services: Services = request.app.state.services
    invoice_id = invoice_id_of(request)
    form = decode(ActionForm, await _form(request))
    base = (services.public_url or str(request.base_url)).rstrip("/")

    def run() -> tuple[str, InvoicePage]:
        with acting(request, "invoice.open-checkout", target=str(invoice_id)):
            session, _ = open_checkout(services, invoice_id, base=base, expected=form.version)
        return session.url, _read(services, invoice_id, InvoiceView())

    url, page = await run_in_threadpool(run)
    return _render(request, page, checkout_url=url)


async def remind(request: Request) -> Response:
    """Ask for a reminder now, outside the dunning schedule (commands/dunning.py `remind_by_hand`)."""
    invoice_id = invoice_id_of(request)
    form = decode(RemindForm, await _form(request))

    def command(services: Services) -> Outcome[Any]:
        return services.app.dunning.remind_by_hand(
            invoice_id,
            policy=services.dunning_policy,
            expected_version=form.version,
            expected_dunning_version=form.dunning_version,
        )

    await _act(request, invoice_id, "invoice.remind", command)
    return _back(invoice_id, "reminded")

"""Drain the meter-report outbox: report accepted usage of Stripe-billed customers to Stripe.

Reads the usage records stored after the reporter's position (ledger.usage.meter_reports), reports
each record of a customer billed by Stripe as a meter event (identifier: the record's id, ours
and derived, so a repeat counts once at Stripe), and records what it reported with the new
position. On a provider error it records the progress made so far, then raises: the next run
resumes after the last record reported. Records older than Stripe accepts are recorded as
skipped, with the reason, instead of blocking every record behind them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from commands.application import BillingApplication
from commands.ports import PaymentProvider
from ledger.errors import ProviderError
from ledger.usage.customers import UsageCustomer
from ledger.usage.periods import parse_moment
from ledger.usage.records import UsageRecord

PROVIDER = "stripe"
CHUNK = 500
# Stripe refuses meter events whose timestamp is more than 35 days old.
REPORT_WINDOW = timedelta(days=35)


@dataclass(frozen=True)
class Reported:
    reported: int
    skipped: int
    position: int


def report_usage(app: BillingApplication, provider: PaymentProvider, *, chunk: int = CHUNK) -> Reported:
    """Report everything not reported yet; how many were reported and skipped, and up to where."""
    reporter = app.usage.meter_reporter(PROVIDER)
    position = 0 if reporter is None else reporter.position
    totals = [0, 0]
    while True:
        rows = app.usage.records_after(position, chunk)
        if not rows:
            return Reported(totals[0], totals[1], position)
        position = _report_chunk(app, provider, rows, totals)


def _report_chunk(
    app: BillingApplication, provider: PaymentProvider, rows: list[tuple[int, UsageRecord.Recorded]], totals: list[int]
) -> int:
    reported: list[str] = []
    skipped: list[dict[str, str]] = []
    customers: dict[str, UsageCustomer] = {}
    through = 0
    now = app.clock.now()
    try:
        for position, record in rows:
            customer = customers.get(record.customer) or app.usage.customer(record.customer)
            customers[record.customer] = customer
            identifier = str(record.originator_id)
            if customer.stripe_customer_id is not None:
                at = parse_moment(record.occurred_at)
                if at < now - REPORT_WINDOW:
                    skipped.append({"identifier": identifier, "reason": "older than Stripe accepts (35 days)"})
                else:
                    provider.report_meter_event(
                        event_name=customer.prices[record.meter]["meter"]["event_name"],
                        customer_id=customer.stripe_customer_id,
                        value=int(Decimal(record.quantity)),
                        identifier=identifier,
                        at=at,
                    )
                    reported.append(identifier)
            through = position
    except ProviderError:
        if through:
            app.usage.record_meter_report(PROVIDER, through=through, reported=reported, skipped=skipped)
        raise
    app.usage.record_meter_report(PROVIDER, through=through, reported=reported, skipped=skipped)
    totals[0] += len(reported)
    totals[1] += len(skipped)
    return through

"""`/admin/`: the morning's figures per currency, and two charts (receivables aging, collections
per week) drawn on the server (web/admin/charts.py).

Three read-model queries of projections/admin/dashboard.py (the figures, the aging buckets, the
weeks), each a handful of aggregate SQL statements whatever the number of invoices. `today` and
`now` come from the services' clock, so a test's ManualClock decides what "this month" is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from projections.admin.dashboard import CurrencyFigures, Overview, aging, collections_per_week, overview
from projections.receivables import AgingBuckets
from web.admin.charts import aging_chart, collections_chart
from web.admin.rendering import render
from web.admin.security import blocking
from web.services import Services

WEEKS = 12


def routes() -> list[BaseRoute]:
    return [Route("/", overview_page, methods=["GET"])]


@dataclass(frozen=True)
class CurrencyPanel:
    """What the page shows for one currency: its figures and its two charts (SVG markup)."""

    currency: str
    figures: CurrencyFigures
    aging: AgingBuckets
    aging_svg: str
    collections: list[tuple[date, int]] = field(default_factory=list)
    collections_svg: str = ""


@dataclass(frozen=True)
class Dashboard:
    overview: Overview
    panels: list[CurrencyPanel]


async def overview_page(request: Request) -> Response:
    services: Services = request.app.state.services
    now = services.clock.now()
    dashboard = await blocking(services, _dashboard, services, now)
    return render(
        request,
        "admin/overview.html",
        {"overview": dashboard.overview, "panels": dashboard.panels, "weeks": WEEKS},
    )


def _dashboard(services: Services, now: datetime) -> Dashboard:
    services.read_models.catch_up()  # what was just recorded shows in the figures
    engine = services.read_models.engine
    today = now.astimezone(UTC).date()
    figures = overview(engine, today=today, now=now)
    buckets = aging(engine, today)
    weeks = collections_per_week(engine, now=now, weeks=WEEKS)
    currencies = sorted(set(figures.currencies) | set(buckets) | set(weeks))
    panels = []
    for currency in currencies:
        owed = buckets.get(currency, AgingBuckets())
        kept = {week.week_start: week.amount for week in weeks.get(currency, [])}
        collected = [(start, kept.get(start, 0)) for start in _week_starts(today)]
        panels.append(
            CurrencyPanel(
                currency=currency,
                figures=figures.currencies.get(currency, CurrencyFigures(currency)),
                aging=owed,
                aging_svg=aging_chart(currency, owed),
                collections=collected,
                collections_svg=collections_chart(currency, collected),
            )
        )
    return Dashboard(figures, panels)


def _week_starts(today: date) -> list[date]:
    """The Mondays of the last WEEKS weeks, oldest first, as collections_per_week counts them:
    a currency that collected nothing in them still gets its row of zero weeks."""
    this_week = today - timedelta(days=today.weekday())
    return [this_week - timedelta(weeks=WEEKS - 1 - index) for index in range(WEEKS)]

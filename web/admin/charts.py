"""The overview's charts, drawn on the server as SVG: pure functions from figures to markup.

Each chart is a horizontal bar chart (a row per category: its label, a bar, the amount written
out), which stays readable at 375 px wide where a dozen upright bars with rotated labels would
not. The SVG scales to its container (`viewBox`, width 100%).

Accessible: `role="img"` with a `<title>` and a `<desc>` (named by `aria-labelledby`) that reads
every figure as text, so a screen reader hears the numbers and not only "image"; every bar has
its label and amount as visible text too, so colour is never the only carrier of meaning.

No `style` attribute and no `<style>` element anywhere: the dashboard's Content-Security-Policy
(`style-src 'self'`) refuses inline styles. Colours are presentation attributes (`fill=`), which
CSP does not govern, and every element has a class admin.css may restyle.

Money is integer minor units; amounts are written with the currency's own exponent
(as `ledger.money.Money.format` does: "1,234.50 USD"). The SVG is returned as a `str` of markup in which
every piece of text is escaped here: templates insert it with `|safe`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext
from html import escape

from ledger.currencies import exponent
from projections.receivables import AgingBuckets

WIDTH = 360
LABEL_WIDTH = 96  # the category labels' column
CHAR_WIDTH = 8  # a generous average glyph width at FONT, for the amounts' column
MIN_ROOM = 120  # the longest bar, at least
ROW = 28
BAR = 18
TOP = 8
FONT = 13

# Contrast on white: #1d4ed8 6.7:1, #b45309 5.0:1, #b91c1c 6.5:1, text #1f2937 14.7:1 (WCAG:
# 3:1 for graphics, 4.5:1 for text).
BAR_FILL = "#1d4ed8"
LATE_FILL = "#b45309"
VERY_LATE_FILL = "#b91c1c"
TEXT_FILL = "#1f2937"
AXIS_STROKE = "#6b7280"

AGING_LABELS = ("Current", "1–30 days", "31–60 days", "61–90 days", "Over 90 days")
_AGING_FILLS = (BAR_FILL, LATE_FILL, LATE_FILL, VERY_LATE_FILL, VERY_LATE_FILL)


@dataclass(frozen=True)
class Bar:
    label: str
    amount: int  # minor units
    fill: str = BAR_FILL


def bar_chart(*, chart_id: str, title: str, description: str, currency: str, bars: Sequence[Bar]) -> str:
    """A horizontal bar chart of amounts in `currency`, longest bar for the largest amount.

    `chart_id` makes the ids of `<title>` and `<desc>` unique on the page (several charts, one
    per currency). `description` opens the `<desc>`; the figures follow it, one per bar.
    """
    ident = _ident(chart_id)
    height = TOP * 2 + ROW * max(len(bars), 1)
    largest = max((bar.amount for bar in bars), default=0)
    # The amounts are written after their bars: the longest one decides how long a bar may be
    # (a wider drawing for a huge amount rather than a cut-off figure).
    value_width = 10 + CHAR_WIDTH * max((len(_amount(bar.amount, currency)) for bar in bars), default=0)
    room = max(MIN_ROOM, WIDTH - LABEL_WIDTH - value_width)
    width = LABEL_WIDTH + room + value_width
    figures = "; ".join(f"{bar.label}: {_amount(bar.amount, currency)}" for bar in bars) or "no figures"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{ident}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" font-family="sans-serif" font-size="{FONT}">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(description)} {escape(figures)}.</desc>',
    ]
    for index, bar in enumerate(bars):
        y = TOP + index * ROW
        length = _length(bar.amount, largest, room)
        middle = y + ROW // 2
        parts.append(
            f'<g class="chart-row">'
            f'<text class="chart-label" x="0" y="{middle}" dominant-baseline="middle" fill="{TEXT_FILL}">'
            f"{escape(bar.label)}</text>"
            f'<rect class="chart-bar" x="{LABEL_WIDTH}" y="{middle - BAR // 2}" width="{length}" height="{BAR}" '
            f'fill="{escape(bar.fill)}"/>'
            f'<text class="chart-value" x="{LABEL_WIDTH + length + 6}" y="{middle}" dominant-baseline="middle" '
            f'fill="{TEXT_FILL}">{escape(_amount(bar.amount, currency))}</text>'
            f"</g>"
        )
    parts.append(
        f'<line class="chart-axis" x1="{LABEL_WIDTH}" y1="{TOP}" x2="{LABEL_WIDTH}" y2="{height - TOP}" '
        f'stroke="{AXIS_STROKE}" stroke-width="1"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def aging_chart(currency: str, buckets: AgingBuckets) -> str:
    """What is still owed in `currency`, by days past the due date."""
    amounts = (buckets.current, buckets.days_1_30, buckets.days_31_60, buckets.days_61_90, buckets.days_over_90)
    return bar_chart(
        chart_id=f"aging-{currency}",
        title=f"Receivables aging, {currency.upper()}",
        description=(
            f"What open and uncollectible invoices still ask for, by days past their due date; "
            f"{_amount(buckets.total, currency)} in all."
        ),
        currency=currency,
        bars=[
            Bar(label, amount, fill) for label, amount, fill in zip(AGING_LABELS, amounts, _AGING_FILLS, strict=True)
        ],
    )


def collections_chart(currency: str, weeks: Sequence[tuple[date, int]]) -> str:
    """Payments collected in `currency` per week (Monday to Sunday, UTC), oldest week first."""
    total = sum(amount for _, amount in weeks)
    return bar_chart(
        chart_id=f"collections-{currency}",
        title=f"Collections per week, {currency.upper()}",
        description=(
            f"Payments applied to invoices in each of the last {len(weeks)} weeks, by the Monday each "
            f"week starts on; {_amount(total, currency)} in all."
        ),
        currency=currency,
        bars=[Bar(start.isoformat(), amount) for start, amount in weeks],
    )


def _length(amount: int, largest: int, room: int) -> int:
    """The bar's length in whole units, proportional to the largest amount; a non-zero amount
    always shows (at least 1 unit), a zero or negative one has no bar. Integer arithmetic only."""
    if amount <= 0 or largest <= 0:
        return 0
    return max(1, amount * room // largest)


def _amount(amount: int, currency: str) -> str:
    """As `Money.format` writes it ("1,234.50 USD"), for any integer: a sum of many invoices may
    pass the limit one Money holds."""
    digits = exponent(currency)
    with localcontext(prec=60):
        major = Decimal(amount).scaleb(-digits)
    return f"{major:,.{digits}f} {currency.upper()}"


def _ident(text: str) -> str:
    """An id attribute's value: lowercase letters, digits and dashes only."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return f"chart-{cleaned or 'figure'}"

"""The overview's SVG charts: well-formed, accessible, free of inline style, bars in proportion."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

from projections.receivables import AgingBuckets
from web.admin.charts import CHAR_WIDTH, Bar, aging_chart, bar_chart, collections_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # raises on markup that is not well-formed XML


def bars_of(svg: ET.Element) -> list[tuple[str, int, str]]:
    """(label, bar length, amount text) per row, in order."""
    rows = []
    for row in svg.iter(f"{SVG}g"):
        label, value = (text.text or "" for text in row.iter(f"{SVG}text"))
        rect = row.find(f"{SVG}rect")
        assert rect is not None
        rows.append((label, int(rect.attrib["width"]), value))
    return rows


def test_the_aging_chart_names_itself_and_reads_every_bucket_as_text() -> None:
    svg = parse(aging_chart("usd", AgingBuckets(10_000, 2_550, 0, 0, 123_456)))

    assert svg.attrib["role"] == "img"
    title = svg.find(f"{SVG}title")
    desc = svg.find(f"{SVG}desc")
    assert title is not None
    assert desc is not None
    assert svg.attrib["aria-labelledby"] == f"{title.attrib['id']} {desc.attrib['id']}"
    assert title.text == "Receivables aging, USD"
    assert desc.text is not None
    for spoken in ("Current: 100.00 USD", "1–30 days: 25.50 USD", "31–60 days: 0.00 USD", "Over 90 days: 1,234.56 USD"):
        assert spoken in desc.text
    assert "1,360.06 USD in all" in desc.text
    assert [(label, value) for label, _, value in bars_of(svg)] == [
        ("Current", "100.00 USD"),
        ("1–30 days", "25.50 USD"),
        ("31–60 days", "0.00 USD"),
        ("61–90 days", "0.00 USD"),
        ("Over 90 days", "1,234.56 USD"),
    ]


def test_bars_are_in_proportion_to_their_amounts_and_zero_has_no_bar() -> None:
    svg = parse(aging_chart("usd", AgingBuckets(1_000, 500, 0, 250, 1)))
    lengths = [length for _, length, _ in bars_of(svg)]

    longest = lengths[0]
    assert longest > 100
    assert lengths[1] == longest // 2
    assert lengths[2] == 0
    assert lengths[3] == longest // 4
    assert lengths[4] == 1  # a tiny amount still shows


def test_no_inline_style_anywhere_for_the_content_security_policy() -> None:
    markup = collections_chart("eur", [(date(2026, 3, 2), 5_000), (date(2026, 3, 9), 0)])
    svg = parse(markup)

    assert svg.find(f".//{SVG}style") is None
    assert all("style" not in element.attrib for element in svg.iter())
    assert "<script" not in markup


def test_amounts_follow_the_currency_exponent() -> None:
    jpy = bars_of(parse(aging_chart("jpy", AgingBuckets(current=1_500))))
    kwd = bars_of(parse(aging_chart("kwd", AgingBuckets(current=1_500))))

    assert jpy[0][2] == "1,500 JPY"
    assert kwd[0][2] == "1.500 KWD"


def test_the_collections_chart_has_a_row_per_week_oldest_first() -> None:
    monday = date(2026, 1, 5)
    weeks = [(monday + timedelta(weeks=i), (i + 1) * 100) for i in range(12)]
    svg = parse(collections_chart("usd", weeks))
    rows = bars_of(svg)

    assert [label for label, _, _ in rows] == [start.isoformat() for start, _ in weeks]
    assert rows[-1][2] == "12.00 USD"
    assert rows[0][1] < rows[-1][1]
    desc = svg.find(f"{SVG}desc")
    assert desc is not None
    assert desc.text is not None
    assert "last 12 weeks" in desc.text
    assert "78.00 USD in all" in desc.text


def test_text_is_escaped_and_ids_are_safe() -> None:
    markup = bar_chart(
        chart_id='x" onload="alert(1)',
        title="<b>Fish & chips</b>",
        description="a < b",
        currency="usd",
        bars=[Bar("<script>", 1)],
    )
    svg = parse(markup)

    assert "onload" not in svg.attrib
    assert svg.attrib["id"] == "chart-x-onload-alert-1"
    title = svg.find(f"{SVG}title")
    assert title is not None
    assert title.text == "<b>Fish & chips</b>"
    assert bars_of(svg)[0][0] == "<script>"


def test_a_chart_without_figures_is_still_a_valid_image() -> None:
    svg = parse(collections_chart("usd", []))

    assert svg.attrib["role"] == "img"
    assert bars_of(svg) == []
    desc = svg.find(f"{SVG}desc")
    assert desc is not None
    assert desc.text is not None
    assert "no figures" in desc.text


def test_the_largest_amount_the_ledger_holds_fits_in_the_drawing() -> None:
    svg = parse(aging_chart("usd", AgingBuckets(current=999_999_999_999_999, days_1_30=1)))

    width = int(svg.attrib["viewBox"].split()[2])
    value = next(text for text in svg.iter(f"{SVG}text") if text.attrib["class"] == "chart-value")
    assert value.text == "9,999,999,999,999.99 USD"
    assert int(value.attrib["x"]) + CHAR_WIDTH * len(value.text) <= width
    assert bars_of(svg)[0][1] >= 120

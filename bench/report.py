"""Plain-text tables with aligned columns, and number formatting."""

from __future__ import annotations

from collections.abc import Sequence

Cell = str | int | float | None


def fmt(value: Cell, digits: int = 0) -> str:
    """A figure for a table: thousands separators, `digits` decimals, '-' for nothing."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1) -> str:
    """Render rows of strings; the first `left` columns are left-aligned, the rest right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([*([title] if title else []), rule, line(headers), rule, *(line(r) for r in rows), rule])

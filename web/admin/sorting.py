"""Sortable column headers for the dashboard's lists, as the invoice list has them: each header
a link to the list sorted by its column (the other direction when it is the current sort, else
the column's natural one), the current one marked with `aria-sort`. A list's query string holds
`sort` and `dir` (`asc` | `desc`); a bad value is an InvalidInputError naming the field (a 422
page), as is a cursor of another sort (projections/admin/keyset.py ties a cursor to its sort).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.errors import InvalidInputError
from web.admin.forms import with_query


@dataclass(frozen=True)
class Column:
    key: str  # the projection's sort name
    label: str
    descending_first: bool = False  # the largest amounts, the latest moments first
    numeric: bool = False


@dataclass(frozen=True)
class Sorting:
    sort: str
    descending: bool
    headers: dict[str, dict[str, Any]]  # by sort name: label, href, aria_sort, numeric

    @property
    def dir(self) -> str:
        return "desc" if self.descending else "asc"


def sorting(
    path: str,
    columns: Sequence[Column],
    sort: str | None,
    direction: str | None,
    default: str,
    params: Mapping[str, str | None],
) -> Sorting:
    """The list's sort (`sort` / `direction` as given, or the default) and its headers' links,
    which keep `params` (the filters) and drop the cursor: a new sort starts at the first page."""
    by_key = {column.key: column for column in columns}
    current = sort or default
    if current not in by_key:
        raise InvalidInputError(f"sort must be one of {', '.join(by_key)}", field="sort")
    if direction not in (None, "asc", "desc"):
        raise InvalidInputError("dir must be asc or desc", field="dir")
    descending = by_key[current].descending_first if direction is None else direction == "desc"
    headers = {}
    for column in columns:
        here = column.key == current
        flip = (not descending) if here else column.descending_first
        headers[column.key] = {
            "label": column.label,
            "href": with_query(path, **params, sort=column.key, dir="desc" if flip else "asc"),
            "aria_sort": ("descending" if descending else "ascending") if here else None,
            "numeric": column.numeric,
        }
    return Sorting(current, descending, headers)

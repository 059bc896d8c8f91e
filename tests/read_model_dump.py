"""Every row of every read model, sorted: what the rebuild-equality tests compare."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from projections.runner import ProjectionRunner


def sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Rows sort by value; None first in its column; unorderable values (JSON) by their repr."""
    return tuple((v is not None, repr(v) if isinstance(v, dict | list) else v) for v in row)


def dump_read_models(runner: ProjectionRunner) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of every read model the runner maintains, sorted."""
    with runner.engine.connect() as conn:
        return {
            f"{projection.name}.{table.name}": sorted((tuple(r) for r in conn.execute(select(table))), key=sort_key)
            for projection in runner.projections
            for table in projection.tables
        }

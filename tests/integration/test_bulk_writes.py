"""projections.bulk stores exactly what SQLAlchemy's own INSERT / upsert would, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite

from projections.bulk import STAGED_ROWS, insert_rows, insert_tuples, upsert_rows

metadata = MetaData()
ours = Table(
    "bulk_ours",
    metadata,
    Column("key", String(36), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("count", Integer),
    Column("note", Text),
    Column("at", DateTime(timezone=True), nullable=False),
)
theirs = ours.to_metadata(metadata, name="bulk_theirs")

AT = datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=UTC)


def _rows(n: int, amount_from: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "key": f"k{i:04d}",
            "amount": amount_from + i * 10**15,  # past 32 bits
            "count": None if i % 3 == 0 else i,
            "note": "naïve 'quoted' %s %(x)s ;--" if i % 2 else None,
            "at": AT + timedelta(microseconds=i),
        }
        for i in range(n)
    ]


@pytest.fixture
def tables(engine: Engine) -> Iterator[Engine]:
    metadata.create_all(engine)
    yield engine
    metadata.drop_all(engine)


def _stored(engine: Engine, table: Table) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(table).order_by(table.c.key))]


def test_insert_rows_stores_what_sqlalchemy_stores(tables: Engine) -> None:
    rows = _rows(50)
    with tables.begin() as conn:
        insert_rows(conn, ours, rows)
        conn.execute(insert(theirs), rows)
    assert _stored(tables, ours) == _stored(tables, theirs)
    at = AT + timedelta(microseconds=1)
    if tables.dialect.name == "sqlite":
        at = at.replace(tzinfo=None)  # SQLite keeps datetimes as UTC text; queries add the zone back
    assert _stored(tables, ours)[1] == ("k0001", 10**15, 1, "naïve 'quoted' %s %(x)s ;--", at)


def test_insert_tuples_stores_what_sqlalchemy_stores(tables: Engine) -> None:
    """Rows as tuples in the table's column order, on both backends (SQLite's INSERT, COPY)."""
    rows = _rows(50)
    with tables.begin() as conn:
        insert_tuples(conn, ours, [tuple(row[c.name] for c in ours.columns) for row in rows])
        conn.execute(insert(theirs), rows)
    assert _stored(tables, ours) == _stored(tables, theirs)
    assert len(_stored(tables, ours)) == 50


def test_upsert_rows_replaces_existing_keys_and_adds_new_ones(tables: Engine) -> None:
    with tables.begin() as conn:
        upsert_rows(conn, ours, _rows(10), ["key"])
        upsert_rows(conn, ours, _rows(20, amount_from=7), ["key"])
    stored = _stored(tables, ours)
    assert [row[1] for row in stored] == [7 + i * 10**15 for i in range(20)]


def test_a_large_upsert_stores_what_sqlalchemy_stores(tables: Engine) -> None:
    """From STAGED_ROWS rows PostgreSQL stages the upsert through a temporary table (COPY): the
    same rows as SQLAlchemy's own upsert, twice in one transaction (the staging table is empty
    again after each), and again in the next transaction on the same connection."""
    large = STAGED_ROWS + 5
    module = postgresql if tables.dialect.name == "postgresql" else sqlite
    statement = module.insert(theirs)
    reference = statement.on_conflict_do_update(
        index_elements=["key"], set_={c.name: statement.excluded[c.name] for c in theirs.columns if c.name != "key"}
    )
    with tables.connect() as conn:
        for rows in (_rows(large - 50), _rows(large, amount_from=3)):
            upsert_rows(conn, ours, rows, ["key"])
            conn.execute(reference, rows)
        conn.commit()
        upsert_rows(conn, ours, _rows(large + 10, amount_from=5), ["key"])
        conn.execute(reference, _rows(large + 10, amount_from=5))
        conn.commit()
    assert _stored(tables, ours) == _stored(tables, theirs)
    assert [row[1] for row in _stored(tables, ours)] == [5 + i * 10**15 for i in range(large + 10)]


def test_a_large_upsert_rolled_back_leaves_nothing_behind(tables: Engine) -> None:
    """A rolled-back transaction takes its staged rows (and the staging table it made) with it:
    the next upsert on the same connection stages only its own rows."""
    with tables.connect() as conn:
        upsert_rows(conn, ours, _rows(STAGED_ROWS + 1), ["key"])
        conn.rollback()
        upsert_rows(conn, ours, _rows(STAGED_ROWS, amount_from=1), ["key"])
        conn.commit()
    assert [row[1] for row in _stored(tables, ours)] == [1 + i * 10**15 for i in range(STAGED_ROWS)]


def test_empty_batches_write_nothing(tables: Engine) -> None:
    with tables.begin() as conn:
        insert_rows(conn, ours, [])
        upsert_rows(conn, ours, [], ["key"])
    assert _stored(tables, ours) == []


def test_a_failed_bulk_write_rolls_back_with_its_transaction(tables: Engine) -> None:
    def write_twice() -> None:
        with tables.begin() as conn:
            insert_rows(conn, ours, _rows(5))
            insert_rows(conn, ours, _rows(1))

    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        write_twice()
    assert _stored(tables, ours) == []


def test_schema_translation_is_honoured(tables: Engine) -> None:
    """`ledger rebuild --check` writes through a schema_translate_map into scratch tables."""
    if tables.dialect.name != "postgresql":
        pytest.skip("schemas are a PostgreSQL feature; SQLite's check uses a scratch file")
    with tables.begin() as conn:
        conn.execute(text('CREATE SCHEMA "bulk_scratch"'))
    try:
        with tables.connect().execution_options(schema_translate_map={None: "bulk_scratch"}) as conn:
            metadata.create_all(conn, tables=[ours])
            insert_rows(conn, ours, _rows(3))
            upsert_rows(conn, ours, _rows(2, amount_from=1), ["key"])
            upsert_rows(conn, ours, _rows(STAGED_ROWS, amount_from=2), ["key"])  # staged
            conn.commit()
            assert len(conn.execute(select(ours)).all()) == STAGED_ROWS
        assert _stored(tables, ours) == []  # the live table saw nothing
    finally:
        with tables.begin() as conn:
            conn.execute(text('DROP SCHEMA "bulk_scratch" CASCADE'))

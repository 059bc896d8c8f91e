"""The Alembic environment of the read models.

`projections.schema.upgrade` runs it on its own connection, inside the transaction that holds
the schema lock (`config.attributes["connection"]`). Developers may also run the `alembic`
command with the repository's alembic.ini, which connects to `-x url=...` or else to its
`sqlalchemy.url` (a SQLAlchemy URL: `postgresql+psycopg://...` for PostgreSQL).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from projections.schema import VERSION_TABLE, include_name
from projections.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,  # the event store's tables are not ours
    )
    with context.begin_transaction():
        context.run_migrations()


_given = context.config.attributes.get("connection")
if isinstance(_given, Connection):
    _run(_given)
else:
    _url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not _url:
        raise RuntimeError("no connection: use projections.schema.upgrade(engine) or set sqlalchemy.url")
    _engine = create_engine(_url)
    try:
        with _engine.begin() as _connection:
            _run(_connection)
    finally:
        _engine.dispose()

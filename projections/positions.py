"""Where a follower of the log that keeps no read model has read up to (the mail triggers).

The position is a row of `projection_tracking`, under the follower's own name, beside the read
models' positions. A rebuild clears only the read models' rows, so a follower is never sent
back to the start of the log by one (the mail triggers would otherwise look at every reminder
ever requested again). Positions only move forward: two followers on one database (several
web workers) may both do a stretch of the log, whose effects must then be idempotent; the one
that records it second changes nothing.
"""

from __future__ import annotations

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from projections.tables import tracking


class TrackedPosition:
    """A follower's position in the log (a notification id), kept in the read models' database."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name

    def read(self) -> int | None:
        """The position recorded, or None before the follower ever ran."""
        with self.engine.connect() as conn:
            found = conn.execute(select(tracking.c.position).where(tracking.c.projection == self.name)).scalar()
        return None if found is None else int(found)

    def begin(self, position: int) -> int:
        """Record `position` unless a position is recorded already; the position recorded."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        with self.engine.begin() as conn:
            conn.execute(
                dialect.insert(tracking).values(projection=self.name, position=position).on_conflict_do_nothing()
            )
        recorded = self.read()
        if recorded is None:
            raise LookupError(f"the position of {self.name} was not recorded")
        return recorded

    def advance(self, position: int) -> None:
        """Move the position forward to `position` (never back)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(tracking)
                .where(tracking.c.projection == self.name, tracking.c.position < position)
                .values(position=position)
            )

"""The rebuild's write floor (bench/write_floor.py), on both backends: it reads the whole log,
writes every row the rebuild left, table by table, and leaves no scratch copy behind."""

from __future__ import annotations

import os

from sqlalchemy import func, inspect, select

from adapters.clock import SystemClock
from adapters.persistence import event_store_env
from adapters.read_models import projection_runner, read_model_engine
from bench.read_models import EVENTS_PER_INVOICE, GenerateJob, generate
from bench.write_floor import SCRATCH_SCHEMA, postgres_floor, sqlite_floor
from commands.application import BillingApplication
from projections.tables import metadata
from tests.bench_runs import InlineGate


def test_the_floor_reads_the_whole_log_and_writes_every_rebuilt_row(database_url: str) -> None:
    BillingApplication(clock=SystemClock(), env=event_store_env(database_url)).close()
    made = generate(GenerateJob(database_url, 4 * EVENTS_PER_INVOICE), InlineGate())  # type: ignore[arg-type]
    app = BillingApplication(clock=SystemClock(), env=event_store_env(database_url))
    engine = read_model_engine(database_url)
    projection_runner(app, engine).rebuild()
    events_table = app.recorder.events_table_name  # type: ignore[attr-defined]
    app.close()
    with engine.connect() as conn:
        counts = {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in metadata.sorted_tables
        }
    filled = {name: n for name, n in counts.items() if n}
    assert {"audit_chain", "journal_postings", "invoice_status", "payments"} <= set(filled)

    env = event_store_env(database_url)
    if "SQLITE_DBNAME" in env:
        floor = sqlite_floor(env["SQLITE_DBNAME"], events_table)
        assert not os.path.exists(env["SQLITE_DBNAME"] + ".write-floor")
    else:
        floor = postgres_floor(database_url, events_table)
        assert SCRATCH_SCHEMA not in inspect(engine).get_schema_names()
    engine.dispose()

    assert floor.events == made.ops
    assert (floor.rows, floor.tables) == (sum(filled.values()), len(filled))
    assert floor.read_seconds > 0
    assert floor.write_seconds > 0

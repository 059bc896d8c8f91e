"""The bench's closing table (bench/summary.py), from made-up reports: each figure beside its
ceiling from the same reports, the ratio, the issue's target and whether it is met; rows for
parts that did not run are left out."""

from __future__ import annotations

from collections import Counter

from bench.asof import AsOfReport, AsOfRow, WriteCost
from bench.log_replay import ReplayLogReport
from bench.procs import Measured, Outcome
from bench.read_models import ReadModelsReport
from bench.summary import Figure, figures, render
from bench.web import WebRow
from bench.webhooks import TWO_WORKERS as TWO_WORKERS_CASE
from bench.webhooks import WebhookReport, WebhookRow
from bench.write_floor import Floor


def answered(case: str, ok: int, seconds: float, latencies_ms: list[float], offered: float = 0.0) -> WebhookRow:
    """A webhook case whose clients got `ok` 200s in `seconds`, at these latencies."""
    worker = Measured(
        ops=ok,
        started=0.0,
        finished=seconds,
        extra={"ok_status": 200, "statuses": Counter({200: ok}), "latencies": [ms / 1000 for ms in latencies_ms]},
    )
    return WebhookRow(case, WebRow(case, Outcome([worker]), clients=2, connections=8), offered=offered)


def webhooks(backend: str, *, two_workers: bool = False) -> WebhookReport:
    rows = [
        answered("trivial POST (HTTP ceiling)", 10_000, 2.0, [1.0]),  # 5,000/s
        answered("max load (closed loop)", 1_000, 2.0, [20.0]),  # 500/s
        answered("half the target: open loop", 500, 2.0, [float(ms) for ms in range(1, 101)], offered=250.0),
    ]
    if two_workers:
        rows.append(answered(TWO_WORKERS_CASE, 2_400, 2.0, [15.0]))  # 1,200/s
    return WebhookReport(backend, ceiling=2_000.0, rows=rows)


def read_models(
    backend: str, small_mib: float = 100.0, large_mib: float = 110.0, floor: Floor | None = None
) -> ReadModelsReport:
    return ReadModelsReport(
        backend,
        rebuilds=[(100_000, 4.0, small_mib), (1_000_000, 50.0, large_mib)],  # 25,000/s, 20,000/s
        reads={
            "recorder.select_notifications, 10,000/batch, not decoded": (1_000_000, 10.0),
            "bare SELECT of the events table (sqlite3, fetchall)": (1_000_000, 4.0),  # 250,000/s
        },
        verify=(1_000_000, 20.0),  # 50,000/s
        floor=floor,
    )


def as_of(backend: str) -> AsOfReport:
    return AsOfReport(
        backend,
        rows=[
            AsOfRow("early", 10, [0.1] * 99 + [0.3]),
            AsOfRow("late", 1_000, [0.2] * 98 + [0.4] * 2),
            AsOfRow("late, first call in a process", 1_000, [12.0] * 19 + [40.0]),
        ],
        verified=100_000,
        verify_seconds=0.5,  # 200,000/s
        selected=100_000,
        select_seconds=0.25,  # 400,000/s
        write_cost=WriteCost(events=1_000, version_rows=1_000, state_rows=15, state_bytes=300_000, seconds=0.02),
    )


def test_a_rebuild_stands_beside_its_write_floor_too() -> None:
    floor = Floor(events=1_000_000, read_seconds=4.0, write_seconds=16.0, rows=2_600_000, tables=7)  # 50,000/s
    rows = by_figure(figures([], [read_models("sqlite", floor=floor)], [], []))

    rebuild = rows["rebuild ev/s, 1,000,000 events", "sqlite"]
    assert (rebuild.now, rebuild.ceiling, rebuild.ratio) == (
        "20,000",
        "bare SELECT 250,000/s; write floor 50,000/s",
        "0.08 / 0.40",
    )


def by_figure(rows: list[Figure]) -> dict[tuple[str, str], Figure]:
    return {(row.figure, row.backend): row for row in rows}


def test_each_figure_stands_beside_its_ceiling_from_the_same_reports() -> None:
    rows = by_figure(figures([webhooks("sqlite")], [read_models("sqlite")], [], [as_of("sqlite")]))

    one = rows["webhooks/s, closed loop, 1 worker", "sqlite"]
    assert (one.now, one.ceiling, one.ratio) == ("500", "trivial POST 5,000/s; 1-row INSERT 2,000/s", "0.10 / 0.25")
    assert (one.target, one.met) == (">= 1,000", "no")

    half = rows["webhooks p99 ms, open loop at 250/s (half the target)", "sqlite"]
    assert (half.now, half.target, half.met) == ("99.0", "< 100 ms", "yes")

    rebuild = rows["rebuild ev/s, 100,000 events", "sqlite"]
    assert (rebuild.now, rebuild.ceiling, rebuild.ratio, rebuild.met) == (
        "25,000",
        "bare SELECT 250,000/s",
        "0.10",
        "no",
    )
    assert rows["rebuild ev/s, 1,000,000 events", "sqlite"].now == "20,000"

    memory = rows["rebuild peak RSS MiB, 100,000 -> 1,000,000 events", "sqlite"]
    assert (memory.now, memory.ratio, memory.met) == ("100.0 -> 110.0", "1.10", "yes")

    # verify: the as-of part's, with the bare SELECT it ran right after it, not the read models' own
    verify = rows["audit verify ev/s, 100,000 events", "sqlite"]
    assert (verify.now, verify.ceiling, verify.ratio, verify.met) == ("200,000", "bare SELECT 400,000/s", "0.50", "yes")

    warm = rows["invoice as of ms p50 / p99, 1,000-event invoice, warm", "sqlite"]
    assert (warm.now, warm.ceiling, warm.ratio, warm.met) == ("0.20 / 0.40", "-", "-", "yes")
    first = rows["invoice as of ms p50 / p99, 1,000-event invoice, first call", "sqlite"]
    assert (first.now, first.met) == ("12.00 / 40.00", "no")


def test_postgresql_says_when_two_workers_were_not_measured_and_uses_its_own_targets() -> None:
    rows = by_figure(figures([webhooks("postgres")], [read_models("postgres")]))
    assert rows["webhooks/s, closed loop, 2 workers", "postgres"].now == "not measured"
    assert rows["webhooks/s, closed loop, 2 workers", "postgres"].met == "-"
    assert rows["webhooks/s, closed loop, 1 worker", "postgres"].target == ">= 700"
    assert rows["rebuild ev/s, 100,000 events", "postgres"].target == ">= 40,000"

    measured = by_figure(figures([webhooks("postgres", two_workers=True)]))
    two = measured["webhooks/s, closed loop, 2 workers", "postgres"]
    assert (two.now, two.ratio, two.met) == ("1,200", "0.24 / 0.60", "yes")
    # the 2-worker case is not taken for the 1-worker figure
    assert measured["webhooks/s, closed loop, 1 worker", "postgres"].now == "500"


def test_without_the_as_of_part_verify_comes_from_the_read_models_part() -> None:
    rows = by_figure(figures(read_models=[read_models("sqlite")]))
    verify = rows["audit verify ev/s, 1,000,000 events", "sqlite"]
    assert (verify.now, verify.ceiling, verify.ratio, verify.met) == ("50,000", "bare SELECT 250,000/s", "0.20", "no")


def test_peak_memory_growing_with_the_log_is_not_met() -> None:
    rows = by_figure(figures(read_models=[read_models("sqlite", small_mib=100.0, large_mib=300.0)]))
    memory = rows["rebuild peak RSS MiB, 100,000 -> 1,000,000 events", "sqlite"]
    assert (memory.ratio, memory.met) == ("3.00", "no")


def test_the_replay_part_gives_the_library_decode_beside_its_bare_select() -> None:
    replay = ReplayLogReport(
        "postgres",
        events=100_000,
        figures={
            "bare SELECT of the stored rows (psycopg fetchall), not decoded": (100_000, 0.5),
            "app.events_after: the library's rows and decode": (100_000, 2.0),
        },
    )
    (row,) = figures(replay=[replay])
    assert (row.backend, row.now, row.ceiling, row.ratio) == ("postgres", "50,000", "bare SELECT 200,000/s", "0.25")


def test_parts_not_run_leave_their_rows_out() -> None:
    assert figures() == []
    only_as_of = figures(asof=[as_of("postgres")])
    assert {row.figure.split(",")[0] for row in only_as_of} == {"audit verify ev/s", "invoice as of ms p50 / p99"}
    assert {row.backend for row in only_as_of} == {"postgres"}


def test_sqlite_rows_come_before_postgresql_rows_and_the_table_has_every_column() -> None:
    rows = figures([webhooks("postgres"), webhooks("sqlite")])
    assert [row.backend for row in rows] == ["sqlite"] * 2 + ["postgres"] * 3
    text = render(rows)
    header = next(line for line in text.splitlines() if line.startswith("figure"))
    assert header.split() == ["figure", "backend", "now", "ceiling", "ratio", "target", "met"]
    assert "trivial POST 5,000/s; 1-row INSERT 2,000/s" in text


def test_as_of_figures_are_the_read_models_where_the_cache_was_timed_beside_it() -> None:
    report = as_of("sqlite")
    report.rows = [
        AsOfRow("read model: late", 1_000, [1.0] * 100),
        AsOfRow("in-process cache: late", 1_000, [0.2] * 100),
        AsOfRow("read model: late, first call for it in a process", 1_000, [2.0] * 20),
        AsOfRow("in-process cache: late, first call for it in a process", 1_000, [15.0] * 20),
    ]
    rows = by_figure(figures(asof=[report]))
    first = rows["invoice as of ms p50 / p99, 1,000-event invoice, first call", "sqlite"]
    warm = rows["invoice as of ms p50 / p99, 1,000-event invoice, warm", "sqlite"]
    assert (first.now, first.met) == ("2.00 / 2.00", "yes")
    assert (warm.now, warm.met) == ("1.00 / 1.00", "yes")

"""Replay's input: reading the whole log, and decoding it, against a bare SELECT of its rows.

The log is the read-models bench's own (bench/read_models.py `generate`: invoices and payments,
15 events an invoice). Every case reads all of it in batches of 5,000 in log order, as a rebuild
does, and keeps nothing between batches; its events/s is the median of REPEATS runs, and its
ratio is to the bare SELECT's. The "decode only" rows decode rows already in memory: what the
decoder alone costs. The orjson row is printed only where orjson is installed (it is not a
dependency: msgspec, one already, is as fast).

Alone: `python -m bench --only replay [--quick] [--backend sqlite|postgres] [--events N]`
(default 100,000 events; --quick 10,000).
"""

from __future__ import annotations

import gc
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from eventsourcing.persistence import Notification

from adapters.clock import SystemClock
from adapters.event_decoding import EventDecoder
from adapters.persistence import event_store_env
from bench.procs import Gate, Measured, clock, run_workers
from bench.read_models import GenerateJob, generate
from bench.report import fmt, table
from commands.application import BillingApplication

FULL = 100_000
QUICK = 10_000
BATCH = 5_000
REPEATS = 3

Row = tuple[int, Any, int, str, bytes]  # position, originator id, originator version, topic, state


@dataclass(frozen=True)
class ReplayLogJob:
    url: str


@dataclass
class ReplayLogReport:
    backend: str
    events: int = 0
    generated_seconds: float = 0.0
    figures: dict[str, tuple[int, float]] = field(default_factory=dict)  # label -> (events, seconds)


def _say(backend: str, what: str) -> None:
    print(f"  [{backend}] replay: {what}", file=sys.stderr, flush=True)


class _BareRows:
    """The stored rows as the driver gives them, one keyset-paged SELECT per batch."""

    def __init__(self, app: BillingApplication, url: str) -> None:
        env = event_store_env(url)
        table_name = app.recorder.events_table_name  # type: ignore[attr-defined]
        columns = "originator_id, originator_version, topic, state FROM " + table_name
        self._conn: Any
        if "SQLITE_DBNAME" in env:
            self._conn = sqlite3.connect(env["SQLITE_DBNAME"])
            self._sql = f"SELECT rowid, {columns} WHERE rowid > ? ORDER BY rowid LIMIT ?"
        else:
            import psycopg

            self._conn = psycopg.connect(url, autocommit=True)
            self._sql = (
                f"SELECT notification_id, {columns} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
            )
        self.driver = "sqlite3" if "SQLITE_DBNAME" in env else "psycopg"

    def batches(self) -> Iterator[Sequence[Row]]:
        position = 0
        while True:
            rows = self._conn.execute(self._sql, (position, BATCH)).fetchall()
            if not rows:
                return
            yield rows
            position = rows[-1][0]

    def close(self) -> None:
        self._conn.close()


def _orjson_decoder(app: BillingApplication) -> EventDecoder | None:
    try:
        import orjson
    except ImportError:
        return None

    class OrjsonParser:
        decode = staticmethod(orjson.loads)

    class GeneralOnly(EventDecoder):
        def _learn(self, topic: str, known: Any, shape: Any, kinds: dict[str, str]) -> None:
            """Never: every row goes the general way (no learned shape typed by msgspec)."""

    decoder = GeneralOnly(app.mapper)
    decoder._json = OrjsonParser()  # type: ignore[assignment]  # the same walk, another parser
    return decoder


def _median_seconds(action: Callable[[], int]) -> tuple[int, float]:
    samples = []
    count = 0
    for _ in range(REPEATS):
        begun = time.perf_counter()
        count = action()
        samples.append(time.perf_counter() - begun)
    return count, statistics.median(samples)


def measure(job: ReplayLogJob, gate: Gate) -> Measured:
    app = BillingApplication(clock=SystemClock(), env=event_store_env(job.url))
    bare = _BareRows(app, job.url)
    decoder = EventDecoder(app.mapper)
    orjson_decoder = _orjson_decoder(app)
    plain = msgspec.json.Decoder()

    def bare_select() -> int:
        return sum(len(rows) for rows in bare.batches())

    total = bare_select()
    # The log's rows, held for the decode-only cases only: each decoder from what it is handed,
    # the library's mapper the recorder's Notification objects (ids already UUIDs), ours the bare rows.
    in_memory: list[list[Row]] = []
    held_notifications: list[list[Notification]] = []
    gate.ready()
    started = clock()

    def bare_then(decode: Callable[[Row], Any]) -> Callable[[], int]:
        def run() -> int:
            count = 0
            for rows in bare.batches():
                count += len([decode(row) for row in rows])
            return count

        return run

    def events_after() -> int:
        position, count = 0, 0
        while batch := app.events_after(position, BATCH):
            count += len(batch)
            position = batch[-1][0]
        return count

    def notifications_then(decode: Callable[[Any], Any] | None) -> Callable[[], int]:
        def run() -> int:
            position, count = 0, 0
            while batch := app.recorder.select_notifications(start=position + 1, limit=BATCH):
                count += len(batch) if decode is None else len([decode(n) for n in batch])
                position = batch[-1].id
            return count

        return run

    def in_memory_then(decode: Callable[[Any], Any], held: list[list[Any]]) -> Callable[[], int]:
        def run() -> int:
            return sum(len([decode(row) for row in rows]) for rows in held)

        return run

    def ours(row: Row) -> Any:
        return decoder.decode(row[3], row[1], row[2], row[4])

    def plain_dicts(row: Row) -> Any:
        return plain.decode(row[4])

    d = bare.driver
    cases: list[tuple[str, Callable[[], int]]] = [
        (f"bare SELECT of the stored rows ({d}, fetchall), not decoded", bare_select),
        ("recorder.select_notifications (library rows), not decoded", notifications_then(None)),
        ("app.events_after: library rows + library decode (today's rebuild input)", events_after),
        ("recorder.select_notifications + msgspec EventDecoder -> events", notifications_then(decoder.to_domain_event)),
        ("bare SELECT + msgspec EventDecoder -> the same events", bare_then(ours)),
        ("bare SELECT + msgspec.json.decode -> plain dicts (markers left as dicts)", bare_then(plain_dicts)),
    ]
    if orjson_decoder is not None:
        fast = orjson_decoder

        def orjson_events(row: Row) -> Any:
            return fast.decode(row[3], row[1], row[2], row[4])

        cases.append(("bare SELECT + orjson.loads, the same walk -> the same events", bare_then(orjson_events)))
    cases += [
        (
            "decode only: library mapper.to_domain_event (the recorder's rows in memory)",
            in_memory_then(app.mapper.to_domain_event, held_notifications),
        ),
        ("decode only: msgspec EventDecoder (the bare rows in memory)", in_memory_then(ours, in_memory)),
    ]
    reading, decoding = cases[:-2], cases[-2:]
    figures = {label: _median_seconds(action) for label, action in reading}
    # The decode-only cases hold the whole log's rows, which a rebuild never does: frozen, the
    # collector does not walk them again at each collection the decoding's allocations set off.
    in_memory.extend(list(rows) for rows in bare.batches())
    notifications = app.recorder.select_notifications(start=1, limit=total)
    held_notifications.extend(notifications[i : i + BATCH] for i in range(0, total, BATCH))
    gc.freeze()
    figures.update({label: _median_seconds(action) for label, action in decoding})
    gc.unfreeze()
    finished = clock()
    if any(count != total for count, _ in figures.values()):
        raise RuntimeError(f"a case read another number of events than the log's {total:,}: {figures}")
    bare.close()
    app.close()
    return Measured(total, started, finished, extra={"figures": figures})


def run_replay_log(backend: str, url: str, events: int) -> ReplayLogReport:
    report = ReplayLogReport(backend)
    BillingApplication(clock=SystemClock(), env=event_store_env(url)).close()  # the event store's tables
    _say(backend, f"generating {events:,} events")
    made = run_workers(generate, [GenerateJob(url, events)]).workers[0]
    report.events, report.generated_seconds = made.ops, made.finished - made.started
    _say(backend, f"reading and decoding {made.ops:,} events, {REPEATS} times each way")
    measured = run_workers(measure, [ReplayLogJob(url)]).workers[0]
    report.figures = measured.extra["figures"]
    return report


def render(reports: list[ReplayLogReport]) -> str:
    headers = ["backend", "case", "events", "seconds (median)", "events/s", "x bare SELECT"]
    rows: list[list[str]] = []
    for r in reports:
        ceiling = next(iter(r.figures.values()))
        ceiling_rate = ceiling[0] / ceiling[1]
        for label, (n, seconds) in r.figures.items():
            rate = n / seconds
            rows.append([r.backend, label, fmt(n), fmt(seconds, 3), fmt(rate), fmt(rate / ceiling_rate, 2)])
    title = (
        f"Replay: the whole log read in log order, {BATCH:,} events a batch (bench/log_replay.py). The first row of\n"
        "each backend is the ceiling: its rows as the driver gives them. 'the same events': objects equal to the\n"
        "library mapper's (adapters/event_decoding.py, tests/unit/test_event_decoding.py)."
    )
    return table(title, headers, rows, left=2)

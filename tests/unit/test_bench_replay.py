"""The replay bench (bench/log_replay.py): every case reads the whole log, the table's first row
per backend is the bare SELECT it divides by, and the log it reads, selected bare and decoded
with adapters/event_decoding.py, is the log the library decodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.clock import SystemClock
from adapters.event_decoding import EventDecoder
from adapters.persistence import event_store_env
from bench.log_replay import ReplayLogJob, ReplayLogReport, _BareRows, measure, render
from bench.read_models import EVENTS_PER_INVOICE, GenerateJob, generate
from commands.application import BillingApplication
from tests.bench_runs import InlineGate


def small_log(tmp_path: Path) -> tuple[str, int]:
    url = f"sqlite:///{tmp_path / 'replay.sqlite3'}"
    BillingApplication(clock=SystemClock(), env=event_store_env(url)).close()
    made = generate(GenerateJob(url, 3 * EVENTS_PER_INVOICE), InlineGate())  # type: ignore[arg-type]
    return url, made.ops


def same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and vars(a) == vars(b)


def test_the_bench_log_selected_bare_decodes_to_the_librarys_events(tmp_path: Path) -> None:
    url, events = small_log(tmp_path)
    app = BillingApplication(clock=SystemClock(), env=event_store_env(url))
    bare = _BareRows(app, url)
    decoder = EventDecoder(app.mapper)
    ours = [(row[0], decoder.decode(row[3], row[1], row[2], row[4])) for rows in bare.batches() for row in rows]
    bare.close()
    library = app.events_after(0, events + 1)
    app.close()
    assert len(ours) == len(library) == events
    assert [position for position, _ in ours] == [position for position, _ in library]
    assert all(same(a, b) for (_, a), (_, b) in zip(ours, library, strict=True))


def test_every_case_reads_the_whole_log_and_the_table_divides_by_the_bare_select(tmp_path: Path) -> None:
    url, events = small_log(tmp_path)
    measured = measure(ReplayLogJob(url), InlineGate())  # type: ignore[arg-type]
    figures = measured.extra["figures"]
    assert measured.ops == events
    assert len(figures) >= 8
    assert {count for count, _ in figures.values()} == {events}
    assert all(seconds > 0 for _, seconds in figures.values())
    text = render([ReplayLogReport("sqlite", events, 0.0, figures)])
    first = next(line for line in text.splitlines() if line.startswith("sqlite"))
    assert "bare SELECT of the stored rows" in first
    assert first.rstrip().endswith("1.00")
    assert "app.events_after" in text
    assert "msgspec EventDecoder" in text

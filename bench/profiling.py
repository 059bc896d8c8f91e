"""`python -m bench --profile`: where a command's time goes, under cProfile.

Runs the create+issue and payment loops in this process, writes the top entries by cumulative
and by own time to var/bench/profile-<backend>-<case>.txt, and returns two summaries: own time
split into categories that add up to 100%, and the cumulative time of the steps every command
takes (load, decide, encode, write). cProfile slows pure-Python code more than C and I/O, so the
shares lean towards Python; the ranking is what matters.
"""

from __future__ import annotations

import cProfile
import inspect
import io
import pstats
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import Any, _ProtocolMeta
from uuid import UUID, uuid4

from eventsourcing.application import Application, Repository, project_aggregate
from eventsourcing.persistence import JSONTranscoder, Mapper

from bench.workloads import CUSTOMER, LINES, PAYMENT, CountingApplication, make_app

OUT_DIR = Path("var/bench")

# (category, substrings of "file:function"); the first match wins; the rest is "other".
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("database driver: SQL, commit/fsync, waits", ("sqlite3", "psycopg", "select.", "epoll", "poll", "socket")),
    ("typing: runtime-Protocol isinstance checks", ("typing.py", "'startswith' of 'str'")),
    (
        "JSON transcoding + mapper",
        ("json", "persistence.py:encode", "persistence.py:decode", "_obj", "to_stored_event", "to_domain_event"),
    ),
    ("eventsourcing, other", ("eventsourcing",)),
    ("ledger domain + commands", ("/ledger/", "/commands/")),
    ("stdlib: uuid, datetime, copy, dataclasses", ("uuid", "datetime", "copy", "dataclasses", "<method", "<built-in")),
]


@dataclass(frozen=True)
class Profiled:
    case: str
    commands: int
    seconds: float
    path: Path
    by_category: list[tuple[str, float]]  # (category, share of own time)
    by_step: list[tuple[str, float, float]]  # (step, cumulative ms per command, calls per command)


def _code(function: Callable[..., Any]) -> CodeType:
    code: CodeType = inspect.unwrap(function).__code__
    return code


def _steps(app: Application[UUID]) -> list[tuple[str, list[CodeType]]]:
    recorder = type(app.recorder)
    return [
        ("Application.save (encode + write + commit)", [_code(Application.save)]),
        ("  recorder.insert_events (SQL + commit)", [_code(recorder.insert_events)]),
        ("  Mapper.to_stored_event (encode)", [_code(Mapper.to_stored_event)]),
        ("Repository.get (load aggregates)", [_code(Repository.get)]),
        ("  recorder.select_events (SQL)", [_code(recorder.select_events)]),
        ("  Mapper.to_domain_event (decode)", [_code(Mapper.to_domain_event)]),
        ("JSONTranscoder.encode + decode (both above)", [_code(JSONTranscoder.encode), _code(JSONTranscoder.decode)]),
        ("project_aggregate (replay, incl. the assert)", [_code(project_aggregate)]),
        ("runtime-Protocol isinstance checks (all callers)", [_code(_ProtocolMeta.__instancecheck__)]),
    ]


def _summarise(stats: pstats.Stats, app: Application[UUID], commands: int) -> tuple[list[Any], list[Any]]:
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in table.values()) or 1.0
    shares = dict.fromkeys([name for name, _ in CATEGORIES] + ["other"], 0.0)
    for (filename, _line, function), entry in table.items():
        label = f"{filename}:{function}"
        name = next((n for n, keys in CATEGORIES if any(k in label for k in keys)), "other")
        shares[name] += entry[2] / total
    cumulative: list[tuple[str, float, float]] = []
    for step, codes in _steps(app):
        keys = {(c.co_filename, c.co_firstlineno, c.co_name) for c in codes}
        seconds = sum(entry[3] for key, entry in table.items() if key in keys)
        calls = sum(entry[1] for key, entry in table.items() if key in keys)
        cumulative.append((step, seconds * 1000 / commands, calls / commands))
    return sorted(shares.items(), key=lambda kv: -kv[1]), cumulative


def _profile(backend: str, case: str, app: CountingApplication, commands: int, body: Callable[[], None]) -> Profiled:
    profiler = cProfile.Profile()
    profiler.enable()
    body()
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    seconds = float(stats.total_tt)  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"profile-{backend}-{case}.txt"
    path.write_text(text.getvalue())
    by_category, by_step = _summarise(stats, app, commands)
    return Profiled(case, commands, seconds, path, by_category, by_step)


def profile_backend(backend: str, url: str, invoices: int, payments: int) -> list[Profiled]:
    app = make_app(url)
    ids: list[UUID] = []

    def create_and_issue() -> None:
        for _ in range(invoices):
            invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=LINES).result
            app.issue(invoice_id)
            ids.append(invoice_id)

    def pay() -> None:
        for n in range(payments):
            app.record_offline_payment(ids[n % len(ids)], PAYMENT, reference=uuid4().hex)

    try:
        return [
            _profile(backend, "create-issue", app, invoices * 2, create_and_issue),
            _profile(backend, "payment", app, payments, pay),
        ]
    finally:
        app.close()

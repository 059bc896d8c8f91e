"""`python -m bench --profile`: where a command's time goes, under cProfile.

Runs the create+issue and payment loops in this process, writes the top entries by cumulative
and by own time to var/bench/profile-<backend>-<case>.txt, and returns two summaries: own time
split into categories that add up to 100%, and the cumulative time of the steps every command
takes (load, decide, encode, write). cProfile slows pure-Python code more than C and I/O, so the
shares lean towards Python; the ranking is what matters.

Beside them (issue 15, "profile first"): the top functions by cumulative time, with their share of
the profiled total, of the webhook path (`profiled_app`: the served app with every thread under
cProfile on its thread-CPU clock, driven by bench/webhooks.py's signed deliveries) and of a read
models rebuild (`profile_rebuild`), printed by `render_top`.
"""

from __future__ import annotations

import cProfile
import inspect
import io
import marshal
import pstats
import threading
import time
from collections.abc import Callable, MutableMapping
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


# ------------------------------------------------------------------------------ top functions by cumulative time

TOP = 25  # rows of each "top functions" table
WEBHOOK_PROFILE_PATH = "/bench/profile"  # profiled_app: GET returns the merged stats (marshal), DELETE clears them
WEBHOOK_PATH = "/webhooks/stripe"


class _Snapshot:
    """What pstats.Stats loads: a profile's `stats` dict, taken without stopping the profiler
    (pstats would call Profile.create_stats, which disables profiling on the calling thread)."""

    def __init__(self, stats: dict[Any, Any]) -> None:
        self.stats = stats

    def create_stats(self) -> None:
        return None


@dataclass(frozen=True)
class TopEntry:
    function: str  # file:line(name), the path shortened to the project or the package
    calls: int
    own: float  # seconds in the function itself
    cumulative: float  # seconds in the function and what it called
    share: float  # cumulative / the total of own times (the whole profiled time)


@dataclass(frozen=True)
class Top:
    """The top functions by cumulative time of one profiled run."""

    case: str
    clock: str  # what the seconds are: "thread CPU" or "wall"
    units: int  # webhooks or events the run handled
    unit: str  # "webhook" | "event"
    total: float  # the run's profiled seconds: the sum of every function's own time
    entries: list[TopEntry]
    path: Path  # the full pstats text (callers included)
    server_cpu: float | None = None  # the server process's CPU seconds meanwhile (webhooks)


def _where(filename: str) -> str:
    for marker in ("/site-packages/", "/lib/python3."):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "/lib/python3." and "/" in tail else tail
    root = str(Path.cwd()) + "/"
    return filename.removeprefix(root)


def top_entries(stats: pstats.Stats, count: int = TOP) -> tuple[float, list[TopEntry]]:
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in table.values()) or 1e-12
    ranked = sorted(table.items(), key=lambda kv: -kv[1][3])[:count]
    entries = [
        TopEntry(
            f"{_where(filename)}:{line}({function})" if line else function,
            int(entry[1]),
            float(entry[2]),
            float(entry[3]),
            float(entry[3]) / total,
        )
        for (filename, line, function), entry in ranked
    ]
    return total, entries


def write_profile(stats: pstats.Stats, name: str) -> Path:
    """The whole profile as text, by cumulative and by own time, with each top function's callers."""
    text = io.StringIO()
    stats.stream = text  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(60)
    stats.sort_stats("tottime").print_stats(40)
    stats.sort_stats("cumulative").print_callers(40)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"profile-{name}.txt"
    path.write_text(text.getvalue())
    stats.dump_stats(path.with_suffix(".prof"))  # for pstats / snakeviz: any function's callers and callees
    return path


def stats_of(snapshots: list[dict[Any, Any]]) -> pstats.Stats:
    stats = pstats.Stats(_Snapshot(snapshots[0]))
    for other in snapshots[1:]:
        stats.add(_Snapshot(other))
    return stats


class ThreadProfiles:
    """cProfile in every thread of this process that starts after `start()`, and in the calling
    one, timed by each thread's CPU clock: waiting (for a request, a lock, the disk, the database)
    costs nothing, so the shares are of the CPU the process spends, as the server CPU column is.
    (cProfile alone follows only the thread that enabled it; threading.setprofile runs a hook
    first thing in each new thread, which enables that thread's own profiler.)"""

    def __init__(self) -> None:
        self._profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _new(self) -> cProfile.Profile:
        profile = cProfile.Profile(time.thread_time)
        with self._lock:
            self._profiles.append(profile)
        return profile

    def start(self) -> None:
        def hook(frame: Any, event: str, arg: Any) -> None:
            self._new().enable()  # replaces this hook for the rest of the thread

        threading.setprofile(hook)
        self._new().enable()

    def clear(self) -> None:
        with self._lock:
            for profile in self._profiles:
                profile.clear()

    def snapshots(self) -> list[dict[Any, Any]]:
        out: list[dict[Any, Any]] = []
        with self._lock:
            for profile in self._profiles:
                profile.snapshot_stats()
                stats: dict[Any, Any] = profile.stats  # type: ignore[attr-defined]
                if stats:
                    out.append(stats)
        return out


def profiled_app() -> Any:
    """A uvicorn factory: the production app (adapters.web_server.build_app) with every thread
    under cProfile (ThreadProfiles); GET /bench/profile answers the merged stats (marshal) and the
    webhooks handled since DELETE /bench/profile, which clears them. Bench only."""
    from adapters.web_server import build_app, frozen_after_start

    profiles = ThreadProfiles()
    profiles.start()
    starlette = build_app()
    handled = [0]

    async def wrapper(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == WEBHOOK_PROFILE_PATH:
            if scope["method"] == "DELETE":
                profiles.clear()
                handled[0] = 0
                body = b""
            else:
                body = marshal.dumps({"webhooks": handled[0], "stats": profiles.snapshots()})
            headers = [(b"content-type", b"application/octet-stream"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http" and scope["path"] == WEBHOOK_PATH:
            handled[0] += 1
        await starlette(scope, receive, send)

    return frozen_after_start(wrapper)


def profile_rebuild(backend: str, url: str) -> Top:
    """`rebuild()` of the read models over the log at `url`, in this process, under cProfile (wall
    clock: one thread, and the time spent waiting on the database is part of a rebuild's cost).
    One process (`ledger rebuild --jobs 1`): cProfile does not follow the forked processes of
    `--jobs 2` (adapters/parallel_rebuild.py), whose parts are the same models' same calls."""
    from adapters.read_models import projection_runner, read_model_engine
    from bench.read_models import REBUILD_BATCH
    from bench.webhooks import ledger_app

    app = ledger_app(url)
    engine = read_model_engine(url)
    try:
        runner = projection_runner(app, engine)
        events = app.head()  # rebuild() answers the events applied summed over the read models
        profiler = cProfile.Profile()
        profiler.enable()
        runner.rebuild(batch_size=REBUILD_BATCH)
        profiler.disable()
    finally:
        engine.dispose()
        app.close()
    profiler.snapshot_stats()
    stats = stats_of([profiler.stats])  # type: ignore[attr-defined]
    total, entries = top_entries(stats)
    path = write_profile(stats, f"{backend}-rebuild")
    return Top(f"rebuild, {backend}, one process", "wall", events, "event", total, entries, path)


def render_top(top: Top) -> str:
    from bench.report import fmt, table

    n = max(1, top.units)
    rows = [
        [
            e.function,
            f"{e.share:.1%}",
            fmt(e.cumulative * 1e6 / n, 1),
            fmt(e.own * 1e6 / n, 1),
            fmt(e.calls / n, 2),
        ]
        for e in top.entries
    ]
    cpu = ""
    if top.server_cpu is not None:
        cpu = (
            f"; the server process's CPU meanwhile {top.server_cpu * 1000 / n:.2f} ms per {top.unit} "
            "(profiled: cProfile slows Python calls, so it is above the unprofiled table's)"
        )
    title = (
        f"\nTop {len(top.entries)} functions by cumulative time [{top.case}] (cProfile, {top.clock} clock): "
        f"{top.units:,} {top.unit}s, {top.total:.2f} s profiled = {top.total * 1e6 / n:,.0f} us per {top.unit}{cpu}.\n"
        "share = cumulative / the profiled total (nested rows overlap; the shares do not add up). "
        f"Full profile with callers: {top.path} (pstats: .prof)"
    )
    headers = ["function", "share", f"cum us/{top.unit}", f"own us/{top.unit}", f"calls/{top.unit}"]
    return table(title, headers, rows)

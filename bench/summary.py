"""Issue 15's table, proved: each figure of the run beside its ceiling from the same run.

Printed last by `python -m bench`, from the reports the parts already made (nothing is measured
here): one row per figure and backend, with the ceiling the issue names for it, measured in the
same run (a trivial Starlette POST and a one-row INSERT for webhooks, a bare SELECT of the log for
rebuild and audit verify, and for rebuild also its write floor, bench/write_floor.py: the log read
and parsed and the rebuilt rows written with no read-model logic; none for as-of), the ratio now /
ceiling, the issue's target and whether it is met. A part that did not run leaves its rows out;
a figure its part does not measure says so. The machine's load moves every figure by up to 2x between runs: the ratio to
the same run's ceiling is what compares across runs.

Peak memory of a rebuild comes from the read-models part, which rebuilds the same growing log at
a tenth of its size (at least the 25,005 events it generates first) and at its full size:
100k and 1M events by default, 25k and 100k with --quick; each in its own process, whose VmHWM
it reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.asof import AsOfReport
from bench.log_replay import ReplayLogReport
from bench.read_models import ReadModelsReport
from bench.report import fmt, table
from bench.webhooks import TARGETS as WEBHOOKS_1_WORKER
from bench.webhooks import WebhookReport, WebhookRow

# The targets (issue 15, "Build" table), per backend.
WEBHOOKS_2_WORKERS = 1_000.0  # PostgreSQL only
HALF_LOAD_P99_MS = 100.0  # p99 at half the 1-worker target, open loop
REBUILD = {"sqlite": 60_000.0, "postgres": 40_000.0}  # events/s
VERIFY = 150_000.0  # events/s
AS_OF_MS = 5.0  # a 1,000-event invoice, any moment
# Peak memory must not grow with the log: the larger rebuild's peak over the smaller one's, for a
# log ten (--quick: four) times larger, within what two runs of one size differ by.
MEMORY_GROWTH = 1.10

TRIVIAL = "trivial"  # bench/webhooks.py: the case of the trivial Starlette endpoint starts so
MAX_LOAD = "max load"  # ... and the closed-loop cases so
TWO_WORKERS = "2 workers"  # the closed-loop case with 2 uvicorn workers starts so (bench/webhooks.py)
HALF_TARGET = "half the target"  # the open-loop case offered half the target


@dataclass(frozen=True)
class Figure:
    figure: str
    backend: str
    now: str
    ceiling: str
    ratio: str
    target: str
    met: str  # "yes", "no", or "-" where nothing was measured


def _met(ok: bool) -> str:
    return "yes" if ok else "no"


def _rate(events: int, seconds: float) -> float:
    return events / seconds if seconds > 0 else 0.0


def _closed_loop(report: WebhookReport, two_workers: bool) -> WebhookRow | None:
    for row in report.rows:
        if two_workers and row.case.startswith(TWO_WORKERS) and "closed loop" in row.case:
            return row  # bench/webhooks.py TWO_WORKERS
        if not two_workers and row.case.startswith(MAX_LOAD) and TWO_WORKERS not in row.case:
            return row
    return None


def _pct(values: Sequence[float], q: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else None


def webhook_figures(report: WebhookReport) -> list[Figure]:
    backend = report.backend
    trivial = next((r.row.ok_rate for r in report.rows if r.case.startswith(TRIVIAL)), None)
    ceiling = f"trivial POST {fmt(trivial)}/s; 1-row INSERT {fmt(report.ceiling)}/s"
    figures: list[Figure] = []
    one = _closed_loop(report, two_workers=False)
    if one is not None:
        rate = one.row.ok_rate
        ratio = f"{rate / trivial:.2f} / {rate / report.ceiling:.2f}" if trivial and report.ceiling else "-"
        goal = WEBHOOKS_1_WORKER[backend]
        figures.append(
            Figure(
                "webhooks/s, closed loop, 1 worker",
                backend,
                fmt(rate),
                ceiling,
                ratio,
                f">= {fmt(goal)}",
                _met(rate >= goal),
            )
        )
    if backend == "postgres":
        two = _closed_loop(report, two_workers=True)
        if two is None:
            figures.append(
                Figure(
                    "webhooks/s, closed loop, 2 workers",
                    backend,
                    "not measured",
                    "-",
                    "-",
                    f">= {fmt(WEBHOOKS_2_WORKERS)}",
                    "-",
                )
            )
        else:
            rate = two.row.ok_rate
            ratio = f"{rate / trivial:.2f} / {rate / report.ceiling:.2f}" if trivial and report.ceiling else "-"
            figures.append(
                Figure(
                    "webhooks/s, closed loop, 2 workers",
                    backend,
                    fmt(rate),
                    ceiling,
                    ratio,
                    f">= {fmt(WEBHOOKS_2_WORKERS)}",
                    _met(rate >= WEBHOOKS_2_WORKERS),
                )
            )
    half = next((r for r in report.rows if r.offered and HALF_TARGET in r.case), None)
    if half is not None:
        p99 = _pct(half.row.latencies_ms, 0.99)
        figures.append(
            Figure(
                f"webhooks p99 ms, open loop at {fmt(half.offered)}/s (half the target)",
                backend,
                fmt(p99, 1),
                "-",
                "-",
                f"< {fmt(HALF_LOAD_P99_MS)} ms",
                _met(p99 is not None and p99 < HALF_LOAD_P99_MS),
            )
        )
    return figures


def _bare_select(report: ReadModelsReport) -> float | None:
    for label, (rows, seconds) in report.reads.items():
        if label.startswith("bare SELECT"):
            return _rate(rows, seconds)
    return None


def rebuild_figures(report: ReadModelsReport) -> list[Figure]:
    backend = report.backend
    select = _bare_select(report)
    floor = _rate(report.floor.events, report.floor.seconds) if report.floor else None
    ceiling = f"bare SELECT {fmt(select)}/s" if select else "-"
    if floor:
        ceiling += f"; write floor {fmt(floor)}/s"
    figures: list[Figure] = []
    for events, seconds, _ in report.rebuilds:
        rate = _rate(events, seconds)
        goal = REBUILD[backend]
        ratios = [f"{rate / c:.2f}" for c in (select, floor) if c]
        figures.append(
            Figure(
                f"rebuild ev/s, {fmt(events)} events",
                backend,
                fmt(rate),
                ceiling,
                " / ".join(ratios) or "-",
                f">= {fmt(goal)}",
                _met(rate >= goal),
            )
        )
    if len(report.rebuilds) >= 2:
        (small, _, small_mib), (large, _, large_mib) = report.rebuilds[0], report.rebuilds[-1]
        growth = large_mib / small_mib if small_mib else 0.0
        figures.append(
            Figure(
                f"rebuild peak RSS MiB, {fmt(small)} -> {fmt(large)} events",
                backend,
                f"{fmt(small_mib, 1)} -> {fmt(large_mib, 1)}",
                "-",
                f"{growth:.2f}",
                f"flat: ratio <= {MEMORY_GROWTH:g}",
                _met(0 < growth <= MEMORY_GROWTH),
            )
        )
    return figures


def verify_figures(asof: AsOfReport | None, read_models: ReadModelsReport | None) -> list[Figure]:
    """From the as-of part, whose bare SELECT of the same rows ran right after verify; from the
    read-models part (its own bare SELECT) where the as-of part did not run."""
    if asof is not None:
        backend, events, seconds = asof.backend, asof.verified, asof.verify_seconds
        select: float | None = _rate(asof.selected, asof.select_seconds)
    elif read_models is not None and read_models.verify[0]:
        backend, (events, seconds) = read_models.backend, read_models.verify
        select = _bare_select(read_models)
    else:
        return []
    rate = _rate(events, seconds)
    return [
        Figure(
            f"audit verify ev/s, {fmt(events)} events",
            backend,
            fmt(rate),
            f"bare SELECT {fmt(select)}/s" if select else "-",
            f"{rate / select:.2f}" if select else "-",
            f">= {fmt(VERIFY)}",
            _met(rate >= VERIFY),
        )
    ]


def as_of_figures(report: AsOfReport) -> list[Figure]:
    """Warm: the slowest moment of the invoice already asked in the process; first call: a fresh
    process's first ask (bench/asof.py's 'first call' row). Where the report times the
    invoice_versions read model beside the in-process cache, the read model's rows: it is what
    `ledger serve` answers with."""
    served = [row for row in report.rows if row.moment.startswith("read model")] or report.rows
    first = [row for row in served if "first call" in row.moment]
    warm = [row for row in served if "first call" not in row.moment]
    figures: list[Figure] = []
    for label, rows in (("first call", first), ("warm", warm)):
        if not rows or not any(row.samples_ms for row in rows):
            continue
        p50 = max(row.pct(0.5) for row in rows if row.samples_ms)
        p99 = max(row.pct(0.99) for row in rows if row.samples_ms)
        figures.append(
            Figure(
                f"invoice as of ms p50 / p99, 1,000-event invoice, {label}",
                report.backend,
                f"{fmt(p50, 2)} / {fmt(p99, 2)}",
                "-",
                "-",
                f"< {fmt(AS_OF_MS)} ms",
                _met(p99 < AS_OF_MS),
            )
        )
    return figures


def figures(
    webhooks: Sequence[WebhookReport] = (),
    read_models: Sequence[ReadModelsReport] = (),
    replay: Sequence[ReplayLogReport] = (),
    asof: Sequence[AsOfReport] = (),
) -> list[Figure]:
    """Every row the reports allow, backend by backend (SQLite first), in the issue's order."""
    out: list[Figure] = []
    backends = [
        b for b in ("sqlite", "postgres") if any(r.backend == b for r in [*webhooks, *read_models, *asof, *replay])
    ]
    for backend in backends:
        for report in webhooks:
            if report.backend == backend:
                out.extend(webhook_figures(report))
        models = next((r for r in read_models if r.backend == backend), None)
        if models is not None:
            out.extend(rebuild_figures(models))
        out.extend(replay_figures([r for r in replay if r.backend == backend]))
        as_of = next((r for r in asof if r.backend == backend), None)
        out.extend(verify_figures(as_of, models))
        if as_of is not None:
            out.extend(as_of_figures(as_of))
    return out


REPLAY_CASE = "app.events_after"  # bench/log_replay.py: the library's read and decode, the rebuild's input


def replay_figures(reports: Sequence[ReplayLogReport]) -> list[Figure]:
    """The issue's "library decode" beside the same bare SELECT (bench/log_replay.py puts the
    ceiling first): not a target of its own, the bound a rebuild reading through it meets."""
    figures: list[Figure] = []
    for report in reports:
        if not report.figures:
            continue
        rows, seconds = next(iter(report.figures.values()))
        select = _rate(rows, seconds)
        for label, (events, taken) in report.figures.items():
            if label.startswith(REPLAY_CASE):
                rate = _rate(events, taken)
                figures.append(
                    Figure(
                        f"read + decode ev/s (library, rebuild's input), {fmt(events)} events",
                        report.backend,
                        fmt(rate),
                        f"bare SELECT {fmt(select)}/s",
                        f"{rate / select:.2f}" if select else "-",
                        "-",
                        "-",
                    )
                )
    return figures


def render(rows: Sequence[Figure]) -> str:
    title = (
        "Issue 15, the figures of this run beside their ceilings from the same run (bench/summary.py).\n"
        "ratio = now / ceiling (webhooks: / trivial POST and / one-row INSERT; rebuild: / bare SELECT and\n"
        "/ write floor); met: against the issue's target.\n"
        "Peak RSS: the largest rebuilding process's (the parent's VmHWM, a replaying child's maxrss) at the\n"
        "smaller and the full log; ratio = full / smaller."
    )
    headers = ["figure", "backend", "now", "ceiling", "ratio", "target", "met"]
    return table(
        title, headers, [[r.figure, r.backend, r.now, r.ceiling, r.ratio, r.target, r.met] for r in rows], left=2
    )

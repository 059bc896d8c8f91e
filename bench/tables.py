"""Turn the measurements into the printed tables."""

from __future__ import annotations

from bench.profiling import Profiled
from bench.report import fmt, table
from bench.suite import BackendReport, Row


def _target(row: Row, rate: float) -> str:
    if row.target is None:
        return ""
    verdict = "met" if rate >= row.target else "MISSED"
    return f">={fmt(row.target)}/s {verdict} ({rate / row.target:.0%})"


def throughput(reports: list[BackendReport]) -> str:
    headers = [
        "backend",
        "case",
        "writers",
        "ops",
        "seconds",
        "ops/s",
        "commands/s",
        "ceiling tx/s",
        "vs ceiling",
        "target (payments, 1 writer)",
        "conflicts",
        "gave up",
        "peak RSS MiB",
    ]
    rows: list[list[str]] = []
    for report in reports:
        for row in report.rows:
            o = row.outcome
            commands = o.rate * row.commands_per_op
            is_raw = row.ceiling is None
            rows.append(
                [
                    report.backend.name,
                    row.case,
                    fmt(row.writers),
                    fmt(o.ops),
                    fmt(o.seconds, 2),
                    fmt(o.rate),
                    "-" if is_raw else fmt(commands),
                    "-" if is_raw else fmt(row.ceiling),
                    "-" if row.ceiling is None else f"{commands / row.ceiling:.1%}",
                    _target(row, commands),
                    fmt(o.conflicts),
                    fmt(o.exhausted),
                    fmt(o.peak_rss_mib, 1),
                ]
            )
    title = (
        "Write throughput. ops = invoices for create+issue (2 commands each), else commands or raw transactions.\n"
        "ceiling = raw one-row INSERT transactions on the same database with the same number of writers;\n"
        "conflicts = saves refused by a concurrent writer (retried); gave up = ConcurrencyRetriesExhaustedError;\n"
        "peak RSS = VmHWM of the largest worker process."
    )
    return table(title, headers, rows, left=2)


def growth(reports: list[BackendReport]) -> str:
    headers = ["backend", "invoice events before", "payments", "commands/s", "ms per command"]
    rows: list[list[str]] = []
    for report in reports:
        for before, commands, seconds in report.growth:
            rows.append(
                [
                    report.backend.name,
                    f"{before:,} -> {before + commands:,}",
                    fmt(commands),
                    fmt(commands / seconds),
                    fmt(seconds * 1000 / commands, 2),
                ]
            )
    title = "Cost growth: partial payments on ONE invoice, single writer (flat: the cache reads only new events)."
    return table(title, headers, rows)


def replay(reports: list[BackendReport]) -> str:
    headers = ["backend", "replay", "events", "ms (median)", "events/s", "peak RSS MiB"]
    rows: list[list[str]] = []
    for report in reports:
        for n, (label, (events, ms)) in enumerate(report.replay.items()):
            rss = fmt(report.replay_rss_mib, 1) if n == 0 else ""
            rows.append([report.backend.name, label, fmt(events), fmt(ms, 2), fmt(events * 1000 / ms), rss])
    title = "Replay of one invoice with 1,000 events (created, 2 lines, issued, 996 partial payments)."
    return table(title, headers, rows, left=2)


def profiles(backend: str, results: list[Profiled]) -> str:
    blocks: list[str] = []
    for p in results:
        shares = [[name, f"{share:.1%}"] for name, share in p.by_category]
        blocks.append(
            table(
                f"Profile [{backend}] {p.case}: {p.commands:,} commands, {p.seconds:.2f} s under cProfile -> {p.path}",
                ["own time by category", "share"],
                shares,
            )
        )
        steps = [[name, fmt(ms, 3), fmt(calls, 1)] for name, ms, calls in p.by_step]
        blocks.append(table("", ["cumulative step", "ms per command", "calls per command"], steps))
    return "\n\n".join(blocks)

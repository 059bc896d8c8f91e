"""The webhook path of another revision, measured in the same run: `--baseline REF`.

A change that claims to make the webhook path faster (or no slower) is judged against the code
it replaced, on the same machine and in the same minutes, not against a figure from another day.
The revision's tree is exported with `git archive` into a temporary folder and its own
benchmark (`bench.webhooks.run_webhooks` of that tree: its server, its stream, its check) runs in
a subprocess whose import path starts with that folder, with this virtualenv's packages. Only
what every revision of `bench.webhooks` has is relied on: `run_webhooks(backend, url, plan)`,
`WebhookPlan`'s fields, and each row's `case`, `row.ok_rate` and `row.latencies_ms`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.report import fmt, table
from bench.webhooks import WebhookPlan, WebhookReport

ROOT = Path(__file__).resolve().parent.parent
MAX_LOAD = "max load (closed loop)"

# Runs inside the exported tree: prints one JSON line with the figures of its max-load row.
_DRIVER = """
import dataclasses, json, sys
from bench.webhooks import WebhookPlan, run_webhooks
backend, url, given = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
names = {f.name for f in dataclasses.fields(WebhookPlan)}
report = run_webhooks(backend, url, WebhookPlan(**{k: v for k, v in given.items() if k in names}))
row = next(r for r in report.rows if r.case == "max load (closed loop)")
lat = row.row.latencies_ms
pick = lambda q: lat[min(len(lat) - 1, round(q * (len(lat) - 1)))] if lat else None
print(json.dumps({"rate": row.row.ok_rate, "p50": pick(0.5), "p99": pick(0.99)}))
"""


@dataclass(frozen=True)
class Figures:
    rate: float  # webhooks/s answered 2xx at max load
    p50: float | None  # ms
    p99: float | None


@dataclass(frozen=True)
class Comparison:
    backend: str
    ref: str
    baseline: Figures
    current: Figures


def revision(ref: str) -> str | None:
    """The commit `ref` names, abbreviated; None (said on stderr) when this clone does not have it,
    e.g. a shallow one: the rest of the bench still runs."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", f"{ref}^{{commit}}"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        print(f"--baseline {ref}: not a commit of this clone, no comparison ({done.stderr.strip()})", file=sys.stderr)
        return None
    return done.stdout.strip()


def run_baseline(ref: str, backend: str, url: str, plan: WebhookPlan) -> Figures:
    archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=ROOT, capture_output=True, check=True)
    with tempfile.TemporaryDirectory(prefix="ledger-bench-baseline-") as tree:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tree, filter="data")
        given = json.dumps(dataclasses.asdict(plan))
        done = subprocess.run(
            [sys.executable, "-c", _DRIVER, backend, url, given],
            cwd=tree,
            env={**os.environ, "PYTHONPATH": tree},
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"baseline {ref} on {backend} failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return Figures(float(figures["rate"]), figures["p50"], figures["p99"])


def current_figures(report: WebhookReport) -> Figures:
    row = next(r for r in report.rows if r.case == MAX_LOAD).row
    latencies = row.latencies_ms

    def pick(q: float) -> float | None:
        return latencies[min(len(latencies) - 1, round(q * (len(latencies) - 1)))] if latencies else None

    return Figures(row.ok_rate, pick(0.5), pick(0.99))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render(comparisons: list[Comparison]) -> str:
    rows = [
        [
            c.backend,
            c.ref,
            fmt(c.baseline.rate),
            fmt(c.current.rate),
            f"{c.current.rate / c.baseline.rate:.2f}x" if c.baseline.rate else "-",
            f"{_ms(c.baseline.p50)} / {_ms(c.baseline.p99)}",
            f"{_ms(c.current.p50)} / {_ms(c.current.p99)}",
        ]
        for c in comparisons
    ]
    heads = ["backend", "baseline", "baseline/s", "this tree/s", "ratio", "baseline p50/p99 ms", "this p50/p99 ms"]
    return table("webhooks at max load, this tree against --baseline (same run, same plan)", heads, rows, left=2)

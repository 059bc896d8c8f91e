"""`python -m bench [--quick] [--backend sqlite|postgres|all] [--profile]`: print the tables."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import tables
from bench.machine import header, postgres_version
from bench.profiling import profile_backend
from bench.suite import FULL, QUICK, Backend, BackendReport, Plan, run_backend


def _sqlite(plan: Plan, directory: Path, profile: bool) -> tuple[BackendReport, str]:
    path = directory / "ledger.sqlite3"
    report = run_backend(plan, Backend("sqlite", f"sqlite:///{path}", str(path)))
    extra = ""
    if profile:
        url = f"sqlite:///{directory / 'profile.sqlite3'}"
        extra = tables.profiles("sqlite", profile_backend("sqlite", url, plan.invoices // 2, plan.payments // 2))
    return report, extra


def _postgres(plan: Plan, profile: bool) -> tuple[BackendReport, str, str]:
    from tests.pg_cluster import running_cluster  # the test helper: initdb + pg_ctl on a free port

    with running_cluster() as cluster:
        with cluster.database() as url:
            version = postgres_version(url)
            report = run_backend(plan, Backend("postgres", url, url))
        extra = ""
        if profile:
            with cluster.database() as url:
                runs = profile_backend("postgres", url, plan.invoices // 2, plan.payments // 2)
                extra = tables.profiles("postgres", runs)
    return report, extra, version


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer operations: a smoke run")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--profile", action="store_true", help="also cProfile single-writer commands")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    began = time.monotonic()
    reports: list[BackendReport] = []
    extras: list[str] = []
    pg_version: str | None = None
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as directory:
        if args.backend in ("sqlite", "all"):
            report, extra = _sqlite(plan, Path(directory), args.profile)
            reports.append(report)
            extras.append(extra)
    if args.backend in ("postgres", "all"):
        report, extra, pg_version = _postgres(plan, args.profile)
        reports.append(report)
        extras.append(extra)
    print(header(pg_version))
    print(f"plan: {'quick' if args.quick else 'full'} {plan}")
    print()
    print(tables.throughput(reports))
    print()
    print(tables.growth(reports))
    print()
    print(tables.replay(reports))
    for extra in extras:
        if extra:
            print()
            print(extra)
    print(f"\ntotal run time: {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

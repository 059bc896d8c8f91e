"""`python -m bench [--quick] [--backend sqlite|postgres|all] [--profile]
[--only write|read-models|replay|web|webhooks|usage|reconcile|admin|pdf|mail|portal|asof] [--events N]
[--payments N,N,...]
[--baseline REF]`."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bench import tables
from bench.admin import FULL as ADMIN_FULL
from bench.admin import QUICK as ADMIN_QUICK
from bench.admin import AdminPlan, AdminReport, run_admin
from bench.admin import render as render_admin
from bench.asof import FULL as ASOF_FULL
from bench.asof import QUICK as ASOF_QUICK
from bench.asof import AsOfPlan, AsOfReport, run_asof
from bench.asof import render as render_asof
from bench.baseline import Comparison, current_figures, revision, run_baseline
from bench.baseline import render as render_baseline
from bench.log_replay import FULL as REPLAY_FULL
from bench.log_replay import QUICK as REPLAY_QUICK
from bench.log_replay import ReplayLogReport, run_replay_log
from bench.log_replay import render as render_replay_log
from bench.machine import header, postgres_version
from bench.mail import FULL as MAIL_FULL
from bench.mail import QUICK as MAIL_QUICK
from bench.mail import MailPlan, MailRow, run_mail
from bench.mail import render as render_mail
from bench.pdf import FULL as PDF_FULL
from bench.pdf import QUICK as PDF_QUICK
from bench.pdf import render as render_pdf
from bench.pdf import run_pdf
from bench.portal import FULL as PORTAL_FULL
from bench.portal import QUICK as PORTAL_QUICK
from bench.portal import PortalPlan, PortalReport, run_portal
from bench.portal import render as render_portal
from bench.profiling import profile_backend, profile_rebuild
from bench.read_models import DEFAULT_EVENTS, ReadModelsReport, run_read_models
from bench.read_models import render as render_read_models
from bench.reconcile import FULL as RECONCILE_FULL
from bench.reconcile import QUICK as RECONCILE_QUICK
from bench.reconcile import ReconcileReport, run_reconcile
from bench.reconcile import render as render_reconcile
from bench.suite import FULL, QUICK, Backend, BackendReport, Plan, run_backend
from bench.summary import figures as summary_figures
from bench.summary import render as render_summary
from bench.usage import FULL as USAGE_FULL
from bench.usage import QUICK as USAGE_QUICK
from bench.usage import UsagePlan, UsageRow, run_usage
from bench.usage import render as render_usage
from bench.web import FULL as WEB_FULL
from bench.web import QUICK as WEB_QUICK
from bench.web import WebPlan, WebReport, run_web
from bench.web import render as render_web
from bench.webhooks import FULL as WEBHOOKS_FULL
from bench.webhooks import QUICK as WEBHOOKS_QUICK
from bench.webhooks import WebhookPlan, WebhookReport, run_webhooks
from bench.webhooks import render as render_webhooks


def _sqlite(plan: Plan, directory: Path, profile: bool) -> tuple[BackendReport, str]:
    path = directory / "ledger.sqlite3"
    report = run_backend(plan, Backend("sqlite", f"sqlite:///{path}", str(path)))
    extra = ""
    if profile:
        url = f"sqlite:///{directory / 'profile.sqlite3'}"
        extra = tables.profiles("sqlite", profile_backend("sqlite", url, plan.invoices // 2, plan.payments // 2))
    return report, extra


def _postgres(
    plan: Plan | None,
    profile: bool,
    read_model_events: int,
    web: WebPlan | None,
    webhooks: WebhookPlan | None,
    baseline: str | None = None,
    comparisons: list[Comparison] | None = None,
) -> tuple[BackendReport | None, str, str, ReadModelsReport | None, WebReport | None, WebhookReport | None]:
    from tests.pg_cluster import running_cluster  # the test helper: initdb + pg_ctl on a free port

    report: BackendReport | None = None
    read_models: ReadModelsReport | None = None
    web_report: WebReport | None = None
    webhooks_report: WebhookReport | None = None
    extra = ""
    with running_cluster() as cluster:
        with cluster.database() as url:
            version = postgres_version(url)
            if plan is not None:
                report = run_backend(plan, Backend("postgres", url, url))
        if plan is not None and profile:
            with cluster.database() as url:
                runs = profile_backend("postgres", url, plan.invoices // 2, plan.payments // 2)
                extra = tables.profiles("postgres", runs)
        if read_model_events:
            with cluster.database() as url:
                read_models = run_read_models("postgres", url, read_model_events)
                if profile:
                    read_models.top = profile_rebuild("postgres", url)
        if web is not None:
            with cluster.database() as url:
                web_report = run_web("postgres", url, web)
        if webhooks is not None:
            with cluster.database() as url:
                webhooks_report = run_webhooks("postgres", url, webhooks)
            if baseline is not None and comparisons is not None:
                with cluster.database() as url:
                    figures = run_baseline(baseline, "postgres", url, webhooks)
                comparisons.append(Comparison("postgres", baseline, figures, current_figures(webhooks_report)))
    return report, extra, version, read_models, web_report, webhooks_report


def _postgres_replay(events: int) -> ReplayLogReport:
    from tests.pg_cluster import running_cluster

    with running_cluster() as cluster, cluster.database() as url:
        return run_replay_log("postgres", url, events)


def _postgres_usage(plan: UsagePlan) -> UsageRow:
    from tests.pg_cluster import running_cluster

    with running_cluster() as cluster, cluster.database() as url:
        return run_usage("postgres", url, plan)


def _postgres_mail(plan: MailPlan) -> MailRow:
    from tests.pg_cluster import running_cluster

    with running_cluster() as cluster, cluster.database() as url:
        return run_mail("postgres", url, plan)


def _postgres_admin(plan: AdminPlan) -> AdminReport:
    from tests.pg_cluster import running_cluster

    with running_cluster() as cluster, cluster.database() as url:
        return run_admin("postgres", url, plan)


def _postgres_portal(plan: PortalPlan) -> PortalReport:
    from tests.pg_cluster import running_cluster

    with running_cluster() as cluster, cluster.database() as url:
        return run_portal("postgres", url, plan)


def _postgres_asof(plan: AsOfPlan) -> AsOfReport:
    from tests.pg_cluster import running_cluster

    with running_cluster() as cluster, cluster.database() as as_of_url, cluster.database() as log_url:
        return run_asof("postgres", as_of_url, log_url, plan)


def _reconcile(backend: str, directory: Path, sizes: tuple[int, ...]) -> ReconcileReport:
    """One fresh database per size: a SQLite file, or a database of a throwaway cluster."""
    if backend == "sqlite":

        @contextmanager
        def files(payments: int) -> Iterator[str]:
            yield f"sqlite:///{directory / f'reconcile-{payments}.sqlite3'}"

        return run_reconcile("sqlite", files, sizes)
    from tests.pg_cluster import running_cluster

    with running_cluster() as cluster:
        return run_reconcile("postgres", lambda _payments: cluster.database(), sizes)


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(part.replace("_", "")) for part in text.split(",") if part)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer operations: a smoke run")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also cProfile single-writer commands; with webhooks, time a webhook's steps and print the served "
        "webhook path's top functions by cumulative time; with read models, a rebuild's",
    )
    parser.add_argument(
        "--only",
        choices=[
            "write",
            "read-models",
            "replay",
            "web",
            "webhooks",
            "usage",
            "reconcile",
            "admin",
            "pdf",
            "mail",
            "portal",
            "asof",
        ],
        default=None,
        help="run one part only (default: all)",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=None,
        help=f"events in the read-models log (default {DEFAULT_EVENTS:,}; --quick: a tenth); with --only replay, "
        f"in the replay log (default {REPLAY_FULL:,}; --quick: {REPLAY_QUICK:,})",
    )
    parser.add_argument(
        "--payments",
        type=_sizes,
        default=None,
        help=f"reconcile: the Stripe payments of each point, comma-separated (default {RECONCILE_FULL}; "
        f"--quick: {RECONCILE_QUICK})",
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        default=None,
        help="with webhooks: also run that git revision's own webhook bench in the same run and print the ratio",
    )
    args = parser.parse_args(argv)
    baseline = revision(args.baseline) if args.baseline else None
    comparisons: list[Comparison] = []
    plan = QUICK if args.quick else FULL
    writes = args.only in (None, "write")
    read_model_events = 0
    if args.only in (None, "read-models"):
        read_model_events = args.events or (DEFAULT_EVENTS // 10 if args.quick else DEFAULT_EVENTS)
    replay_events = 0
    if args.only in (None, "replay"):
        replay_events = (args.only == "replay" and args.events) or (REPLAY_QUICK if args.quick else REPLAY_FULL)
    replay_reports: list[ReplayLogReport] = []
    web = (WEB_QUICK if args.quick else WEB_FULL) if args.only in (None, "web") else None
    webhooks = (WEBHOOKS_QUICK if args.quick else WEBHOOKS_FULL) if args.only in (None, "webhooks") else None
    usage = (USAGE_QUICK if args.quick else USAGE_FULL) if args.only in (None, "usage") else None
    usage_rows: list[UsageRow] = []
    reconcile_sizes: tuple[int, ...] = ()
    if args.only in (None, "reconcile"):
        reconcile_sizes = args.payments or (RECONCILE_QUICK if args.quick else RECONCILE_FULL)
    reconcile_reports: list[ReconcileReport] = []
    admin = (ADMIN_QUICK if args.quick else ADMIN_FULL) if args.only in (None, "admin") else None
    admin_reports: list[AdminReport] = []
    pdf = (PDF_QUICK if args.quick else PDF_FULL) if args.only in (None, "pdf") else None
    mail = (MAIL_QUICK if args.quick else MAIL_FULL) if args.only in (None, "mail") else None
    mail_rows: list[MailRow] = []
    portal = (PORTAL_QUICK if args.quick else PORTAL_FULL) if args.only in (None, "portal") else None
    portal_reports: list[PortalReport] = []
    asof = (ASOF_QUICK if args.quick else ASOF_FULL) if args.only in (None, "asof") else None
    asof_reports: list[AsOfReport] = []
    began = time.monotonic()
    reports: list[BackendReport] = []
    read_models: list[ReadModelsReport] = []
    web_reports: list[WebReport] = []
    webhook_reports: list[WebhookReport] = []
    extras: list[str] = []
    pg_version: str | None = None
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as directory:
        if args.backend in ("sqlite", "all"):
            if writes:
                report, extra = _sqlite(plan, Path(directory), args.profile)
                reports.append(report)
                extras.append(extra)
            if read_model_events:
                url = f"sqlite:///{Path(directory) / 'read-models.sqlite3'}"
                read_models.append(run_read_models("sqlite", url, read_model_events))
                if args.profile:
                    read_models[-1].top = profile_rebuild("sqlite", url)
            if replay_events:
                url = f"sqlite:///{Path(directory) / 'replay.sqlite3'}"
                replay_reports.append(run_replay_log("sqlite", url, replay_events))
            if web is not None:
                url = f"sqlite:///{Path(directory) / 'web.sqlite3'}"
                web_reports.append(run_web("sqlite", url, web))
            if webhooks is not None:
                url = f"sqlite:///{Path(directory) / 'webhooks.sqlite3'}"
                webhook_reports.append(run_webhooks("sqlite", url, webhooks, args.profile))
                if baseline is not None:
                    url = f"sqlite:///{Path(directory) / 'webhooks-baseline.sqlite3'}"
                    figures = run_baseline(baseline, "sqlite", url, webhooks)
                    comparisons.append(Comparison("sqlite", baseline, figures, current_figures(webhook_reports[-1])))
            if usage is not None:
                usage_rows.append(run_usage("sqlite", f"sqlite:///{Path(directory) / 'usage.sqlite3'}", usage))
            if reconcile_sizes:
                reconcile_reports.append(_reconcile("sqlite", Path(directory), reconcile_sizes))
            if admin is not None:
                admin_reports.append(run_admin("sqlite", f"sqlite:///{Path(directory) / 'admin.sqlite3'}", admin))
            if mail is not None:
                mail_rows.append(run_mail("sqlite", f"sqlite:///{Path(directory) / 'mail.sqlite3'}", mail))
            if portal is not None:
                url = f"sqlite:///{Path(directory) / 'portal.sqlite3'}"
                portal_reports.append(run_portal("sqlite", url, portal))
            if asof is not None:
                as_of_url = f"sqlite:///{Path(directory) / 'asof.sqlite3'}"
                log_url = f"sqlite:///{Path(directory) / 'asof-log.sqlite3'}"
                asof_reports.append(run_asof("sqlite", as_of_url, log_url, asof))
    if args.backend in ("postgres", "all"):
        pg_report, extra, pg_version, pg_read_models, pg_web, pg_webhooks = _postgres(
            plan if writes else None, args.profile, read_model_events, web, webhooks, baseline, comparisons
        )
        if pg_report is not None:
            reports.append(pg_report)
            extras.append(extra)
        if pg_read_models is not None:
            read_models.append(pg_read_models)
        if pg_web is not None:
            web_reports.append(pg_web)
        if pg_webhooks is not None:
            webhook_reports.append(pg_webhooks)
        if replay_events:
            replay_reports.append(_postgres_replay(replay_events))
        if usage is not None:
            usage_rows.append(_postgres_usage(usage))
        if reconcile_sizes:
            reconcile_reports.append(_reconcile("postgres", Path(), reconcile_sizes))
        if admin is not None:
            admin_reports.append(_postgres_admin(admin))
        if mail is not None:
            mail_rows.append(_postgres_mail(mail))
        if portal is not None:
            portal_reports.append(_postgres_portal(portal))
        if asof is not None:
            asof_reports.append(_postgres_asof(asof))
    pdf_report = run_pdf(pdf) if pdf is not None else None  # CPU only: the same on either backend
    print(header(pg_version))
    if writes:
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
    if read_models:
        print()
        print(f"read models: {read_model_events:,} events")
        print(render_read_models(read_models))
    if replay_reports:
        print()
        print(render_replay_log(replay_reports))
    if web is not None and web_reports:
        print()
        print(render_web(web_reports, web))
    if webhooks is not None and webhook_reports:
        print()
        print(render_webhooks(webhook_reports, webhooks))
    if comparisons:
        print()
        print(render_baseline(comparisons))
    if usage_rows:
        print()
        print(render_usage(usage_rows))
    if reconcile_reports:
        print()
        print(render_reconcile(reconcile_reports))
    if admin is not None and admin_reports:
        print()
        print(render_admin(admin_reports, admin))
    if pdf is not None and pdf_report is not None:
        print()
        print(render_pdf(pdf_report, pdf))
    if mail_rows:
        print()
        print(render_mail(mail_rows))
    if portal is not None and portal_reports:
        print()
        print(render_portal(portal_reports, portal))
    if asof is not None and asof_reports:
        print()
        print(render_asof(asof_reports, asof))
    summary = summary_figures(webhook_reports, read_models, replay_reports, asof_reports)
    if summary:
        print()
        print(render_summary(summary))
    print(f"\ntotal run time: {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

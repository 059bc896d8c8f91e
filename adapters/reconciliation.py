"""`ledger reconcile`: run a reconciliation from the command line and print its report.

    ledger reconcile [--from ISO] [--to ISO] [--source stripe|ledger] [--format table|csv|json]
                     [--output FILE] [--quiet] [--by NAME] [--stuck-after MINUTES]
    ledger reconcile resolve ITEM_ID --action apply|explain|refund_duplicate --note TEXT [--by NAME]
    ledger reconcile history [--limit N]
    ledger reconcile show RUN_ID [--format table|csv|json] [--output FILE]

The source is Stripe when STRIPE_API_KEY is set (STRIPE_API_BASE honoured), else the ledger
alone; `--source` says which. The period defaults to the 30 days before now. Exit status: 0 when
nothing is open, 1 when the report lists open items, 2 when the run could not be done (the
reason on stderr, and the run recorded as failed).
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import sys
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta
from typing import Any, TextIO
from uuid import UUID

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from adapters.settings import Settings
from commands.reconciliation.facts import Period, ProviderRecords
from ledger.errors import InvalidInputError, ProviderConfigurationError
from ledger.money import Money
from ledger.reconciliation.items import OPEN
from ledger.reconciliation.runs import LEDGER, STRIPE
from projections.paging import MAX_PAGE
from projections.reconciliation.engine import Report

DEFAULT_DAYS = 30
FORMATS = ("table", "csv", "json")
# The item fields, in the order CSV columns and JSON keys take them.
ITEM_FIELDS = (
    "id",
    "class",
    "status",
    "currency",
    "amount_ledger",
    "amount_stripe",
    "stripe_id",
    "invoice_id",
    "payment_id",
    "explanation",
    "events",
    "detected_at",
    "resolution",
)
WIDTH = 100  # the table must read in a 100-column terminal


def period_of(start: datetime | None, end: datetime | None, now: datetime) -> Period:
    end = end or now
    return Period(start or end - timedelta(days=DEFAULT_DAYS), end)


def records_for(settings: Settings, source: str | None) -> ProviderRecords | None:
    """Stripe's records when asked for (or when a key is set and no source was named)."""
    if source == LEDGER or (source is None and not settings.stripe_api_key):
        return None
    if not settings.stripe_api_key:
        raise ProviderConfigurationError("--source stripe needs STRIPE_API_KEY (and STRIPE_API_BASE for a test server)")
    from adapters.stripe.listing import StripeRecords  # only when Stripe is asked for

    return StripeRecords(settings.stripe_api_key, api_base=settings.stripe_api_base)


def requester(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "cli"


@contextmanager
def progress_bar(quiet: bool, stream: TextIO | None = None) -> Iterator[Any]:
    """A rich progress display on a terminal; nothing when piped or --quiet."""
    console = Console(file=stream or sys.stderr)
    if quiet or not console.is_terminal:
        yield None
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} objects"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        task = progress.add_task("reading", total=None)

        def update(what: str, count: int) -> None:
            progress.update(task, description=what, completed=count)

        yield update


# ------------------------------------------------------------------------------ rendering


def render(report: Report, fmt: str, out: TextIO) -> None:
    if fmt == "json":
        json.dump(report.as_json(), out, indent=2, ensure_ascii=False)
        out.write("\n")
    elif fmt == "csv":
        write_csv(report.items, out)
    else:
        render_table(report, out)


def write_csv(items: Sequence[dict[str, Any]], out: TextIO) -> None:
    """One row per item, the same fields as JSON; `events` and `resolution` as JSON text."""
    writer = csv.DictWriter(out, fieldnames=ITEM_FIELDS, lineterminator="\n")
    writer.writeheader()
    for item in items:
        row = {name: item.get(name) for name in ITEM_FIELDS}
        row["events"] = json.dumps(item.get("events") or [], separators=(",", ":"))
        row["resolution"] = json.dumps(item["resolution"], separators=(",", ":")) if item.get("resolution") else ""
        writer.writerow(row)


def render_table(report: Report, out: TextIO) -> None:
    console = Console(file=out, width=WIDTH, highlight=False, no_color=not _is_terminal(out), soft_wrap=False)
    start, end = (moment.isoformat(timespec="seconds") for moment in (report.period.start, report.period.end))
    console.print(f"Reconciliation {report.summary.get('run', '')} ({report.source})")
    console.print(f"Period {start} .. {end}")
    currencies = report.summary.get("currencies", {})
    if currencies:
        console.print(_summary_table(currencies, stripe=report.source == STRIPE))
    matched = report.summary.get("matched") or {}
    if matched:
        console.print("Agreed: " + ", ".join(f"{count:,} {what}" for what, count in sorted(matched.items())))
    balance = {c: t for c, t in (report.summary.get("journal") or {}).items() if t}
    if balance:
        console.print(f"[bold]The journal does not balance:[/bold] {balance}")
    open_items = [item for item in report.items if item["status"] == OPEN]
    settled = len(report.items) - len(open_items)
    console.print(f"\n{len(open_items)} open item(s), {settled} settled.")
    for item in report.items:
        console.print(_item_text(item))


def _summary_table(currencies: dict[str, Any], *, stripe: bool) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False)
    table.add_column("currency")
    table.add_column("side")
    for heading in ("gross", "refunds", "disputes", "fees", "net", "payouts"):
        table.add_column(heading, justify="right")
    for currency, entry in currencies.items():
        sides = [("ledger", entry["ledger"])] + ([("stripe", entry["stripe"])] if stripe and entry["stripe"] else [])
        for name, side in sides:
            table.add_row(
                currency if name == "ledger" else "",
                name,
                *(_amount(side[h], currency) for h in ("gross", "refunds", "disputes", "fees", "net", "payouts")),
            )
        if stripe and entry.get("difference") is not None:
            table.add_row("", "difference", "", "", "", "", _amount(entry["difference"], currency), "")
    return table


def _item_text(item: dict[str, Any]) -> Text:
    """An item as a block under its class, status and id. Amounts on one line, ids on the next
    (an id split across two lines cannot be copied), the explanation wrapped, indented, in 100
    columns."""
    currency = item.get("currency")
    text = Text()
    text.append(f"\n{item['class']}", style="bold")
    text.append(f"  [{item['status']}]  {item['id']}\n")
    lines = []
    if item.get("amount_ledger") is not None or item.get("amount_stripe") is not None:
        ours, theirs = _amount(item.get("amount_ledger"), currency), _amount(item.get("amount_stripe"), currency)
        lines.append(f"ledger {ours}, stripe {theirs} {(currency or '').upper()}")
    ids = [f"{key.removesuffix('_id')} {item[key]}" for key in ("stripe_id", "invoice_id") if item.get(key)]
    if ids:
        lines.append("  ".join(ids))
    lines.append(item["explanation"])
    resolution = item.get("resolution")
    if resolution:
        lines.append(f"{resolution['action']} by {resolution['by']} at {resolution['at']}: {resolution['note']}")
    wrapped = (
        textwrap.fill(line, WIDTH, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False)
        for line in lines
    )
    text.append("\n".join(wrapped))
    return text


def _amount(amount: int | None, currency: str | None) -> str:
    if amount is None or currency is None:
        return "-"
    return Money(amount, currency).format().rsplit(" ", 1)[0]


def _is_terminal(out: TextIO) -> bool:
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


def history_table(runs: Sequence[dict[str, Any]], out: TextIO) -> None:
    """One run a line, its full id first (what `reconcile show` takes), in 100 columns."""
    console = Console(file=out, width=WIDTH, highlight=False, no_color=not _is_terminal(out))
    table = Table("run", "started (UTC)", "source", "period", "status", "items", box=None, pad_edge=False)
    table.columns[0].no_wrap = True
    for run in runs:
        started = str(run["started_at"])
        period = run["period"]
        start, end = str(period["from"])[:10], str(period["to"])[:10]
        table.add_row(
            run["id"],
            started[:16].replace("T", " "),
            run["source"],
            f"{start}..{end[5:] if end[:4] == start[:4] else end}",
            run["status"],
            str(run["items"]),
        )
    console.print(table)


def output_to(path: str | None) -> Any:
    if path is None or path == "-":
        return nullcontext(sys.stdout)
    return open(path, "w", encoding="utf-8", newline="")


def as_uuid(text: str, what: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise InvalidInputError(f"{text!r} is not a {what} id (a UUID)") from None


def positive(text: str) -> int:
    """A whole number of at least 1, for argparse (which prints the message and exits 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


# ------------------------------------------------------------------------------ the commands


def add_commands(commands: Any, moment: Any) -> None:
    """Register `ledger reconcile ...` on the CLI's subparsers (`moment` parses ISO 8601)."""
    reconcile = commands.add_parser(
        "reconcile",
        help="compare the ledger with Stripe (or check the ledger alone) for a period",
        description=__doc__.split("\n\n")[2] if __doc__ else None,
    )
    reconcile.add_argument("--from", dest="start", type=moment, default=None, help="ISO 8601 (default: 30 days ago)")
    reconcile.add_argument("--to", dest="end", type=moment, default=None, help="ISO 8601, exclusive (default: now)")
    reconcile.add_argument("--source", choices=(STRIPE, LEDGER), default=None, help="default: stripe if STRIPE_API_KEY")
    reconcile.add_argument("--format", choices=FORMATS, default="table")
    reconcile.add_argument("--output", default=None, help="write the report here instead of stdout")
    reconcile.add_argument("--quiet", action="store_true", help="no progress display")
    reconcile.add_argument("--by", default=None, help="who runs it (default: the OS user)")
    reconcile.add_argument(
        "--stuck-after", type=positive, default=60, help="minutes after which an unmatched or waiting webhook is stuck"
    )
    reconcile.set_defaults(run=run_reconcile)
    actions = reconcile.add_subparsers(metavar="ACTION", required=False)

    resolve = actions.add_parser("resolve", help="settle an item: apply the Stripe fact, explain it, or refund")
    resolve.add_argument("item_id")
    resolve.add_argument("--action", required=True, choices=("apply", "explain", "refund_duplicate"))
    resolve.add_argument("--note", required=True)
    resolve.add_argument("--by", default=None, help="who settles it (default: the OS user)")
    resolve.set_defaults(run=run_resolve)

    history = actions.add_parser("history", help="the runs recorded, newest first")
    history.add_argument("--limit", type=positive, default=20, help=f"how many runs (at most {MAX_PAGE})")
    history.set_defaults(run=run_history)

    show = actions.add_parser("show", help="a past run's report, exactly as it was")
    show.add_argument("run_id")
    show.add_argument("--format", choices=FORMATS, default="table")
    show.add_argument("--output", default=None)
    show.set_defaults(run=run_show)


@contextmanager
def _ledger(payments: Any = None) -> Iterator[tuple[Any, Any, Settings]]:
    from adapters.bootstrap import bootstrap
    from adapters.read_models import projection_runner, read_model_engine

    settings = Settings.from_environment()
    app = bootstrap(settings, payments=lambda: payments)
    engine = read_model_engine(settings.database_url, settings.database_timeout)
    try:
        yield app, projection_runner(app, engine), settings
    finally:
        engine.dispose()
        app.close()
        if payments is not None:
            payments.close()


def run_reconcile(args: Any) -> int:
    from projections.reconciliation.engine import reconcile

    with _ledger() as (app, runner, settings):
        records = records_for(settings, args.source)
        period = period_of(args.start, args.end, app.clock.now())
        try:
            with progress_bar(args.quiet) as progress:
                report = reconcile(
                    app,
                    runner,
                    period=period,
                    records=records,
                    requested_by=requester(args.by),
                    stuck_after=timedelta(minutes=args.stuck_after),
                    progress=progress,
                )
        finally:
            close = getattr(records, "close", None)
            if close is not None:
                close()
    with output_to(args.output) as out:
        render(report, args.format, out)
    return 1 if any(item["status"] == OPEN for item in report.items) else 0


def run_resolve(args: Any) -> int:
    item_id = as_uuid(args.item_id, "reconciliation item")
    # Only a refund asks Stripe anything: apply and explain work without a key.
    payments = _provider(Settings.from_environment()) if args.action == "refund_duplicate" else None
    with _ledger(payments) as (app, _, _settings):
        item = app.reconciliation.resolve(item_id, action=args.action, note=args.note, by=requester(args.by)).result
    print(f"{item['id']} {item['class']}: {item['status']} ({args.action})")
    return 0


def run_history(args: Any) -> int:
    from projections.reconciliation.runs import list_runs

    with _ledger() as (_, runner, _settings):
        runner.catch_up()
        page = list_runs(runner.engine, limit=min(args.limit, MAX_PAGE))
    history_table(page.rows, sys.stdout)
    return 0


def run_show(args: Any) -> int:
    from projections.reconciliation.engine import past_report

    run_id = as_uuid(args.run_id, "reconciliation run")
    with _ledger() as (app, _, _settings):
        report, status = past_report(app, run_id)
    if status != "completed":
        print(f"ledger: run {run_id} is {status}: {report.summary.get('failure', '')}", file=sys.stderr)
    with output_to(args.output) as out:
        render(report, args.format, out)
    return 0


def _provider(settings: Settings) -> Any:
    if not settings.stripe_api_key:
        raise ProviderConfigurationError("refund_duplicate asks Stripe for the refund: set STRIPE_API_KEY")
    from adapters.stripe import StripePaymentProvider

    return StripePaymentProvider(settings.stripe_api_key, api_base=settings.stripe_api_base)

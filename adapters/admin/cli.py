"""`ledger admin`: the dashboard's users from the command line.

    ledger admin create-user EMAIL --role admin|auditor [--password-stdin] [--by NAME]
    ledger admin list-users [--format table|json]
    ledger admin disable-user EMAIL [--by NAME]      (also ends every session of theirs)
    ledger admin enable-user EMAIL [--by NAME]
    ledger admin set-password EMAIL [--password-stdin] [--by NAME]  (ends their sessions too)

Without --password-stdin the password is asked twice at the terminal, never echoed; with it, the
first line of stdin is the password (for scripts: `printf '%s\\n' "$PASSWORD" | ledger admin ...`).
A refused command exits 2 (a taken email, a short password, an unknown role) or 3 (no such user).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table

from adapters.admin.sessions import SessionStore
from adapters.bootstrap import bootstrap
from adapters.clock import SystemClock
from adapters.read_models import projection_runner, read_model_engine
from adapters.settings import Settings
from commands.application import BillingApplication
from ledger.admin.users import ROLES, normalize_email, user_id_for
from ledger.errors import InvalidInputError
from projections.admin.users import list_users
from projections.runner import ProjectionRunner

BY_CLI = "cli"


def add_commands(commands: Any) -> None:
    """Register `ledger admin ...` on the CLI's subparsers."""
    admin = commands.add_parser(
        "admin", help="the dashboard's users", description=__doc__.split("\n\n")[1] if __doc__ else None
    ).add_subparsers(required=True, metavar="ACTION")

    create = admin.add_parser("create-user", help="a new dashboard user (asks for the password)")
    create.add_argument("email")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    create.add_argument("--by", default=BY_CLI, help=f"who creates them (default: {BY_CLI})")
    create.set_defaults(run=run_create_user)

    listing = admin.add_parser("list-users", help="every dashboard user, by email")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(run=run_list_users)

    disable = admin.add_parser("disable-user", help="stop a user logging in, and end their sessions")
    disable.add_argument("email")
    disable.add_argument("--by", default=BY_CLI)
    disable.set_defaults(run=run_disable_user)

    enable = admin.add_parser("enable-user", help="let a disabled user log in again")
    enable.add_argument("email")
    enable.add_argument("--by", default=BY_CLI)
    enable.set_defaults(run=run_enable_user)

    password = admin.add_parser("set-password", help="a new password for a user (ends their sessions)")
    password.add_argument("email")
    password.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    password.add_argument("--by", default=BY_CLI)
    password.set_defaults(run=run_set_password)


@contextmanager
def _ledger() -> Iterator[tuple[BillingApplication, ProjectionRunner, SessionStore]]:
    settings = Settings.from_environment()
    app = bootstrap(settings)
    engine = read_model_engine(settings.database_url, settings.database_timeout)
    try:
        runner = projection_runner(app, engine)  # brings the tables, admin_sessions too, to the newest migration
        yield app, runner, SessionStore(engine, clock=SystemClock())
    finally:
        engine.dispose()
        app.close()


def read_password(from_stdin: bool) -> str:
    """The new password: stdin's first line, or asked twice at the terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise InvalidInputError("the two passwords differ", field="password")
    return first


def run_create_user(args: argparse.Namespace) -> int:
    email = normalize_email(args.email)  # a malformed address is refused before the password is asked
    password = read_password(args.password_stdin)
    with _ledger() as (app, _, _):
        user_id = app.admin.create_user(email, role=args.role, password=password, created_by=args.by).result
    print(f"created {email} ({args.role}), user id {user_id}")
    return 0


def run_list_users(args: argparse.Namespace) -> int:
    with _ledger() as (_, runner, _):
        runner.catch_up()
        rows = list_users(runner.engine)
    if args.format == "json":
        shown = [
            {**row, "created_at": row["created_at"].isoformat(), "updated_at": row["updated_at"].isoformat()}
            for row in rows
        ]
        print(json.dumps(shown, indent=2))
        return 0
    table = Table("email", "role", "status", "created", "by", box=None, pad_edge=False)
    for row in rows:
        table.add_row(
            row["email"], row["role"], row["status"], row["created_at"].strftime("%Y-%m-%d %H:%M"), row["created_by"]
        )
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=1_000, no_color=True)
    console.print(table)
    if not rows:
        print("no dashboard users yet: ledger admin create-user EMAIL --role admin")
    return 0


def run_disable_user(args: argparse.Namespace) -> int:
    email = normalize_email(args.email)
    with _ledger() as (app, _, sessions):
        changed = app.admin.disable_user(email, by=args.by).result
        # Also when they were disabled already: a session left from a race with a login ends too.
        ended = sessions.revoke_user(user_id_for(email))
    state = "disabled" if changed else "was already disabled"
    print(f"{email} {state}; {ended} session(s) ended")
    return 0


def run_enable_user(args: argparse.Namespace) -> int:
    email = normalize_email(args.email)
    with _ledger() as (app, _, _):
        changed = app.admin.enable_user(email, by=args.by).result
    print(f"{email} {'enabled' if changed else 'was already active'}")
    return 0


def run_set_password(args: argparse.Namespace) -> int:
    email = normalize_email(args.email)
    password = read_password(args.password_stdin)
    with _ledger() as (app, _, sessions):
        app.admin.change_password(email, password=password, by=args.by)
        ended = sessions.revoke_user(user_id_for(email))
    print(f"new password set for {email}; {ended} session(s) ended")
    return 0

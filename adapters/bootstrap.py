"""The composition root: the one place that knows every concrete class.

Nothing is built at import time; callers ask for an application when they need one.
"""

from __future__ import annotations

from collections.abc import Callable

from adapters.admin.passwords import Argon2Hasher
from adapters.clock import SystemClock
from adapters.event_decoding import EventDecoder
from adapters.persistence import event_store_env
from adapters.settings import Settings
from adapters.stored_ids import stored_events
from commands.application import BillingApplication
from commands.ports import Clock, PasswordHasher, PaymentProvider


def bootstrap(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    payments: Callable[[], PaymentProvider | None] | None = None,
    hasher: PasswordHasher | None = None,
    make_tables: bool = True,
) -> BillingApplication:
    """The application on the configured store. `payments` gives the payment provider to the
    commands that call it themselves (reconciliation's refund_duplicate); the caller builds it
    (adapters/web_server.py and the CLI own its lifetime), only when asked. `hasher` makes the
    dashboard users' password hashes: argon2id with argon2-cffi's defaults unless given.
    `make_tables=False` leaves the event store's tables as they are (another process made them):
    PostgreSQL refuses the same CREATE TABLE IF NOT EXISTS from processes at once ("tuple
    concurrently updated")."""
    settings = settings or Settings.from_environment()
    env = event_store_env(settings.database_url, settings.database_timeout)
    if not make_tables:
        env["CREATE_TABLE"] = "no"
    app = BillingApplication(
        clock=clock or SystemClock(),
        env=env,
        payments=payments,
        hasher=hasher or Argon2Hasher(),
        secret_key=settings.secret_key,
    )
    app.runner.stored_events = stored_events(app.recorder)
    app.runner.decode = EventDecoder(app.mapper).to_domain_event
    return app

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
) -> BillingApplication:
    """The application on the configured store. `payments` gives the payment provider to the
    commands that call it themselves (reconciliation's refund_duplicate); the caller builds it
    (adapters/web_server.py and the CLI own its lifetime), only when asked. `hasher` makes the
    dashboard users' password hashes: argon2id with argon2-cffi's defaults unless given."""
    settings = settings or Settings.from_environment()
    app = BillingApplication(
        clock=clock or SystemClock(),
        env=event_store_env(settings.database_url, settings.database_timeout),
        payments=payments,
        hasher=hasher or Argon2Hasher(),
        secret_key=settings.secret_key,
    )
    app.runner.stored_events = stored_events(app.recorder)
    app.runner.decode = EventDecoder(app.mapper).to_domain_event
    return app

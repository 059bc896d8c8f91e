"""The composition root: the one place that knows every concrete class.

Nothing is built at import time; callers ask for an application when they need one.
"""

from __future__ import annotations

from adapters.clock import SystemClock
from adapters.persistence import event_store_env
from adapters.settings import Settings
from commands.application import BillingApplication
from commands.ports import Clock


def bootstrap(settings: Settings | None = None, *, clock: Clock | None = None) -> BillingApplication:
    settings = settings or Settings.from_environment()
    return BillingApplication(
        clock=clock or SystemClock(), env=event_store_env(settings.database_url, settings.database_timeout)
    )

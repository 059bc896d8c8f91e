"""The mail triggers wired to the read models' database, and the mail loop of a serving process.

`mail_triggers` builds the trigger follower (commands/mail/triggers.py) with its position kept
as the `mail-triggers` row of the read models' tracking table (projections/positions.py).

`MailLoop` is what `ledger mail run --follow` runs in the foreground and `ledger serve` on a
daemon thread (`start`/`stop`): a trigger pass (queue what the log asks for), then a delivery
pass (the mail worker sends what is due), then a wait. An error in either (the database or the
mail server down, a bug) is logged and the loop goes on after a pause: mail never takes the
web server down, and nothing is lost, since a pass that failed is done again by the next one.
Several processes may run it on one database: the triggers queue each email once (its id is
derived from what asked for it), and the worker claims each attempt with the email's version
before talking to the server, so one of them sends it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from commands.application import BillingApplication
from commands.mail.triggers import MailTriggers
from projections.positions import TrackedPosition

log = logging.getLogger("ledger.mail")

POSITION = "mail-triggers"
INTERVAL_SECONDS = 2.0
PAUSE_AFTER_ERROR_SECONDS = 10.0


def mail_triggers(app: BillingApplication, engine: Engine, *, on_issue: bool) -> MailTriggers:
    """The trigger follower of `app`'s log, its position kept in `engine`'s database."""
    return MailTriggers(app, TrackedPosition(engine, POSITION), on_issue=on_issue)


class MailLoop:
    """Trigger and delivery passes until stopped: in the caller's thread (`follow`) or on a
    daemon thread (`start`, `stop`)."""

    def __init__(
        self,
        queue: Callable[[], object],
        deliver: Callable[[], object],
        *,
        interval: float = INTERVAL_SECONDS,
        pause_after_error: float = PAUSE_AFTER_ERROR_SECONDS,
    ) -> None:
        self.queue = queue  # a trigger pass: MailTriggers.run_once
        self.deliver = deliver  # a delivery pass: MailWorker.run_once
        self.interval = interval
        self.pause_after_error = pause_after_error
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0  # passes completed
        self.errors = 0  # passes that failed (logged)

    def run_once(self) -> None:
        """One trigger pass, then one delivery pass."""
        self.queue()
        self.deliver()

    def follow(self) -> None:
        """Pass after pass, `interval` seconds apart, until `stop()` (or `stopping` is set)."""
        while not self.stopping.is_set():
            try:
                self.run_once()
            except Exception:  # logged, then started again: mail never stops the server
                self.errors += 1
                log.exception("mail pass failed; starting again in %.0f s", self.pause_after_error)
                self.stopping.wait(self.pause_after_error)
                continue
            self.passes += 1
            self.stopping.wait(self.interval)

    def start(self) -> None:
        if self._thread is not None:
            return
        self.stopping.clear()
        self._thread = threading.Thread(target=self.follow, name="ledger-mail", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

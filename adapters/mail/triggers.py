"""The mail triggers wired to the read models' database, and the mail loop of a serving process.

`mail_triggers` builds the trigger follower (commands/mail/triggers.py) with its position kept
as the `mail-triggers` row of the read models' tracking table (projections/positions.py).

`InProcessMail` runs, on a daemon thread of `ledger serve`, what `ledger mail run --follow`
runs as a process of its own: a trigger pass (queue what the log asks for), then a delivery
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


class InProcessMail:
    """Trigger and delivery passes on a daemon thread, until `stop()`."""

    def __init__(
        self,
        triggers: MailTriggers,
        deliver: Callable[[], object],
        *,
        interval: float = INTERVAL_SECONDS,
        pause_after_error: float = PAUSE_AFTER_ERROR_SECONDS,
    ) -> None:
        self.triggers = triggers
        self.deliver = deliver
        self.interval = interval
        self.pause_after_error = pause_after_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0  # completed passes (for the log and the tests)
        self.errors = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ledger-mail", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def run_once(self) -> None:
        """One trigger pass, then one delivery pass."""
        self.triggers.run_once()
        self.deliver()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # logged, then started again: mail never stops the server
                self.errors += 1
                log.exception("mail pass failed; starting again in %.0f s", self.pause_after_error)
                self._stop.wait(self.pause_after_error)
                continue
            self.passes += 1
            self._stop.wait(self.interval)

"""The mail loop of a serving process: a failing pass is logged and the loop goes on."""

from __future__ import annotations

import logging
import threading

import pytest

from adapters.mail.triggers import MailLoop


class Passes:
    """A trigger or delivery pass that fails the first `failures` times, then counts."""

    def __init__(self, failures: int = 0, after: int = 0, done: threading.Event | None = None) -> None:
        self.failures = failures
        self.calls = 0
        self.after = after
        self.done = done or threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionRefusedError("mail server down")
        if self.calls >= self.after:
            self.done.set()


def test_a_pass_queues_then_delivers() -> None:
    order: list[str] = []
    loop = MailLoop(lambda: order.append("queue"), lambda: order.append("deliver"))
    loop.run_once()
    assert order == ["queue", "deliver"]


def test_a_failing_pass_is_logged_and_the_loop_starts_again(caplog: pytest.LogCaptureFixture) -> None:
    deliver = Passes(failures=2, after=4)
    loop = MailLoop(lambda: None, deliver, interval=0, pause_after_error=0)
    with caplog.at_level(logging.ERROR, logger="ledger.mail"):
        loop.start()
        assert deliver.done.wait(timeout=30)
        loop.stop()
    assert loop.errors == 2
    assert loop.passes >= 2
    assert [r.message for r in caplog.records][:2] == ["mail pass failed; starting again in 0 s"] * 2
    assert "mail server down" in (caplog.records[0].exc_text or "")


def test_follow_runs_in_the_callers_thread_until_stopped() -> None:
    loop = MailLoop(lambda: None, lambda: None, interval=0)
    queue = Passes(after=3, done=loop.stopping)  # the third pass stops the loop
    loop.queue = queue
    loop.follow()
    assert queue.calls == 3
    assert loop.passes == 3

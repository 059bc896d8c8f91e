"""Admin login attempts limited per account and per client address (the `limits` library, moving window).

Only failed attempts count: a user who types the password right is never locked out by their own
successful logins, and a guesser is stopped before the password hash is even computed. The
account key is the email as typed, trimmed and lowercased (not validated: a malformed email is
still an attempt), so case variations share one budget.

It lives beside web/services.py, not in web/admin/: `Services` holds a limiter, and importing
anything under web.admin runs web/admin/__init__.py, whose middleware imports `Services` back.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

WINDOW_MINUTES = 15


@dataclass(frozen=True)
class Refusal:
    """Too many failed attempts: wait `retry_after` seconds."""

    retry_after: int


class LoginLimiter:
    def __init__(self, *, per_account: int = 5, per_address: int = 20, window_minutes: int = WINDOW_MINUTES) -> None:
        # Memory storage: each worker process counts on its own, so with N workers a guesser gets
        # at most N times the budget; still a few guesses an hour against a 12-character minimum.
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._account: RateLimitItem = RateLimitItemPerMinute(per_account, window_minutes)
        self._address: RateLimitItem = RateLimitItemPerMinute(per_address, window_minutes)

    def check(self, email: str, address: str) -> Refusal | None:
        """None when another attempt may be made now; else how long to wait."""
        waits = [
            self._wait(item, key)
            for item, key in ((self._account, _account_key(email)), (self._address, _address_key(address)))
            if not self._limiter.test(item, key)
        ]
        return Refusal(max(waits)) if waits else None

    def failed(self, email: str, address: str) -> None:
        self._limiter.hit(self._account, _account_key(email))
        self._limiter.hit(self._address, _address_key(address))

    def _wait(self, item: RateLimitItem, key: str) -> int:
        reset = self._limiter.get_window_stats(item, key).reset_time
        return max(1, math.ceil(reset - time.time()))


def _account_key(email: str) -> str:
    return "account:" + email.strip().lower()


def _address_key(address: str) -> str:
    return "address:" + address

"""Ports: what the application needs from the outside world, as Protocols.

Adapters implement them (adapters/), tests pass fakes that implement them too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """Tells the time. The domain never reads a clock: every command is stamped by this."""

    def now(self) -> datetime:
        """The current moment, timezone-aware."""
        ...

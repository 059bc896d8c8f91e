"""A one-line progress bar on stderr, redrawn at most ten times a second."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, total: int, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.started = time.perf_counter()
        self._drawn_at = 0.0
        self._shown = -1

    def show(self, done: int) -> None:
        now = time.perf_counter()
        if done == self._shown or (now - self._drawn_at < 0.1 and done < self.total):
            return
        self._shown = done
        self._drawn_at = now
        share = min(done / self.total, 1.0)
        filled = int(share * self.width)
        rate = done / (now - self.started) if now > self.started else 0.0
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {share:6.1%} {done:,}/{self.total:,} ({rate:,.0f}/s)")
        self.stream.flush()

    def finish(self) -> None:
        self.show(self.total)
        self.stream.write("\n")
        self.stream.flush()

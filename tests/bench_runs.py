"""Running a bench body (bench/) inside a test's own process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class InlineGate:
    """The bench's Gate for one body run in this process: nothing to wait for."""

    @contextmanager
    def setup(self) -> Iterator[None]:
        yield

    def ready(self) -> None:
        pass

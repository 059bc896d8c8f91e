"""The CLI's progress bar (rich) on stderr.

On a terminal it is rich's bar, with rate and time left. Anywhere else (a log file, a pipe, CI)
it stays quiet: one line when the work starts and one when it ends, no redraws.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn


class ProgressBar:
    def __init__(self, total: int, label: str, console: Console | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.console = console or Console(stderr=True)
        self._started = False
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.console.is_terminal,
        )
        self._task = self._progress.add_task(label, total=self.total)

    def show(self, done: int) -> None:
        if not self._started:
            self._started = True
            if self.console.is_terminal:
                self._progress.start()
            else:
                self.console.print(f"{self.label}: {self.total:,} to replay", highlight=False)
        self._progress.update(self._task, completed=min(done, self.total))

    def finish(self) -> None:
        self.show(self.total)
        if self.console.is_terminal:
            self._progress.stop()
        else:
            self.console.print(f"{self.label}: done", highlight=False)

"""The CLI's progress bar: rich's bar on a terminal, two plain lines anywhere else."""

from __future__ import annotations

from io import StringIO

from rich.console import Console

from adapters.progress import ProgressBar


def test_off_a_terminal_the_bar_is_quiet_a_line_to_start_and_one_to_finish() -> None:
    out = StringIO()
    bar = ProgressBar(total=5_000, label="rebuild", console=Console(file=out, force_terminal=False))
    for done in range(0, 5_001, 100):
        bar.show(done)
    bar.finish()
    assert out.getvalue().splitlines() == ["rebuild: 5,000 to replay", "rebuild: done"]


def test_on_a_terminal_the_bar_shows_how_far_it_got() -> None:
    out = StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    bar = ProgressBar(total=4, label="rebuild", console=console)
    bar.show(2)
    bar.finish()
    assert "rebuild" in out.getvalue()
    assert "4/4" in out.getvalue()

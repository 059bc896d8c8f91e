"""The bench counts a server's CPU with its children's (bench/web.py `_tree_cpu`): uvicorn with
2 workers does its work in child processes, which the supervisor's own figure leaves out."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.web import _process_cpu, _tree_cpu

BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\ntime.sleep(60)"


def test_a_child_process_cpu_is_counted_with_its_parent() -> None:
    child = subprocess.Popen([sys.executable, "-c", BURN])
    try:
        deadline = time.monotonic() + 30
        while _process_cpu(child.pid) < 0.25 and time.monotonic() < deadline:
            time.sleep(0.05)
        own = _process_cpu(os.getpid())
        assert _process_cpu(child.pid) >= 0.25
        assert _tree_cpu(os.getpid()) >= own + 0.25
    finally:
        child.kill()
        child.wait()

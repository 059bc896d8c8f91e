"""A served worker moves what it built at start out of the garbage collector's view
(adapters/web_server.py `asgi_app`), so that a full collection walks only what serving made.

uvicorn calls `asgi_app` in each worker process; the test calls it the same way in a process of
its own (freezing is process-wide) and reports what the collector still tracks, and whether a
reference cycle that was garbage before the call was collected rather than frozen.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc, json, weakref
from adapters.web_server import asgi_app

class Cycle:
    pass

gc.disable()  # no collection of its own before the factory's: the cycle below is garbage until then
garbage = Cycle()
garbage.itself = garbage
collected = weakref.ref(garbage)
del garbage
before = gc.get_freeze_count()
app = asgi_app()
tracked = {id(o) for o in gc.get_objects()}
print(json.dumps({
    "before": before,
    "frozen": gc.get_freeze_count(),
    "tracked": len(tracked),
    "app_tracked": id(app) in tracked,
    "router_tracked": id(app.router) in tracked,
    "garbage_kept": collected() is not None,
}))
"""


def test_the_worker_factory_freezes_what_it_built_so_full_collections_skip_it(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        "LEDGER_API_TOKEN": "test-token",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"] == 0
    assert seen["frozen"] > 50_000  # the modules and the application, not a handful
    assert seen["frozen"] > seen["tracked"]  # most of the worker is out of the collector's view
    assert not seen["app_tracked"]
    assert not seen["router_tracked"]
    assert not seen["garbage_kept"]  # collected before the freeze, not frozen for good

"""When a process may fork workers that open their own connections to a database: the one set of
rules for `ledger audit verify`'s checking processes (projections/audit_chain.py) and a
rebuild's replaying processes (adapters/parallel_rebuild.py)."""

from __future__ import annotations

import multiprocessing
import threading

from sqlalchemy.engine import URL


def fork_refusal(url: URL, *, threads: bool = True) -> str | None:
    """Why this process must not fork workers on the database at `url`, or None. `threads`: also
    refuse while this process runs another thread (a fork copies the calling thread only: a lock
    another thread held then stays held in the child)."""
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and (database in ("", ":memory:") or database.startswith("file:")):
        return "an SQLite database in memory is not shared with another process"
    if "fork" not in multiprocessing.get_all_start_methods():
        return "no fork on this platform"
    if multiprocessing.current_process().daemon:
        return "a daemonic process may not have children"
    if threads and threading.active_count() > 1:
        return "this process runs other threads"
    return None

"""The header line: what the figures were measured on."""

from __future__ import annotations

import os
import platform
import sqlite3
from importlib.metadata import version
from pathlib import Path

import psycopg


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for row in cpuinfo.read_text().splitlines():
            if row.startswith("model name"):
                return row.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def postgres_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "?"


def header(pg_version: str | None) -> str:
    cores = os.cpu_count() or 1
    pg = (
        f"PostgreSQL {pg_version} (throwaway cluster: fsync=off, synchronous_commit=off)"
        if pg_version
        else "no PostgreSQL"
    )
    return (
        f"machine: {cores} cores ({cpu_model()}), {platform.system()} {platform.release()} | "
        f"Python {platform.python_version()} | SQLite {sqlite3.sqlite_version} (WAL, synchronous=FULL) | "
        f"{pg} | eventsourcing {version('eventsourcing')}"
    )

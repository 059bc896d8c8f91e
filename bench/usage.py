"""Usage records/s through `POST /api/usage` in batches of 500, over real HTTP, beside the raw
INSERT rate of the same rows measured in the same run.

Server: the real API (`adapters.web_server:asgi_app`, the factory `ledger serve` uses) in a
subprocess served as `ledger serve` serves (bench/serve.py), 1 worker, on a fresh database
(bench.web.served). Setup over HTTP: one meter, one graduated price with a decimal tier, one
usage customer. Load: CONNECTIONS threads, each a keep-alive connection sending pre-encoded
batches of BATCH records (every identifier new, so every record is stored: one row per record,
keyed by its uuid5), one request in flight each; a batch counts when it is answered 200 with all
of its records accepted.

Baseline ("raw INSERT"): the same number of rows, of the size our record events are stored at,
keyed by random UUIDs like theirs, inserted BATCH per transaction straight through the driver
(sqlite3 in WAL with the driver's default synchronous=FULL, as the library leaves it; psycopg
with one executemany per transaction) into a table shaped like the event store's. Random keys
are what makes it slow as the table grows (each row lands on another index page), so the
ratio is to the same row count.
Alone: `python -m bench --only usage [--backend sqlite] [--quick]`.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.report import fmt, table
from bench.web import TOKEN, served

BATCH = 500
CONNECTIONS = 2  # one batch committing while the next one is parsed: SQLite has one writer
TARGETS = {"sqlite": 20_000.0}  # records/s
STATE_BYTES = 330  # a usage-record.recorded event as stored (JSON), measured on SQLite


@dataclass(frozen=True)
class UsagePlan:
    batches: int  # per connection


FULL = UsagePlan(batches=100)
QUICK = UsagePlan(batches=20)


@dataclass(frozen=True)
class UsageRow:
    backend: str
    records: int
    seconds: float
    errors: int
    raw_rows_per_second: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def _say(backend: str, what: str) -> None:
    print(f"  [{backend}] usage: {what}", file=sys.stderr, flush=True)


def _request(conn: http.client.HTTPConnection, path: str, body: bytes, key: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def _set_up(port: int, starts_at: datetime) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    tiers = [{"up_to": 100_000, "unit_amount": 0}, {"up_to": None, "unit_amount": "0.25"}]
    steps = [
        ("/api/meters", {"key": "api_calls", "name": "API calls", "aggregation": "sum"}),
        (
            "/api/prices",
            {"key": "calls", "meter": "api_calls", "currency": "usd", "model": "graduated", "tiers": tiers},
        ),
        (
            "/api/usage-customers",
            {
                "key": "acme",
                "customer": {"email": "ap@acme.example", "name": "Acme"},
                "currency": "usd",
                "timezone": "Europe/Paris",
                "prices": ["calls"],
                "starts_at": starts_at.isoformat(),
            },
        ),
    ]
    try:
        for path, body in steps:
            status, answer = _request(conn, path, json.dumps(body).encode())
            if status != 201:
                raise RuntimeError(f"setting up usage: {path} answered {status} {answer[:300]!r}")
    finally:
        conn.close()


def _bodies(connection: int, count: int, timestamp: str) -> list[bytes]:
    return [
        json.dumps(
            {
                "records": [
                    {
                        "customer": "acme",
                        "meter": "api_calls",
                        "quantity": 3,
                        "timestamp": timestamp,
                        "identifier": f"c{connection}-b{n}-r{i}",
                    }
                    for i in range(BATCH)
                ]
            },
            separators=(",", ":"),
        ).encode()
        for n in range(count)
    ]


def _load(port: int, bodies: list[list[bytes]]) -> tuple[int, int, float]:
    """(records accepted, failed batches, seconds) with one thread per connection."""
    accepted = [0] * len(bodies)
    failed = [0] * len(bodies)
    start = threading.Barrier(len(bodies) + 1)

    def send(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            start.wait()
            for body in bodies[index]:
                status, answer = _request(conn, "/api/usage", body)
                count = json.loads(answer).get("accepted", 0) if status == 200 else 0
                if count == BATCH:
                    accepted[index] += count
                else:
                    failed[index] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(bodies))]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return sum(accepted), sum(failed), time.perf_counter() - began


def _raw_rate(backend: str, url: str, rows: int) -> float:
    """Rows/s of BATCH-row INSERT transactions with random UUID keys, straight through the driver."""
    state = b"x" * STATE_BYTES
    batches = [
        [(str(uuid.uuid4()), 1, "usage-record.recorded", state) for _ in range(BATCH)] for _ in range(rows // BATCH)
    ]
    create = (
        "CREATE TABLE bench_usage_raw (originator_id {id} NOT NULL, originator_version INTEGER NOT NULL, "
        "topic TEXT, state {blob}, PRIMARY KEY (originator_id, originator_version))"
    )
    if backend == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(create.format(id="TEXT", blob="BLOB"))
        began = time.perf_counter()
        for rows_of_batch in batches:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO bench_usage_raw VALUES (?, ?, ?, ?)", rows_of_batch)
            conn.execute("COMMIT")
        seconds = time.perf_counter() - began
        conn.close()
        return len(batches) * BATCH / seconds
    import psycopg

    with psycopg.connect(url) as pg:
        pg.execute(create.format(id="UUID", blob="BYTEA"))
        pg.commit()
        began = time.perf_counter()
        for rows_of_batch in batches:
            with pg.cursor() as cursor:
                cursor.executemany("INSERT INTO bench_usage_raw VALUES (%s, %s, %s, %s)", rows_of_batch)
            pg.commit()
        seconds = time.perf_counter() - began
    return len(batches) * BATCH / seconds


def run_usage(backend: str, url: str, plan: UsagePlan) -> UsageRow:
    now = datetime.now(UTC)
    timestamp = (now - timedelta(minutes=1)).isoformat()
    with tempfile.TemporaryDirectory(prefix="ledger-bench-usage-") as directory:
        log = Path(directory) / "server.log"
        env = {"LEDGER_DATABASE_URL": url, "LEDGER_API_TOKEN": TOKEN}
        with served("adapters.web_server:asgi_app", "/healthz", env, log) as server:
            _set_up(server.port, now - timedelta(days=1))
            bodies = [_bodies(n, plan.batches, timestamp) for n in range(CONNECTIONS)]
            _say(backend, f"{CONNECTIONS} x {plan.batches} batches of {BATCH}")
            records, errors, seconds = _load(server.port, bodies)
    raw_url = url if backend != "sqlite" else f"sqlite:///{Path(url.removeprefix('sqlite:///')).parent / 'raw.sqlite3'}"
    _say(backend, f"raw INSERT of {records:,} rows")
    raw = _raw_rate(backend, raw_url, max(records, BATCH))
    return UsageRow(backend, records, seconds, errors, raw)


def render(rows: list[UsageRow]) -> str:
    headers = ["backend", "records", "seconds", "records/s", "failed batches", "raw INSERT rows/s", "vs raw", "target"]
    lines = []
    for row in rows:
        target = TARGETS.get(row.backend)
        verdict = "-" if target is None else f"{'met' if row.rate >= target else 'MISSED'} (>= {target:,.0f})"
        ratio = row.rate / row.raw_rows_per_second if row.raw_rows_per_second else None
        lines.append(
            [
                row.backend,
                fmt(row.records),
                fmt(row.seconds, 2),
                fmt(row.rate),
                fmt(row.errors),
                fmt(row.raw_rows_per_second),
                "-" if ratio is None else f"{ratio:.0%}",
                verdict,
            ]
        )
    title = f"usage: POST /api/usage, batches of {BATCH} over HTTP, {CONNECTIONS} connections, 1 worker"
    return table(title, headers, lines)

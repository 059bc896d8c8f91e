"""What the page benchmarks share (bench/admin.py, bench/portal.py): the keep-alive client, the
timing of one page (wall time per request, and the CPU it cost the app and the database), and
the served app a list of pages is timed on."""

from __future__ import annotations

import html
import http.client
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode, urlsplit

from bench.report import fmt, table
from bench.web import _database_cpu, _delta, _process_cpu, served


class Timing(Protocol):
    """How many requests of each page: bench/admin.py's AdminPlan, bench/portal.py's PortalPlan."""

    @property
    def warmup(self) -> int: ...

    @property
    def requests(self) -> int: ...


class Client:
    """One keep-alive connection to the served app, with the admin session's cookie."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}

    def close(self) -> None:
        self.connection.close()

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes, float]:
        """(status, headers, body, seconds from send to the body's last byte)."""
        sent = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        began = time.perf_counter()
        self.connection.request(method, path, body=body, headers=sent)
        response = self.connection.getresponse()
        data = response.read()
        seconds = time.perf_counter() - began
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data, seconds

    def login(self, email: str, password: str) -> None:
        """Through the login form, as a browser: its hidden fields (if any) sent back."""
        status, _, page, _ = self.request("GET", "/admin/login")
        if status != 200:
            raise RuntimeError(f"GET /admin/login answered {status}")
        form = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.decode()))
        form.update(email=email, password=password, next="/admin/")
        body = urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(len(body))}
        status, _, answer, _ = self.request("POST", "/admin/login", body, headers)
        if status not in (302, 303):
            raise RuntimeError(f"POST /admin/login answered {status}: {answer[:300]!r}")
        status, _, _, _ = self.request("GET", "/admin/")
        if status != 200:
            raise RuntimeError(f"logged in, but /admin/ answered {status}")


_NEXT = re.compile(rb"<a\b[^>]*\bhref=\"([^\"]*[?&](?:amp;)?cursor=[^\"]*)\"[^>]*>", re.IGNORECASE)


def next_link(page: bytes) -> str | None:
    """The list page's link to the next page: the one marked rel="next" (else the last with a cursor)."""
    links = list(_NEXT.finditer(page))
    if not links:
        return None
    marked = [m for m in links if b'rel="next"' in m.group(0) or b"next" in m.group(0).lower()]
    chosen = (marked or links)[-1]
    href = html.unescape(chosen.group(1).decode())
    return href if href.startswith("/") else "/admin/invoices" + href[href.index("?") :]


def rows_on(page: bytes) -> int:
    return page.count(b'data-testid="invoice-row"')


@dataclass
class PageRow:
    page: str
    path: str
    samples_ms: list[float]
    bytes: int
    rows: int | None = None  # invoice rows on the page, for the lists
    server_cpu_ms: float = 0.0  # per timed request: the app's process (all its threads)
    database_cpu_ms: float | None = None  # per timed request: the PostgreSQL cluster's processes
    load: tuple[float, float] = (0.0, 0.0)  # the machine's 1-minute load average before and after

    def pct(self, q: float) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def time_page(client: Client, name: str, path: str, plan: Timing, server_pid: int, database_port: int) -> PageRow:
    for _ in range(plan.warmup):
        status, _, _, _ = client.request("GET", path)
        if status != 200:
            raise RuntimeError(f"{name}: GET {path} answered {status}")
    samples: list[float] = []
    body = b""
    # CPU time per request, beside the wall time: the machine is shared, so a slow p99 may be
    # another process's doing; the CPU the page cost its server (and database) is not.
    load_before = os.getloadavg()[0]
    server_before, database_before = _process_cpu(server_pid), _database_cpu(database_port)
    for _ in range(plan.requests):
        status, _, body, seconds = client.request("GET", path)
        if status != 200:
            raise RuntimeError(f"{name}: GET {path} answered {status}")
        samples.append(seconds * 1000)
    server_ms = (_process_cpu(server_pid) - server_before) * 1000 / plan.requests
    database_ms = _delta(database_before, _database_cpu(database_port)) * 1000 / plan.requests
    rows = rows_on(body) if path.startswith("/admin/invoices?") or path == "/admin/invoices" else None
    return PageRow(
        name,
        path,
        samples,
        len(body),
        rows,
        server_ms,
        database_ms if database_port else None,
        (load_before, os.getloadavg()[0]),
    )


def time_pages(
    what: str,
    backend: str,
    url: str,
    env: dict[str, str],
    log: Path,
    plan: Timing,
    cases: Callable[[Client], list[tuple[str, str]]],
) -> list[PageRow]:
    """The real app (as `ledger serve` runs it) under uvicorn on `env`; `cases` (given the
    client, before any timing: to log in, or to follow links) names the pages, each timed in turn."""
    database_port = (urlsplit(url).port or 5432) if url.startswith("postgres") else 0
    timed: list[PageRow] = []
    with served("adapters.web_server:asgi_app", "/healthz", env, log) as server:
        client = Client(server.port)
        try:
            for name, path in cases(client):
                print(
                    f"  [{backend}] {what}: {name}: {plan.warmup} + {plan.requests} requests",
                    file=sys.stderr,
                    flush=True,
                )
                timed.append(time_page(client, name, path, plan, server.pid, database_port))
        finally:
            client.close()
    return timed


def page_table(title: str, pages: list[PageRow], columns: tuple[str, ...], target_p99_ms: float) -> str:
    """The timed pages as a table of `columns` (headings of `_cells`), in that order. The first
    row, when it is GET /healthz, is the baseline the other pages are compared with."""
    baseline = pages[0] if pages and pages[0].path == "/healthz" else None
    rows = [[_cells(row, baseline, target_p99_ms)[column] for column in columns] for row in pages]
    return table(title, list(columns), rows)


def _cells(row: PageRow, baseline: PageRow | None, target_p99_ms: float) -> dict[str, str]:
    p50, p99 = row.pct(0.5), row.pct(0.99)
    is_page = row is not baseline
    verdict = "met" if p99 < target_p99_ms else "MISSED"
    return {
        "page": row.page,
        "requests": fmt(len(row.samples_ms)),
        "p50 ms": fmt(p50, 1),
        "p99 ms": fmt(p99, 1),
        "target ms": f"<{target_p99_ms:.0f} {verdict}" if is_page else "-",
        "p99/target": f"{p99 / target_p99_ms:.2f}" if is_page else "-",
        "p50 x healthz": f"{p50 / baseline.pct(0.5):.1f}x" if baseline and is_page else "-",
        "p99 x healthz": f"{p99 / baseline.pct(0.99):.1f}x" if baseline and is_page else "-",
        "server CPU ms/req": fmt(row.server_cpu_ms, 1),
        "PostgreSQL CPU ms/req": fmt(row.database_cpu_ms, 1),
        "load before/after": f"{row.load[0]:.1f} / {row.load[1]:.1f}",
        "bytes": fmt(row.bytes),
        "rows": "-" if row.rows is None else fmt(row.rows),
    }

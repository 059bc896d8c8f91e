"""HTTP: requests/s and p50/p99 latency of the JSON API under a load generator on loopback.

Servers: subprocesses on free loopback ports, served as `ledger serve` serves (bench/serve.py:
adapters/web_server.py `run_uvicorn`), 1 worker, access log off, the same settings for both: the
real API (the factory `ledger serve` uses, adapters.web_server:asgi_app, on a fresh database, so
the in-process projection follower runs as in production) and a trivial Starlette app
(`trivial_app`: one GET route, a small JSON object, no middleware), the HTTP ceiling of this
machine with this uvicorn. Each is polled on its health route before it is measured and stopped
with SIGINT (uvicorn's graceful shutdown: the lifespan's shutdown runs) afterwards.

Load: CLIENTS spawned processes (bench.procs), each a closed loop over CONNECTIONS keep-alive
sockets driven by one selector: requests are pre-encoded bytes, responses are framed by their
Content-Length and only their status line is read. A warm-up, then a fixed window: the responses
that arrive inside it are counted, with their latency (send -> last byte) and status; a non-2xx,
or a create answered with anything but 201, is an error. create-invoice also runs from a single
connection (one request at a time: SQLite has one writer anyway). CPU time over the window of the
server process, the clients, the PostgreSQL cluster and the whole machine shows which side was busy
(and how much of the machine something else took). wrk is not used: the generator must run where
nothing can be installed.
Alone: `python -m bench --only web [--backend sqlite] [--quick]`.
"""

from __future__ import annotations

import copy
import http.client
import json
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit
from uuid import uuid4

from bench.procs import Gate, Measured, Outcome, clock, run_workers
from bench.report import fmt, table
from web.models import EXAMPLE_INVOICE

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token-0123456789abcdef"
CLIENTS = 2  # client processes; 2 cores: the server takes one, the clients share the other with the database
CONNECTIONS = 8  # keep-alive connections per client process, one request in flight on each
TRIVIAL_PATH = "/ping"
TARGET_READ_RATIO = 0.5  # get-invoice at least half the trivial endpoint's requests/s
TARGETS_CREATE = {"sqlite": 500.0}  # create-invoice requests/s
START_SECONDS = 60.0
STOP_SECONDS = 30.0
INVOICE: dict[str, Any] = copy.deepcopy(EXAMPLE_INVOICE)


@dataclass(frozen=True)
class WebPlan:
    warmup: float  # seconds of load before the window
    seconds: float  # the measured window
    pool: int  # invoices created through the API before get-invoice is timed


FULL = WebPlan(warmup=1.0, seconds=5.0, pool=200)
QUICK = WebPlan(warmup=0.5, seconds=2.0, pool=50)


def _say(backend: str, what: str) -> None:
    print(f"  [{backend}] web: {what}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ the trivial app


def trivial_app() -> Any:
    """The ceiling (a uvicorn factory): one GET route returning a small JSON object (and, for
    bench.webhooks, a POST route that reads the body and answers likewise)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def ping(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def webhook(request: Request) -> Response:  # bench.webhooks' ceiling: the body read, nothing checked
        await request.body()
        return JSONResponse({"received": True, "duplicate": False, "id": None, "outcome": "ignored"})

    return Starlette(
        routes=[Route(TRIVIAL_PATH, ping, methods=["GET"]), Route("/webhooks/stripe", webhook, methods=["POST"])]
    )


# ------------------------------------------------------------------------------ the servers


@dataclass(frozen=True)
class Server:
    port: int
    pid: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_status(port: int, path: str) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()
    except OSError:
        return None


@contextmanager
def served(factory: str, health: str, env: dict[str, str], log: Path, workers: int = 1) -> Iterator[Server]:
    """`factory` served on a free loopback port until the block ends, as `ledger serve` serves
    (bench/serve.py); `workers` > 1: uvicorn's supervisor and that many worker processes (its
    children)."""
    port = _free_port()
    command = [sys.executable, "-m", "bench.serve", factory, str(port), str(workers)]
    environment = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_SECONDS
        while _get_status(port, health) != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{factory} did not come up on port {port}:\n{_tail(log)}")
            time.sleep(0.05)
        yield Server(port, process.pid)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"


def _invoice_body(n: int) -> bytes:
    return json.dumps({**INVOICE, "metadata": {"po": f"PO-{n}"}}, separators=(",", ":")).encode()


def create_pool(port: int, count: int) -> list[str]:
    """Invoices created through the API (untimed), for get-invoice to read."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    ids: list[str] = []
    try:
        for n in range(count):
            headers = {
                "Authorization": f"Bearer {TOKEN}",
                "Content-Type": "application/json",
                "Idempotency-Key": f"pool-{uuid4().hex}",
            }
            conn.request("POST", "/api/invoices", body=_invoice_body(n), headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 201:
                raise RuntimeError(f"creating the invoice pool: {response.status} {body[:500]!r}")
            ids.append(json.loads(body)["id"])
    finally:
        conn.close()
    return ids


# ------------------------------------------------------------------------------ CPU accounting

TICK = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float:
    """User + system seconds of a process (all its threads), from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _tree_cpu(pid: int) -> float:
    """User + system seconds of a process and of its live descendants (uvicorn's workers when
    it runs more than one; a server of one process has none)."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += _process_cpu(current)
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):  # gone since it was listed
            continue
    return total


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) seconds of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    total = sum(values)
    idle = values[3] + values[4]  # idle + iowait
    return (total - idle) / TICK, total / TICK


def _database_cpu(port: int) -> dict[int, float]:
    """User + system seconds of each process of the PostgreSQL cluster listening on `port` (the
    postmaster, found by its `-p <port>` argument, and its children); {} when `port` is 0 (SQLite).
    Other clusters on the machine (other test runs) are not counted."""
    if not port:
        return {}
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent pid, CPU seconds)
    postmaster = None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
            if raw[raw.index("(") + 1 : raw.rindex(")")] != "postgres":
                continue
            fields = raw[raw.rindex(")") + 2 :].split()
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):  # gone since the listing
            continue
        if b"-p" in arguments and arguments[arguments.index(b"-p") + 1 :][:1] == [str(port).encode()]:
            postmaster = int(entry.name)
    return {pid: cpu for pid, (parent, cpu) in stats.items() if postmaster in (pid, parent)}


def _delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two samples by the processes alive at the second one."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------------------ the load generator


@dataclass(frozen=True)
class LoadJob:
    case: str  # "trivial" | "get-invoice" | "create-invoice"
    port: int
    server_pid: int
    index: int  # this client's number: spreads the pool, keeps idempotency keys apart
    connections: int
    warmup: float
    seconds: float
    ids: tuple[str, ...] = ()
    database_port: int = 0  # the PostgreSQL cluster's, for its CPU time; 0 with SQLite


def _request_source(job: LoadJob) -> Callable[[], bytes]:
    """The next request's bytes: cheap, so the client costs the server as little CPU as it can."""
    host = f"Host: 127.0.0.1:{job.port}\r\n"
    auth = f"Authorization: Bearer {TOKEN}\r\n"
    if job.case == "trivial":
        request = f"GET {TRIVIAL_PATH} HTTP/1.1\r\n{host}\r\n".encode()
        return lambda: request
    if job.case == "get-invoice":
        reads = [f"GET /api/invoices/{i} HTTP/1.1\r\n{host}{auth}\r\n".encode() for i in job.ids]
        position = [job.index * len(reads) // CLIENTS]

        def read() -> bytes:
            position[0] = (position[0] + 1) % len(reads)
            return reads[position[0]]

        return read
    head = f"POST /api/invoices HTTP/1.1\r\n{host}{auth}Content-Type: application/json\r\n"
    counter = [job.index * 10_000_000]

    def create() -> bytes:
        counter[0] += 1
        body = _invoice_body(counter[0])
        return f"{head}Idempotency-Key: bench-{uuid4().hex}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body

    return create


def _framed(buffer: bytearray) -> tuple[int, int] | None:
    """(status, length) of the first complete response in `buffer`, None if it is not all there."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        raise RuntimeError(f"a response without Content-Length: {head[:300]!r}")
    stop = head.find(b"\r\n", at + 17)
    length = end + 4 + int(head[at + 17 : stop if stop >= 0 else len(head)])
    if len(buffer) < length:
        return None
    return int(buffer[9:12]), length


@dataclass
class _Connection:
    sock: socket.socket
    slot: int  # which of the client's connections: a source may tie requests to it
    buffer: bytearray = field(default_factory=bytearray)
    sent_at: float = 0.0  # closed loop: when sent; open loop: when it was due
    waiting: bool = False


def _connect(port: int, selector: selectors.BaseSelector, slot: int) -> _Connection:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    connection = _Connection(sock, slot)
    selector.register(sock, selectors.EVENT_READ, connection)
    return connection


def _receive(sock: socket.socket) -> bytes:
    """What arrived; b"" when the server closed (or reset) the connection."""
    try:
        return sock.recv(262_144)
    except ConnectionError:
        return b""


class Source(Protocol):
    """What a client sends, and hears back (bench.webhooks ties requests to connections)."""

    def request(self, slot: int) -> bytes | None:
        """The next request's bytes for connection `slot`; None: nothing left to send."""
        ...

    def answered(self, slot: int, status: int, response: bytes) -> None:
        """The response (head and body; b"" and status 0 when the connection dropped) to the
        request last sent on `slot`, in the window or not."""
        ...


@dataclass(frozen=True)
class _Fixed:
    """A source of interchangeable requests (the API cases): no memory of what was answered."""

    next_request: Callable[[], bytes]

    def request(self, slot: int) -> bytes | None:
        return self.next_request()

    def answered(self, slot: int, status: int, response: bytes) -> None:
        return None


@dataclass(frozen=True)
class Drive:
    """How one client process loads a server (see `drive`)."""

    port: int
    server_pid: int
    index: int
    connections: int
    warmup: float
    seconds: float
    ok_status: int = 200
    database_port: int = 0  # the PostgreSQL cluster's, for its CPU time; 0 with SQLite
    rate: float = 0.0  # > 0: open loop, this client offers `rate` requests/s; 0: closed loop
    phase: float = 0.0  # open loop: the first request is due `phase / rate` s after the start


def load(job: LoadJob, gate: Gate) -> Measured:
    """One client process of the API cases: closed loop over `job.connections` connections."""
    ok_status = 201 if job.case == "create-invoice" else 200
    how = Drive(
        job.port, job.server_pid, job.index, job.connections, job.warmup, job.seconds, ok_status, job.database_port
    )
    return drive(how, _Fixed(_request_source(job)), gate)


def drive(how: Drive, source: Source, gate: Gate) -> Measured:
    """`how.connections` keep-alive connections, each with at most one request in flight.

    Closed loop (`how.rate` 0): a connection sends its next request as soon as the last one is
    answered. Open loop: requests fall due every 1/rate s whether or not the server keeps up;
    a due request goes out on an idle connection, or waits for one, and its latency runs from
    when it was due (so a server that falls behind shows it in p99, not in a slower offer). The
    window ends early when the source has nothing left (the figures cover the shorter window).
    """
    selector = selectors.DefaultSelector()
    connections = [_connect(how.port, selector, slot) for slot in range(how.connections)]
    idle: list[_Connection] = []
    interval = 1.0 / how.rate if how.rate else 0.0

    def send(connection: _Connection, due: float) -> bool:
        request = source.request(connection.slot)
        if request is None:
            return False
        connection.sent_at = due if interval else clock()
        connection.sock.sendall(request)  # small requests: the socket buffer takes them whole
        connection.waiting = True
        return True

    latencies = array("d")
    lags = array("d")  # open loop: how late each request in the window went out (no idle connection)
    statuses: Counter[int] = Counter()
    gate.ready()
    began = clock()
    window_start = began + how.warmup
    window_end = window_start + how.seconds
    due = began + how.phase * interval
    before: tuple[float, float, dict[int, float], tuple[float, float]] | None = None
    drained = False  # the source has nothing left
    if interval:
        idle.extend(connections)
    else:
        for connection in connections:
            drained = drained or not send(connection, 0.0)
    while True:
        now = clock()
        if before is None and now >= window_start:
            before = (_own_cpu(), _tree_cpu(how.server_pid), _database_cpu(how.database_port), _machine_cpu())
        if now >= window_end:
            break
        while interval and idle and due <= now and not drained:
            connection = idle.pop()
            if not send(connection, due):
                drained = True
                break
            if window_start <= now:
                lags.append(now - due)
            due += interval
        if drained and not any(c.waiting for c in connections):
            window_end = now  # nothing left to send: the window ends here
            break
        timeout = (window_start if before is None else window_end) - now
        if interval and idle and not drained:
            timeout = min(timeout, due - now)
        for key, _ in selector.select(max(0.0, timeout)):
            connection = key.data
            data = _receive(connection.sock)
            if not data:  # closed by the server: counted as status 0 if a request was lost, and replaced
                if connection.waiting:
                    if window_start <= clock() <= window_end:
                        statuses[0] += 1
                    source.answered(connection.slot, 0, b"")
                elif connection in idle:
                    idle.remove(connection)
                selector.unregister(connection.sock)
                connection.sock.close()
                slot = connection.slot
                connection = connections[slot] = _connect(how.port, selector, slot)
            else:
                connection.buffer += data
                framed = _framed(connection.buffer)
                if framed is None:
                    continue
                done = clock()
                status, length = framed
                response = bytes(connection.buffer[:length])
                del connection.buffer[:length]
                connection.waiting = False
                if window_start <= done <= window_end:
                    latencies.append(done - connection.sent_at)
                    statuses[status] += 1
                source.answered(connection.slot, status, response)
            if interval:
                idle.append(connection)
            elif not drained:
                drained = not send(connection, 0.0)
    if before is None:  # the source ran dry before the window opened
        before = (_own_cpu(), _tree_cpu(how.server_pid), _database_cpu(how.database_port), _machine_cpu())
        window_start = window_end
    stalled = sum(1 for c in connections if c.waiting and c.sent_at < window_start)
    after = (_own_cpu(), _tree_cpu(how.server_pid), _database_cpu(how.database_port), _machine_cpu())
    _drain(selector, connections, source)
    for connection in connections:
        connection.sock.close()
    selector.close()
    return Measured(
        ops=len(latencies),
        started=window_start,
        finished=window_end,
        extra={
            "latencies": latencies.tolist(),
            "lags": lags.tolist(),
            "statuses": dict(statuses),
            "ok_status": how.ok_status,
            "index": how.index,
            "stalled": stalled,
            "drained": drained,
            "client_cpu": after[0] - before[0],
            "server_cpu": after[1] - before[1],
            "database_cpu": _delta(before[2], after[2]),
            "machine_busy": after[3][0] - before[3][0],
            "machine_total": after[3][1] - before[3][1],
        },
    )


def _drain(selector: selectors.BaseSelector, connections: list[_Connection], source: Source) -> None:
    """Wait for the requests still in flight (uncounted), so none is cut off half-way."""
    deadline = clock() + STOP_SECONDS
    while any(c.waiting for c in connections) and clock() < deadline:
        for key, _ in selector.select(0.5):
            connection = key.data
            data = _receive(connection.sock)
            if not data:
                connection.waiting = False
                source.answered(connection.slot, 0, b"")
                selector.unregister(connection.sock)
                continue
            connection.buffer += data
            framed = _framed(connection.buffer)
            if framed is not None:
                source.answered(connection.slot, framed[0], bytes(connection.buffer[: framed[1]]))
                del connection.buffer[: framed[1]]
                connection.waiting = False


# ------------------------------------------------------------------------------ one backend


@dataclass
class WebRow:
    case: str
    outcome: Outcome
    clients: int
    connections: int

    @property
    def latencies_ms(self) -> list[float]:
        return sorted(s * 1000 for w in self.outcome.workers for s in w.extra["latencies"])

    @property
    def statuses(self) -> Counter[int]:
        merged: Counter[int] = Counter()
        for w in self.outcome.workers:
            merged.update(w.extra["statuses"])
        return merged

    @property
    def errors(self) -> int:
        ok = self.outcome.workers[0].extra["ok_status"]
        return sum(n for status, n in self.statuses.items() if status != ok)

    @property
    def stalled(self) -> int:
        """Requests sent before the window and still unanswered at its end."""
        return sum(int(w.extra["stalled"]) for w in self.outcome.workers)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok_rate(self) -> float:
        """Requests/s answered with the expected status."""
        return self.statuses[self.outcome.workers[0].extra["ok_status"]] / self.outcome.seconds

    def cpu(self, name: str) -> float:
        """Seconds of CPU per second of window (1.0 = one core busy)."""
        if name == "client_cpu":
            return float(sum(w.extra[name] for w in self.outcome.workers)) / self.outcome.seconds
        first = next(w.extra for w in self.outcome.workers if w.extra["index"] == 0)  # it samples the database
        if name == "machine_busy":
            return float(first["machine_busy"]) / float(first["machine_total"]) * (os.cpu_count() or 1)
        if name == "other":  # the machine's busy time that is none of the above: other processes, interrupts
            known = self.cpu("server_cpu") + self.cpu("client_cpu") + self.cpu("database_cpu")
            return max(0.0, self.cpu("machine_busy") - known)
        return float(first[name]) / self.outcome.seconds


@dataclass
class WebReport:
    backend: str
    rows: list[WebRow] = field(default_factory=list)
    pool: int = 0


def _measure(
    case: str,
    server: Server,
    plan: WebPlan,
    ids: list[str] | None = None,
    clients: int = CLIENTS,
    connections: int = CONNECTIONS,
    database_port: int = 0,
) -> WebRow:
    jobs = [
        LoadJob(
            case,
            server.port,
            server.pid,
            i,
            connections,
            plan.warmup,
            plan.seconds,
            tuple(ids or ()),
            database_port if i == 0 else 0,  # the first client samples the machine-wide figures
        )
        for i in range(clients)
    ]
    return WebRow(case, run_workers(load, jobs), clients, connections)


def run_web(backend: str, url: str, plan: WebPlan) -> WebReport:
    """The trivial endpoint, then get-invoice and create-invoice on the real API over `url`."""
    with tempfile.TemporaryDirectory(prefix="ledger-bench-web-") as directory:
        return _run_web(backend, url, plan, Path(directory) / "servers.log")


def _run_web(backend: str, url: str, plan: WebPlan, log: Path) -> WebReport:
    report = WebReport(backend, pool=plan.pool)
    database = (urlsplit(url).port or 5432) if url.startswith("postgres") else 0
    env = {"LEDGER_DATABASE_URL": url, "LEDGER_API_TOKEN": TOKEN}
    _say(backend, f"trivial Starlette endpoint, {plan.seconds:g} s")
    with served("bench.web:trivial_app", TRIVIAL_PATH, env, log) as server:
        report.rows.append(_measure("trivial", server, plan, database_port=database))
    with served("adapters.web_server:asgi_app", "/healthz", env, log) as server:
        _say(backend, f"creating {plan.pool} invoices through the API")
        ids = create_pool(server.port, plan.pool)
        _say(backend, f"get-invoice, {plan.seconds:g} s")
        report.rows.append(_measure("get-invoice", server, plan, ids, database_port=database))
        _say(backend, f"create-invoice, one connection, {plan.seconds:g} s")
        report.rows.append(_measure("create-invoice", server, plan, clients=1, connections=1, database_port=database))
        _say(backend, f"create-invoice, {plan.seconds:g} s")
        report.rows.append(_measure("create-invoice", server, plan, database_port=database))
    return report


# ------------------------------------------------------------------------------ the table


def _pct(ordered: list[float], q: float) -> float | None:
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else None


def _target(backend: str, row: WebRow, ratio: float | None) -> str:
    if row.case == "get-invoice" and ratio is not None:
        verdict = "met" if ratio >= TARGET_READ_RATIO else "MISSED"
        return f">={TARGET_READ_RATIO:.0%} of trivial {verdict}"
    target = TARGETS_CREATE.get(backend)
    if row.case == "create-invoice" and target is not None:
        return f">={fmt(target)}/s {'met' if row.ok_rate >= target else 'MISSED'} ({row.ok_rate / target:.0%})"
    return ""


def _server_stack() -> str:
    http_impl = "httptools" if find_spec("httptools") else "h11"
    loop = "uvloop" if find_spec("uvloop") else "asyncio"
    return f"uvicorn {version('uvicorn')} ({http_impl}, {loop} loop), starlette {version('starlette')}"


def render(reports: list[WebReport], plan: WebPlan) -> str:
    headers = [
        "backend",
        "case",
        "clients x conns",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "vs trivial",
        "target",
        "server CPU",
        "clients CPU",
        "PostgreSQL CPU",
        "other CPU",
        "machine busy",
    ]
    rows: list[list[str]] = []
    notes: list[str] = []
    for report in reports:
        trivial = next((r.ok_rate for r in report.rows if r.case == "trivial"), None)
        for row in report.rows:
            ms = row.latencies_ms
            ratio = row.ok_rate / trivial if trivial else None
            cores = os.cpu_count() or 1
            rows.append(
                [
                    report.backend,
                    row.case,
                    f"{row.clients} x {row.connections}",
                    fmt(row.requests),
                    fmt(row.ok_rate),
                    fmt(_pct(ms, 0.5), 2),
                    fmt(_pct(ms, 0.99), 2),
                    fmt(row.errors),
                    "-" if ratio is None else f"{ratio:.1%}",
                    _target(report.backend, row, ratio),
                    f"{row.cpu('server_cpu'):.0%}",
                    f"{row.cpu('client_cpu'):.0%}",
                    "-" if report.backend == "sqlite" else f"{row.cpu('database_cpu'):.0%}",
                    f"{row.cpu('other'):.0%}",
                    f"{row.cpu('machine_busy'):.0%} of {cores * 100}%",
                ]
            )
            if row.errors:
                shown = ", ".join(f"{status}: {n:,}" for status, n in sorted(row.statuses.items()))
                notes.append(f"{report.backend} {row.case}: statuses (0 = connection closed by the server) {shown}")
            if row.stalled:
                notes.append(
                    f"{report.backend} {row.case} ({row.clients} x {row.connections}): {row.stalled} requests sent "
                    f"before the window were still unanswered at its end ({plan.warmup + plan.seconds:g} s or more)"
                )
    title = (
        f"HTTP on loopback: {_server_stack()}; 1 worker, access log off, each server a subprocess.\n"
        f"Load: {CLIENTS} client processes x {CONNECTIONS} keep-alive connections, closed loop, "
        f"{plan.warmup:g} s warm-up, {plan.seconds:g} s window; req/s counts only the expected status\n"
        f"(200; 201 for a create). trivial = one-route Starlette app returning a small JSON object, "
        f"same uvicorn settings (the HTTP ceiling).\n"
        f"get-invoice cycles over {reports[0].pool if reports else 0} invoices created through the API; "
        "create-invoice posts a 2-line invoice with a unique Idempotency-Key,\n"
        "from one connection (requests one at a time), then under the same load as the others.\n"
        "CPU: seconds of CPU per second of window (100% = one core): the server process (all its threads), "
        "the client processes,\nthe PostgreSQL server processes, the rest of the machine's busy time "
        "(other processes, interrupts: noise), the whole machine."
    )
    return "\n".join([table(title, headers, rows, left=2), *notes])

"""Ways to read the log for `ledger audit verify` on PostgreSQL, against the bare SELECT ceiling.

`python -m bench.verify_fetch [--events N] [--rounds R]` starts a throwaway PostgreSQL cluster
(tests/pg_cluster.py), writes a log of N events (bench/read_models.py generate: invoices with
lines, payments, a refund), chains it, then times, alternated round by round so that the
machine's other work weighs on each alike (the median of R rounds is printed):

- each way of reading the rows verify hashes, `(position, originator id as UUID text, version,
  topic, state bytes)`, read whole and counted, nothing hashed ("fetch only");
- the chain's link computed over the rows so read ("fetch + hash"), to see what a faster read
  would give verify: the same bytes as projections/audit_chain.py hashes (its chain format);
- `verify` itself (since this script was written, it reads the kept chain in the same query;
  on PostgreSQL it now has the server check the links first), the Python walk alone from
  genesis (what `verify` did before the server checked the links), and the same idea with
  binary results and links compared as bytes (a left join, the deleted case asked first by an
  anti-join), measured before `verify` was changed.

The ways: a bare `SELECT ... ORDER BY` with fetchall (the ceiling the bench prints); keyset
batches as verify reads them (text results, and binary: bytea sent raw, not as hex text); a
server-side (named) cursor at several batch sizes; `COPY (SELECT ...) TO STDOUT` in text format
(bytea as hex, decoded here) and in binary format (parsed here with struct, bytea raw), read in
the driver's chunks. Figures are in docs/throughput.md, Audit verify.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import struct
import time
from collections.abc import Callable, Iterator
from hashlib import sha256

import psycopg

from adapters.clock import ManualClock
from adapters.persistence import event_store_env
from adapters.read_models import _ReadModelLog, read_model_engine
from bench.procs import Gate
from bench.read_models import GenerateJob, generate
from bench.replay import START
from bench.report import fmt, table
from commands.application import BillingApplication
from projections.audit_chain import GENESIS, AuditChain, verify, walk_verify
from projections.runner import ProjectionRunner

Row = tuple[int, str, int, str, bytes]
COLUMNS = "notification_id, originator_id::text, originator_version, topic, state"
BATCH = 10_000
_HEADER = struct.Struct(">qqI")
_LENGTH = struct.Struct(">I")
_STATE_LENGTH = struct.Struct(">Q")


def _bare(url: str, table_name: str) -> Iterator[Row]:
    with psycopg.connect(url) as conn:
        yield from conn.execute(f"SELECT {COLUMNS} FROM {table_name} ORDER BY notification_id").fetchall()


def _keyset(binary: bool) -> Callable[[str, str], Iterator[Row]]:
    def read(url: str, table_name: str) -> Iterator[Row]:
        query = f"SELECT {COLUMNS} FROM {table_name} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        after = 0
        with psycopg.connect(url) as conn:
            while True:
                with conn.cursor(binary=binary) as cursor:
                    chunk = cursor.execute(query, (after, BATCH)).fetchall()
                if not chunk:
                    return
                yield from chunk
                after = chunk[-1][0]

    return read


def _named(size: int) -> Callable[[str, str], Iterator[Row]]:
    def read(url: str, table_name: str) -> Iterator[Row]:
        with psycopg.connect(url) as conn, conn.transaction(), conn.cursor("verify") as cursor:
            cursor.itersize = size
            cursor.execute(f"SELECT {COLUMNS} FROM {table_name} ORDER BY notification_id")
            while chunk := cursor.fetchmany(size):
                yield from chunk

    return read


def _copy_text(url: str, table_name: str) -> Iterator[Row]:
    """COPY's text format: tab-separated, a row a line; bytea as `\\x` and hex (escaped once)."""
    sql = f"COPY (SELECT {COLUMNS} FROM {table_name} ORDER BY notification_id) TO STDOUT"
    with psycopg.connect(url) as conn, conn.cursor() as cursor, cursor.copy(sql) as copy:
        rest = b""
        for chunk in copy:
            lines = (rest + bytes(chunk)).split(b"\n")
            rest = lines.pop()
            for line in lines:
                position, oid, version, topic, state = line.split(b"\t")
                # A topic with a tab, newline or backslash would be escaped: the log's are not.
                yield int(position), oid.decode(), int(version), topic.decode(), bytes.fromhex(state[3:].decode())


def _copy_binary(url: str, table_name: str) -> Iterator[Row]:
    """COPY's binary format: a header, then per row a field count and per field a length and
    its bytes (integers big-endian, text as is, bytea raw), parsed here with struct."""
    sql = f"COPY (SELECT {COLUMNS} FROM {table_name} ORDER BY notification_id) TO STDOUT (FORMAT BINARY)"
    int32, int16, from_bytes = struct.Struct(">i"), struct.Struct(">h"), int.from_bytes  # positions are positive
    with psycopg.connect(url) as conn, conn.cursor() as cursor, cursor.copy(sql) as copy:
        data = b"".join(bytes(chunk) for chunk in copy)  # a round's whole log: ~30 MB for 100k events
    at = 19  # signature (11), flags (4), header extension length (4, zero)
    while True:
        (fields,) = int16.unpack_from(data, at)
        if fields == -1:
            return
        at += 2
        values: list[bytes] = []
        for _ in range(fields):
            (size,) = int32.unpack_from(data, at)
            values.append(data[at + 4 : at + 4 + size])
            at += 4 + size
        position, oid, version, topic, state = values
        yield from_bytes(position, "big"), oid.decode(), from_bytes(version, "big"), topic.decode(), state


def _joined(url: str, table_name: str) -> int:
    """The log and the kept chain in ONE query per batch (a left join on the position, the link
    as bytes), binary results, each link computed and compared as `verify` would; and the
    deleted case a left join cannot show (a chained position no longer in the log) asked
    first, by one anti-join. Returns the events checked; raises at the first mismatch."""
    query = (
        f"SELECT e.notification_id, e.originator_id::text, e.originator_version, e.topic, e.state, "
        f"decode(c.link, 'hex') FROM {table_name} e LEFT JOIN audit_chain c ON c.position = e.notification_id "
        "WHERE e.notification_id > %s ORDER BY e.notification_id LIMIT %s"
    )
    deleted = (
        f"SELECT min(c.position) FROM audit_chain c WHERE NOT EXISTS "
        f"(SELECT 1 FROM {table_name} e WHERE e.notification_id = c.position)"
    )
    link = GENESIS
    count = 0
    topics: dict[str, bytes] = {}
    with psycopg.connect(url) as conn:
        row = conn.execute(deleted).fetchone()
        if row is None or row[0] is not None:
            raise RuntimeError(f"a chained event is no longer in the log: {row}")
        after = 0
        while True:
            with conn.cursor(binary=True) as cursor:
                chunk = cursor.execute(query, (after, BATCH)).fetchall()
            if not chunk:
                return count
            for position, originator_id, version, topic, state, kept in chunk:
                oid = originator_id.encode()
                top = topics.get(topic)
                if top is None:
                    top = topics[topic] = _LENGTH.pack(len(topic.encode())) + topic.encode()
                header = _HEADER.pack(position, version, len(oid))
                link = sha256(b"".join((link, header, oid, top, _STATE_LENGTH.pack(len(state)), state))).digest()
                if link != kept:
                    raise RuntimeError(f"position {position}: the link differs from the kept one")
                count += 1
            after = chunk[-1][0]


def _hashed(rows: Iterator[Row]) -> int:
    """The chain's links over the rows, as projections/audit_chain.py computes them."""
    link = GENESIS
    count = 0
    topics: dict[str, bytes] = {}
    for position, originator_id, version, topic, state in rows:
        oid = originator_id.encode()
        top = topics.get(topic)
        if top is None:
            top = topics[topic] = _LENGTH.pack(len(topic.encode())) + topic.encode()
        header = _HEADER.pack(position, version, len(oid))
        link = sha256(b"".join((link, header, oid, top, _STATE_LENGTH.pack(len(state)), state))).digest()
        count += 1
    return count


def main() -> None:
    from tests.pg_cluster import running_cluster

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ways: dict[str, Callable[[str, str], Iterator[Row]]] = {
        "bare SELECT, fetchall (the ceiling)": _bare,
        "keyset batches of 10,000, text results (verify today)": _keyset(binary=False),
        "keyset batches of 10,000, binary results": _keyset(binary=True),
        "server-side cursor, 2,000 a fetch": _named(2_000),
        "server-side cursor, 10,000 a fetch": _named(10_000),
        "server-side cursor, 50,000 a fetch": _named(50_000),
        "COPY (SELECT) TO STDOUT, text format": _copy_text,
        "COPY (SELECT) TO STDOUT, binary format": _copy_binary,
    }
    with running_cluster() as cluster, cluster.database() as url:
        generate(GenerateJob(url, args.events), Gate(multiprocessing.Lock(), multiprocessing.Barrier(1)))
        app = BillingApplication(clock=ManualClock(START), env=event_store_env(url))
        engine = read_model_engine(url)
        runner = ProjectionRunner(engine, _ReadModelLog(app, topics=()), [AuditChain(app)])
        runner.create_tables()
        runner.catch_up(batch_size=10_000)
        table_name: str = app.recorder.events_table_name  # type: ignore[attr-defined]
        expected = sum(1 for _ in _bare(url, table_name))
        fetch: dict[str, list[float]] = {name: [] for name in ways}
        hashed: dict[str, list[float]] = {name: [] for name in ways}
        verified: list[float] = []
        walked: list[float] = []
        joined: list[float] = []
        for _ in range(args.rounds):
            for name, read in ways.items():
                begun = time.perf_counter()
                count = sum(1 for _ in read(url, table_name))
                fetch[name].append(expected / (time.perf_counter() - begun))
                if count != expected:
                    raise RuntimeError(f"{name}: {count} rows, expected {expected}")
                begun = time.perf_counter()
                _hashed(read(url, table_name))
                hashed[name].append(expected / (time.perf_counter() - begun))
            begun = time.perf_counter()
            if _joined(url, table_name) != expected:
                raise RuntimeError("the joined read did not check every event")
            joined.append(expected / (time.perf_counter() - begun))
            begun = time.perf_counter()
            verdict = verify(app, engine)
            verified.append(verdict.count / (time.perf_counter() - begun))
            if not verdict.ok:
                raise RuntimeError(f"verify: {verdict}")
            begun = time.perf_counter()
            reference = walk_verify(app, engine)
            walked.append(reference.count / (time.perf_counter() - begun))
            if reference != verdict:
                raise RuntimeError(f"the walk alone: {reference}, verify: {verdict}")
        ceiling = statistics.median(fetch[next(iter(ways))])
        rows = [
            [
                name,
                fmt(statistics.median(fetch[name])),
                f"{statistics.median(fetch[name]) / ceiling:.2f}",
                fmt(statistics.median(hashed[name])),
            ]
            for name in ways
        ]
        rows.append(["`verify` (projections/audit_chain.py)", "", "", fmt(statistics.median(verified))])
        rows.append(["the Python walk alone, from genesis (verify before)", "", "", fmt(statistics.median(walked))])
        together = fmt(statistics.median(joined))
        rows.append(["log LEFT JOIN kept chain, binary, hashed and compared (+ anti-join)", "", "", together])
        print(
            table(
                f"Reading a {expected:,}-event log on PostgreSQL, median of {args.rounds} rounds (rows/s)",
                ["way", "fetch only", "x ceiling", "fetch + hash"],
                rows,
                left=1,
            )
        )
        engine.dispose()
        app.close()


if __name__ == "__main__":
    main()

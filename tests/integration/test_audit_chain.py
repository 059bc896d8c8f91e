"""The audit chain: the untouched log verifies; any change made behind the application's back
(altered, deleted, inserted or reordered events, straight in the database) is named at its first
position; an exported period verifies on its own, and a flipped byte in it is named by line."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import Engine, select, text

from adapters.cli import main
from adapters.clock import ManualClock
from adapters.read_models import audit_chain_runner, projection_runner
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.money import Money
from projections.audit_chain import (
    GENESIS,
    PARALLEL_FROM,
    Verdict,
    _chain_head,
    _first_suspect,
    _in_child,
    _Range,
    _scanned_suspect,
    _workers,
    next_link,
    verify,
    walk_verify,
)
from projections.audit_export import export, verify_file
from projections.queries import trial_balance
from projections.tables import audit_chain

CUSTOMER = {"email": "ap@example.com", "name": "Example Ltd"}


def _scenario(app: BillingApplication, clock: ManualClock) -> None:
    ids = []
    for currency, amount in [("usd", 10_000), ("eur", 25_000), ("jpy", 5_000)]:
        invoice_id = app.create_draft(
            customer=CUSTOMER, currency=currency, lines=[NewLine("Work", 2, amount, "20")]
        ).result
        app.issue(invoice_id)
        ids.append(invoice_id)
        clock.advance(timedelta(hours=1))
    paid = app.record_provider_payment_succeeded(
        provider="stripe", provider_payment_id="pi_1", invoice_id=ids[0], amount_captured=Money(24_000, "usd"), fee=726
    ).result
    clock.advance(timedelta(hours=1))
    app.record_refund(paid, refund_id="re_1", amount=4_000)
    app.void(ids[2])


class Store:
    """The event store's own table, reached with SQL behind the application's back."""

    def __init__(self, app: BillingApplication, engine: Engine) -> None:
        self.engine = engine
        # stored_events on SQLite, billingapplication_events on PostgreSQL
        self.table = str(getattr(app.recorder, "events_table_name", "stored_events"))
        self.position = "notification_id" if engine.dialect.name == "postgresql" else "rowid"

    def row(self, position: int) -> dict[str, Any]:
        query = f"SELECT originator_id, originator_version, topic, state FROM {self.table} WHERE {self.position} = :p"
        with self.engine.connect() as conn:
            return dict(conn.execute(text(query), {"p": position}).mappings().one())

    def state(self, position: int) -> bytes:
        return bytes(self.row(position)["state"])

    def set_state(self, position: int, state: bytes) -> None:
        self._run(f"UPDATE {self.table} SET state = :s WHERE {self.position} = :p", s=state, p=position)

    def delete(self, position: int) -> None:
        self._run(f"DELETE FROM {self.table} WHERE {self.position} = :p", p=position)

    def insert(self, position: int, row: dict[str, Any]) -> None:
        columns = "originator_id, originator_version, topic, state"
        values = ":originator_id, :originator_version, :topic, :state"
        self._run(f"INSERT INTO {self.table} ({self.position}, {columns}) VALUES (:p, {values})", p=position, **row)

    def _run(self, statement: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(statement), params)


@pytest.fixture
def store(app: BillingApplication, engine: Engine) -> Store:
    return Store(app, engine)


def _positions(app: BillingApplication) -> list[int]:
    return [r.id for r in app.records_after(0, 1_000_000)]


def _chained(app: BillingApplication, engine: Engine, clock: ManualClock) -> list[int]:
    _scenario(app, clock)
    projection_runner(app, engine).catch_up()
    return _positions(app)


def test_the_untouched_log_verifies_and_the_chain_is_the_same_however_it_was_built(
    app: BillingApplication, clock: ManualClock, engine: Engine
) -> None:
    assert verify(app, engine).ok  # nothing logged, nothing chained
    _scenario(app, clock)
    runner = audit_chain_runner(app, engine)
    runner.catch_up(batch_size=3)
    verdict = verify(app, engine, batch=4)
    positions = _positions(app)
    assert verdict.ok, verdict
    assert (verdict.count, verdict.unchained) == (len(positions), 0)
    assert str(verdict) == f"OK: {len(positions)} events, head {verdict.head}"
    with engine.connect() as conn:
        kept = conn.execute(select(audit_chain.c.link).order_by(audit_chain.c.position.desc())).scalars().first()
    assert kept == verdict.head != GENESIS.hex()
    assert runner.catch_up() == 0  # exactly once: nothing chained twice
    full = projection_runner(app, engine)
    assert full.positions()["audit_chain"] == app.head()
    full.rebuild()
    assert verify(app, engine) == verdict  # rebuilt from the same log: the same chain


def test_events_logged_after_the_head_are_reported_as_not_chained_yet(
    app: BillingApplication, clock: ManualClock, engine: Engine
) -> None:
    _chained(app, engine, clock)
    app.create_draft(customer=CUSTOMER, currency="usd")
    verdict = verify(app, engine)
    assert verdict.ok
    assert verdict.unchained == 1


def test_an_altered_event_is_named(app: BillingApplication, clock: ManualClock, engine: Engine, store: Store) -> None:
    positions = _chained(app, engine, clock)
    target = positions[4]
    state = store.state(target)
    store.set_state(target, state[:-1] + b',"amount":1}')
    verdict = verify(app, engine)
    assert (verdict.ok, verdict.position, verdict.problem) == (False, target, "altered")
    assert verdict.count == 4  # the events before it still verify
    assert f"position {target} altered" in str(verdict)


def _recomputed(app: BillingApplication) -> tuple[int, str]:
    """The chain over the log as the library reads it (Notification objects, the id through
    UUID), record by record: what verify computed before it read the rows straight through the
    driver."""
    link = GENESIS
    records = app.records_after(0, 1_000_000)
    for record in records:
        link = next_link(link, record)
    return len(records), link.hex()


def test_verify_reading_the_rows_raw_agrees_with_the_chain_recomputed_from_the_library_records(
    app: BillingApplication, clock: ManualClock, engine: Engine
) -> None:
    _chained(app, engine, clock)
    verdict = verify(app, engine, batch=5)  # batches that end between two events of one command
    assert verdict.ok
    assert (verdict.count, verdict.head) == _recomputed(app)


def test_a_flipped_bit_in_a_stored_state_is_named(
    app: BillingApplication, clock: ManualClock, engine: Engine, store: Store
) -> None:
    positions = _chained(app, engine, clock)
    target = positions[-3]
    state = bytearray(store.state(target))
    state[len(state) // 2] ^= 0x01  # one bit, mid-state: the JSON may well still decode
    store.set_state(target, bytes(state))
    verdict = verify(app, engine, batch=7)
    assert (verdict.ok, verdict.position, verdict.problem) == (False, target, "altered")
    assert verdict.count == len(positions) - 3
    assert verdict.detail == "stored bytes differ from what was chained"


def test_an_originator_id_stored_in_another_spelling_of_the_same_uuid_still_verifies(
    app: BillingApplication, clock: ManualClock, engine: Engine, store: Store
) -> None:
    """The chain covers the id as UUID text; verify spells the stored id that way in Python, and
    checks a link that does not match again the way the chain was built, so the verdict is the
    one the library's reading gives. Only SQLite can hold another spelling (PostgreSQL: uuid)."""
    positions = _chained(app, engine, clock)
    if engine.dialect.name == "postgresql":
        pytest.skip("a uuid column has one spelling")
    target = positions[2]
    stored_id = store.row(target)["originator_id"]
    store._run(f"UPDATE {store.table} SET originator_id = :o WHERE rowid = :p", o=stored_id.upper(), p=target)
    assert app.records_after(target - 1, 1)[0].originator_id == UUID(stored_id)  # the library reads it the same
    verdict = verify(app, engine)
    assert verdict.ok
    assert (verdict.count, verdict.head) == _recomputed(app)


def test_a_rebuild_of_the_read_models_does_not_bless_a_tampered_log(
    app: BillingApplication, clock: ManualClock, engine: Engine, store: Store
) -> None:
    positions = _chained(app, engine, clock)
    target = positions[2]
    store.set_state(target, store.state(target)[:-1] + b',"amount":1}')
    projection_runner(app, engine).rebuild()
    verdict = verify(app, engine)
    assert (verdict.ok, verdict.position, verdict.problem) == (False, target, "altered")


def test_a_deleted_event_is_named(app: BillingApplication, clock: ManualClock, engine: Engine, store: Store) -> None:
    positions = _chained(app, engine, clock)
    store.delete(positions[6])
    verdict = verify(app, engine)
    assert (verdict.ok, verdict.position, verdict.problem) == (False, positions[6], "deleted")


def test_deleting_the_last_event_is_named(
    app: BillingApplication, clock: ManualClock, engine: Engine, store: Store
) -> None:
    positions = _chained(app, engine, clock)
    store.delete(positions[-1])
    verdict = verify(app, engine)
    assert (verdict.ok, verdict.position, verdict.problem) == (False, positions[-1], "deleted")


def test_an_inserted_event_is_named(app: BillingApplication, clock: ManualClock, engine: Engine, store: Store) -> None:
    _scenario(app, clock)
    positions = _positions(app)
    hole = positions[5]
    copy = store.row(hole)
    store.delete(hole)  # a gap in the log when it was chained
    audit_chain_runner(app, engine).catch_up()
    assert verify(app, engine).ok
    copy["originator_version"] += 1_000  # a copy of an event, slipped in below the head
    store.insert(hole, copy)
    verdict = verify(app, engine)
    assert (verdict.ok, verdict.position, verdict.problem) == (False, hole, "inserted")


@pytest.mark.parametrize("first", ["deleted", "altered"])
def test_of_several_problems_the_lowest_position_is_named_with_the_chain_up_to_it(
    first: str, app: BillingApplication, clock: ManualClock, engine: Engine, store: Store
) -> None:
    """verify reads each event's kept link beside it and finds deleted events by a query of
    their own: the verdict is still the first problem by position, and its count and head are
    those of the events before it."""
    positions = _chained(app, engine, clock)
    low, high = positions[4], positions[9]
    deleted, altered = (low, high) if first == "deleted" else (high, low)
    store.delete(deleted)
    store.set_state(altered, store.state(altered)[:-1] + b',"amount":1}')
    verdict = verify(app, engine)
    assert (verdict.ok, verdict.position, verdict.problem) == (False, low, first)
    link = GENESIS
    for record in app.records_after(0, 1_000_000):
        if record.id >= low:
            break
        link = next_link(link, record)
    assert verdict.count == positions.index(low)
    if first == "deleted":
        assert verdict.head == link.hex()  # an altered verdict names the link computed there


def test_swapped_events_are_named_at_the_first_of_them(
    app: BillingApplication, clock: ManualClock, engine: Engine, store: Store
) -> None:
    positions = _chained(app, engine, clock)
    first, second = positions[3], positions[8]
    a, b = store.state(first), store.state(second)
    store.set_state(first, b)
    store.set_state(second, a)
    verdict = verify(app, engine)
    assert (verdict.ok, verdict.position, verdict.problem) == (False, first, "altered")


def test_an_export_verifies_on_its_own_and_a_flipped_byte_is_named_by_line(
    app: BillingApplication, clock: ManualClock, engine: Engine, tmp_path: Path
) -> None:
    _chained(app, engine, clock)
    whole = verify(app, engine)
    path = tmp_path / "all.jsonl"
    with path.open("w") as out:
        done = export(app, out, trial_balance(engine))
    assert (done.count, done.link_before, done.head) == (whole.count, GENESIS.hex(), whole.head)
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["type"] == "trial_balance"
    assert json.loads(lines[-1])["rows"]
    with path.open() as lines_in:
        checked = verify_file(lines_in)
    assert (checked.ok, checked.count, checked.head) == (True, whole.count, whole.head)

    event = json.loads(lines[2])  # line 3 of the file
    state = event["state"]
    flipped = state[:10] + ("A" if state[10] != "A" else "B") + state[11:]
    lines[2] = lines[2].replace(state, flipped)
    checked = verify_file(lines)
    assert (checked.ok, checked.line) == (False, 3)
    assert "line 3" in str(checked)

    lines = path.read_text().splitlines()
    rows = json.loads(lines[-1])
    rows["rows"][0]["debit"] += 1
    lines[-1] = json.dumps(rows)
    assert verify_file(lines).line == len(lines)


def test_an_exported_period_starts_from_the_chain_link_before_it(
    app: BillingApplication, clock: ManualClock, engine: Engine, tmp_path: Path
) -> None:
    start = clock.now() + timedelta(hours=1)
    end = start + timedelta(hours=2)
    positions = _chained(app, engine, clock)
    with engine.connect() as conn:
        links = dict(conn.execute(select(audit_chain.c.position, audit_chain.c.link)).all())
    path = tmp_path / "period.jsonl"
    with path.open("w") as out:
        done = export(app, out, trial_balance(engine), start=start, end=end)
    events = [json.loads(line) for line in path.read_text().splitlines() if '"type":"event"' in line]
    assert 0 < done.count == len(events) < len(positions)
    first, last = events[0]["position"], events[-1]["position"]
    assert done.link_before == links[positions[positions.index(first) - 1]]
    assert done.head == links[last]
    assert all(start.isoformat() <= e["timestamp"] < end.isoformat() for e in events)
    with path.open() as lines_in:
        assert verify_file(lines_in).ok


def test_the_command_line_verifies_exports_and_fails_with_exit_1(
    app: BillingApplication,
    clock: ManualClock,
    engine: Engine,
    store: Store,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    _scenario(app, clock)  # not chained yet: verify chains it first
    assert main(["audit", "verify"]) == 0
    assert capsys.readouterr().out.startswith(f"OK: {len(_positions(app))} events, head ")
    path = tmp_path / "export.jsonl"
    assert main(["audit", "export", str(path)]) == 0
    assert main(["audit", "export", "--from", "2026-03-02T10:00:00Z", "--to", "2026-03-02T11:00:00Z", str(path)]) == 0
    capsys.readouterr()
    assert main(["audit", "verify", "--file", str(path)]) == 0
    assert capsys.readouterr().out.startswith("OK: ")
    path.write_text(path.read_text().replace('"topic":"invoice.', '"topic":"invoicE.', 1))
    assert main(["audit", "verify", "--file", str(path)]) == 1
    assert "line 2" in capsys.readouterr().out
    target = _positions(app)[2]
    store.set_state(target, store.state(target).replace(b'"', b"'", 2))
    assert main(["audit", "verify"]) == 1
    assert f"position {target} altered" in capsys.readouterr().out
    assert main(["audit", "export", str(path)]) == 1


# Each kept link checked on its own before the walk: by the server on PostgreSQL
# (`_first_suspect`), in Python elsewhere (`_scanned_suspect`, the log split between processes).


def _set_link(store: Store, position: int, link: str) -> None:
    store._run("UPDATE audit_chain SET link = :l WHERE position = :p", l=link, p=position)


def _kept_link(store: Store, position: int) -> str:
    with store.engine.connect() as conn:
        return str(conn.execute(select(audit_chain.c.link).where(audit_chain.c.position == position)).scalar_one())


def _swap(store: Store, first: int, second: int) -> None:
    a, b = store.state(first), store.state(second)
    store.set_state(first, b)
    store.set_state(second, a)


def _flip(store: Store, position: int) -> None:
    state = bytearray(store.state(position))
    state[len(state) // 2] ^= 0x01
    store.set_state(position, bytes(state))


def _delete_with_its_link(store: Store, position: int) -> None:
    """An event and its link both gone: the next event's link, made after the gone one's, no
    longer holds after the link before it (the server checks it apart: no link at n - 1)."""
    store.delete(position)
    store._run("DELETE FROM audit_chain WHERE position = :p", p=position)


def _as_text(store: Store, position: int) -> None:
    """The state rewritten, stored as text where the column allows it (SQLite: a TEXT value in
    the BLOB column, which the library's recorder then reads as a str)."""
    state = store.state(position)[:-1] + b',"amount":1}'
    if store.engine.dialect.name == "sqlite":
        store._run(f"UPDATE {store.table} SET state = :s WHERE {store.position} = :p", s=state.decode(), p=position)
    else:
        store.set_state(position, state)


def _delete_and_flip(store: Store, deleted: int, flipped: int) -> None:
    store.delete(deleted)
    _flip(store, flipped)


# Each tampering: what it does (the store, the log's positions) and the problem verify names.
TAMPERING: dict[str, tuple[Callable[[Store, list[int]], None], str | None]] = {
    "altered": (lambda s, p: s.set_state(p[4], s.state(p[4])[:-1] + b',"amount":1}'), "altered"),
    "first altered": (lambda s, p: s.set_state(p[0], s.state(p[0])[:-1] + b',"amount":1}'), "altered"),
    "flipped bit": (lambda s, p: _flip(s, p[-3]), "altered"),
    "state rewritten as text": (lambda s, p: _as_text(s, p[4]), "altered"),
    "topic changed": (
        lambda s, p: s._run(f"UPDATE {s.table} SET topic = topic || 'x' WHERE {s.position} = :p", p=p[7]),
        "altered",
    ),
    "swapped": (lambda s, p: _swap(s, p[3], p[8]), "altered"),
    "deleted": (lambda s, p: s.delete(p[6]), "deleted"),
    "first deleted": (lambda s, p: s.delete(p[0]), "deleted"),
    "last deleted": (lambda s, p: s.delete(p[-1]), "deleted"),
    "deleted with its link": (lambda s, p: _delete_with_its_link(s, p[6]), "altered"),
    "first deleted with its link": (lambda s, p: _delete_with_its_link(s, p[0]), "altered"),
    "deleted above altered": (lambda s, p: _delete_and_flip(s, p[9], p[4]), "altered"),
    "kept link not hex": (lambda s, p: _set_link(s, p[5], "z" * 64), "altered"),
    "kept link in upper case": (lambda s, p: _set_link(s, p[5], _kept_link(s, p[5]).upper()), "altered"),
    "kept link of another event": (lambda s, p: _set_link(s, p[5], _kept_link(s, p[6])), "altered"),
    "untouched": (lambda s, p: None, None),
}


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("case", list(TAMPERING))
def test_the_checked_verdict_is_the_python_walks_for_each_kind_of_tampering(
    case: str, workers: int, app: BillingApplication, clock: ManualClock, engine: Engine, store: Store
) -> None:
    """The same verdict, count, head and detail as the walk from genesis, whichever position
    the check doubted first: the server's on PostgreSQL (a link that is not hex stops it: the
    walk alone), Python's on SQLite, in one process or the log split between two or three
    (ranges that end inside the scenario's commands, some with a tampered row at their edge)."""
    if engine.dialect.name == "postgresql" and workers > 1:
        pytest.skip("the server checks the links on PostgreSQL: no processes of ours")
    positions = _chained(app, engine, clock)
    tamper, problem = TAMPERING[case]
    tamper(store, positions)
    app.create_draft(customer=CUSTOMER, currency="usd")  # one event not chained yet
    verdict = verify(app, engine, batch=4, workers=workers)
    assert verdict == walk_verify(app, engine)
    if case == "last deleted" and engine.dialect.name == "sqlite":
        problem = "altered"  # SQLite gives the new event the last rowid again: another event there
    assert (verdict.ok, verdict.problem) == (problem is None, problem)
    if problem is None:
        assert (verdict.count, verdict.unchained) == (len(positions), 1)


@pytest.mark.parametrize("case", list(TAMPERING))
def test_the_python_check_of_the_links_doubts_what_the_server_doubts(
    case: str, app: BillingApplication, clock: ManualClock, engine: Engine, store: Store
) -> None:
    """SQLite's check (each kept link against the log's row before it) finds the position,
    count and link the server's finds (each against the chain's previous position), in one
    process or several: the two differ only above a deleted event, which both then name."""
    if engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL's server checks the links")
    positions = _chained(app, engine, clock)
    tamper, _ = TAMPERING[case]
    tamper(store, positions)
    app.create_draft(customer=CUSTOMER, currency="usd")
    head, links = _chain_head(engine)
    assert head is not None
    server = _first_suspect(engine, app.events_table_name, head, links)
    for workers in (1, 2, 3):
        python = _scanned_suspect(engine, app.events_table_name, head, links, 4, workers)
        assert python == server or (server is None and case == "kept link not hex"), workers


def test_verify_splits_a_large_log_only_where_a_fork_is_safe(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes for a large log on an idle machine in a process of one thread (both
    faked: the suite itself may run threads), one when the process runs another thread (a fork
    keeps only the calling thread: a lock another held stays held in the child), when the log
    is small, or when the load average cannot be read."""
    if engine.dialect.name != "sqlite" or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("the links are checked in our processes on SQLite, with a core to spare")
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    assert _workers(engine, PARALLEL_FROM, None) == 2
    assert _workers(engine, PARALLEL_FROM - 1, None) == 1
    assert _workers(engine, PARALLEL_FROM, 3) == 3  # asked for
    monkeypatch.setattr(threading, "active_count", lambda: 2)
    assert _workers(engine, PARALLEL_FROM, None) == 1
    monkeypatch.setattr(threading, "active_count", lambda: 1)

    def unreadable() -> tuple[float, float, float]:
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", unreadable)
    assert _workers(engine, PARALLEL_FROM, None) == 1


def test_a_forked_check_answers_its_result_or_none_when_its_process_failed(engine: Engine) -> None:
    """None tells `_scanned_suspect` to check that process's ranges itself."""
    parent = os.getpid()

    def work() -> _Range:
        if os.getpid() != parent:
            raise RuntimeError("the forked process fails")
        return _Range(None, 7, GENESIS)

    assert _in_child(engine, work)() is None
    assert _in_child(engine, lambda: _Range(3, os.getpid() - parent, None))() not in (None, _Range(3, 0, None))


@pytest.mark.parametrize("gaps", [(0,), (0, 5, 6), (1, 2, 3), (4,), (7, 9)])
def test_the_python_check_of_the_links_holds_across_gaps_in_the_log(
    gaps: tuple[int, ...], app: BillingApplication, clock: ManualClock, engine: Engine, store: Store
) -> None:
    """Positions missing from the log before it was chained (a sequence's skips, rows gone):
    each range's first link is checked against the kept link of the log's last row before the
    range, not of the position before it, so an untouched log holds in one process or split
    between two or three, whichever ranges the gaps fall on the edges of (one row a batch up
    to the default)."""
    _scenario(app, clock)
    positions = _positions(app)
    for gap in gaps:
        store.delete(positions[gap])
    audit_chain_runner(app, engine).catch_up()
    count, link = _recomputed(app)
    head, links = _chain_head(engine)
    assert head is not None
    for workers in (1, 2, 3):
        for batch in (1, 3, 1_000):
            python = _scanned_suspect(engine, app.events_table_name, head, links, batch, workers)
            assert (python.position, python.checked, python.link) == (None, count, link), (workers, batch)
            assert verify(app, engine, batch=batch, workers=workers) == Verdict(ok=True, count=count, head=link)


def test_the_server_computes_the_python_links_for_every_topic_and_across_gaps_in_the_log(
    app: BillingApplication, clock: ManualClock, engine: Engine, store: Store
) -> None:
    """On an untouched log the server doubts no event, so its canonical bytes are the Python
    ones for every topic, and the head it returns is the chain recomputed from the library's
    records; also where the log has gaps (positions PostgreSQL's sequence skipped)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no sha256(): its links are checked in Python (the test above)")
    _scenario(app, clock)
    positions = _positions(app)
    store.delete(positions[5])  # gaps before chaining: no link at position n - 1
    store.delete(positions[6])
    store.delete(positions[0])
    audit_chain_runner(app, engine).catch_up()
    topics = {record.topic for record in app.records_after(0, 1_000_000)}
    assert len(topics) >= 5
    head, links = _chain_head(engine)
    assert head is not None
    suspect = _first_suspect(engine, app.events_table_name, head, links)
    assert suspect is not None
    count, link = _recomputed(app)
    assert (suspect.position, suspect.checked, suspect.link) == (None, count, link)
    assert verify(app, engine) == Verdict(ok=True, count=count, head=link)
    after = positions[8]
    store.set_state(after, store.state(after)[:-1] + b',"amount":1}')
    suspect = _first_suspect(engine, app.events_table_name, head, links)
    assert suspect is not None
    assert (suspect.position, suspect.checked) == (after, 5)  # positions 1 to 4 and 7
    assert suspect.link == _kept_link(store, positions[7])

"""Export a period of the log with its place in the audit chain, and check such a file alone.

The file is JSON Lines:

    line 1       {"type": "header", ..., "link_before": <hex>}  the chain link before the first event
    lines 2..    {"type": "event", "position", "originator_id", "originator_version", "topic",
                  "timestamp", "state": <base64 of the stored bytes>, "link": <hex>}
    then         {"type": "head", "head": <hex>, "count": N}    the chain head after the last event
    last         {"type": "trial_balance", "rows": [...], "seal": <hex>}

Each event line carries its own link, so `verify_file` names the first line that does not follow
from the one before. The seal is sha256(head || the rows, as canonical JSON): the trial balance
cannot change without it showing. The period is by event timestamp and is one contiguous stretch
of the log (the chain needs it whole): from the first event stamped at or after `start` up to,
not including, the first one stamped at or after `end`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from projections.audit_chain import GENESIS, RawLog, Record, canonical, next_link, records
from projections.queries import BalanceRow

FORMAT = "ledger-audit-export"


@dataclass(frozen=True)
class Exported:
    count: int
    link_before: str
    head: str


@dataclass(frozen=True)
class FileVerdict:
    ok: bool
    count: int
    head: str
    line: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"OK: {self.count} events, head {self.head}"
        return f"FAILED: line {self.line}: {self.detail}"


def export(
    log: RawLog,
    out: IO[str],
    balances: Iterable[BalanceRow],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Exported:
    """Write the events stamped in [start, end) and their chain links to `out` (JSON Lines)."""
    link = GENESIS
    link_before: bytes | None = None
    count = 0
    for record in records(log):
        stamped = timestamp(record)
        started = link_before is not None or start is None or (stamped is not None and stamped >= start)
        if started and end is not None and stamped is not None and stamped >= end:
            break
        if started and link_before is None:
            link_before = link
            _write(out, _header(start, end, link_before))
        link = next_link(link, record)
        if link_before is not None:
            count += 1
            _write(out, _event_line(record, stamped, link))
    if link_before is None:
        link_before = link
        _write(out, _header(start, end, link_before))
    _write(out, {"type": "head", "head": link.hex(), "count": count})
    rows = [{"currency": b.currency, "account": b.account, "debit": b.debit, "credit": b.credit} for b in balances]
    _write(out, {"type": "trial_balance", "rows": rows, "seal": _seal(link.hex(), rows)})
    return Exported(count=count, link_before=link_before.hex(), head=link.hex())


def verify_file(lines: Iterable[str]) -> FileVerdict:
    """Recompute the chain from the file's own events, from its recorded link-before."""
    link = b""
    count = 0
    seen_head: str | None = None
    number = 0
    for number, text in enumerate(lines, start=1):
        try:
            line = json.loads(text)
            kind = line["type"]
            if number == 1:
                if kind != "header" or line.get("format") != FORMAT:
                    return _bad(count, link, number, "not an audit export header")
                link = bytes.fromhex(line["link_before"])
                if len(link) != len(GENESIS):
                    return _bad(count, link, number, "link_before is not a SHA-256 link")
            elif kind == "event" and seen_head is None:
                state = base64.b64decode(line["state"], validate=True)
                body = canonical(
                    int(line["position"]),
                    str(line["originator_id"]),
                    int(line["originator_version"]),
                    str(line["topic"]),
                    state,
                )
                link = hashlib.sha256(link + body).digest()
                if link.hex() != line["link"]:
                    return _bad(count, link, number, "event does not follow from the chain before it (altered)")
                count += 1
            elif kind == "head" and seen_head is None:
                if line["head"] != link.hex() or int(line["count"]) != count:
                    return _bad(count, link, number, "recorded head or count does not match the events")
                seen_head = link.hex()
            elif kind == "trial_balance" and seen_head is not None:
                if line["seal"] != _seal(seen_head, line["rows"]):
                    return _bad(count, link, number, "trial balance does not match its seal")
                return FileVerdict(ok=True, count=count, head=seen_head)
            else:
                return _bad(count, link, number, f"unexpected {kind!r} line here")
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            return _bad(count, link, number, f"unreadable line ({type(error).__name__}: {error})")
    return _bad(count, link, number + 1, "file ends early (no head and trial balance after the events)")


def timestamp(record: Record) -> datetime | None:
    """The event's own timestamp, read from its stored JSON (None if it has none we can read)."""
    try:
        data = json.loads(record.state)
        value = data["timestamp"]
        text = value["_data_"] if isinstance(value, dict) else value
        moment = datetime.fromisoformat(text)
    except (ValueError, KeyError, TypeError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _header(start: datetime | None, end: datetime | None, link_before: bytes) -> dict[str, Any]:
    return {
        "type": "header",
        "format": FORMAT,
        "version": 1,
        "from": start.isoformat() if start else None,
        "to": end.isoformat() if end else None,
        "exported_at": datetime.now(tz=UTC).isoformat(),
        "link_before": link_before.hex(),
    }


def _event_line(record: Record, stamped: datetime | None, link: bytes) -> dict[str, Any]:
    state = record.state if isinstance(record.state, bytes) else bytes(record.state)
    return {
        "type": "event",
        "position": record.id,
        "originator_id": str(record.originator_id),
        "originator_version": record.originator_version,
        "topic": record.topic,
        "timestamp": stamped.isoformat() if stamped else None,
        "state": base64.b64encode(state).decode("ascii"),
        "link": link.hex(),
    }


def _seal(head: str, rows: Any) -> str:
    body = json.dumps(rows, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(bytes.fromhex(head) + body.encode()).hexdigest()


def _write(out: IO[str], line: dict[str, Any]) -> None:
    out.write(json.dumps(line, separators=(",", ":")) + "\n")


def _bad(count: int, link: bytes, number: int, detail: str) -> FileVerdict:
    return FileVerdict(ok=False, count=count, head=link.hex(), line=number, detail=detail)

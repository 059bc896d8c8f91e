"""A local SMTP server that keeps every message it receives as a file: the demo's mailbox.

`make demo` (and `ledger mail capture` on its own) runs it on loopback so the ledger's emails
can be read without sending anything anywhere. Each message is written as it arrived, byte for
byte, to `<folder>/<received>-<n>.eml` (any mail reader opens it; `python -m email` or a text
editor shows the source), and one line per message is appended to `<folder>/index.jsonl`:
when it arrived, the file, the envelope's sender and recipients, the Subject and Message-ID.
The file is complete before its index line exists (written beside it, then renamed), so a
reader of the index never finds half a message.

aiosmtpd serves SMTP in a thread of its own (its `Controller`); port 0 takes a free port, read
back from the listening socket once it is bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

DEFAULT_FOLDER = Path("var") / "demo-mail"
INDEX = "index.jsonl"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Captured:
    """One message the capture server received (a line of its index)."""

    received_at: str
    file: str  # the .eml file's name, in the folder
    mail_from: str
    rcpt_tos: list[str]
    subject: str
    message_id: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "received_at": self.received_at,
            "file": self.file,
            "mail_from": self.mail_from,
            "rcpt_tos": self.rcpt_tos,
            "subject": self.subject,
            "message_id": self.message_id,
        }


class _KeepMessages:
    """aiosmtpd's handler: every message accepted and written to the folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._count = len(captured(folder))

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if isinstance(content, str):  # only with decode_data=True, which we never set
            content = content.encode("utf-8")
        kept = self.keep(content, str(envelope.mail_from or ""), [str(r) for r in envelope.rcpt_tos])
        return f"250 OK: kept as {kept.file}"

    def keep(self, content: bytes, mail_from: str, rcpt_tos: list[str]) -> Captured:
        headers = message_from_bytes(content, policy=policy.default)
        now = datetime.now(tz=UTC)
        with self._lock:
            self._count += 1
            name = f"{now.strftime('%Y%m%dT%H%M%S')}-{self._count:05d}.eml"
            partial = self.folder / f".{name}.partial"
            partial.write_bytes(content)
            os.replace(partial, self.folder / name)
            kept = Captured(
                received_at=now.isoformat(),
                file=name,
                mail_from=mail_from,
                rcpt_tos=rcpt_tos,
                subject=str(headers.get("Subject", "")),
                message_id=str(headers.get("Message-ID", "")),
            )
            with (self.folder / INDEX).open("a", encoding="utf-8") as index:
                index.write(json.dumps(kept.as_dict(), ensure_ascii=False) + "\n")
        return kept


class _AnyPortController(Controller):
    """aiosmtpd's threaded controller, able to listen on a port the system picks (port 0)."""

    def _trigger_server(self) -> None:
        if self.port == 0 and isinstance(self.server, asyncio.Server):  # bound by now: read the port back
            self.port = int(self.server.sockets[0].getsockname()[1])
        super()._trigger_server()  # type: ignore[no-untyped-call]  # aiosmtpd's own, untyped


class CaptureServer:
    """An SMTP server on loopback keeping each message in `folder` (see the module docstring)."""

    def __init__(self, folder: Path = DEFAULT_FOLDER, *, host: str = HOST, port: int = 0) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._handler = _KeepMessages(folder)
        self._controller = _AnyPortController(self._handler, hostname=host, port=port)

    def start(self) -> CaptureServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> CaptureServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def url(self) -> str:
        """What LEDGER_SMTP_URL should say to send here (plain SMTP: it is loopback only)."""
        return f"smtp://{self._controller.hostname}:{self.port}"

    def messages(self) -> list[Captured]:
        return captured(self.folder)


def captured(folder: Path) -> list[Captured]:
    """The messages kept in `folder`, oldest first (none when it holds no index yet)."""
    index = folder / INDEX
    if not index.exists():
        return []
    rows = [json.loads(line) for line in index.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Captured(**row) for row in rows]


def add_command(mail: Any) -> None:
    """`ledger mail capture [--port N] [--dir D]` under `ledger mail` (argparse subparsers)."""
    capture = mail.add_parser("capture", help="run a local SMTP server that keeps each message as an .eml file")
    capture.add_argument("--port", type=int, default=2525, help="the port on 127.0.0.1 (default 2525; 0: any free)")
    capture.add_argument(
        "--dir", type=Path, default=DEFAULT_FOLDER, help=f"where to keep them (default {DEFAULT_FOLDER})"
    )
    capture.set_defaults(run=_capture)


def _capture(args: argparse.Namespace) -> int:
    server = CaptureServer(args.dir, port=args.port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signal, _frame: stop.set())
    print(f"capturing mail on {server.url} into {args.dir}/ (Ctrl-C to stop)")
    print(f"  point the ledger at it: LEDGER_SMTP_URL={server.url}", flush=True)
    seen = len(server.messages())
    try:
        while not stop.wait(0.5):
            for kept in server.messages()[seen:]:
                print(f"  {kept.received_at}  {kept.file}  to {', '.join(kept.rcpt_tos)}: {kept.subject}", flush=True)
                seen += 1
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0

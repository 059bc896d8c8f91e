"""A real SMTP server for the tests: aiosmtpd's Controller on 127.0.0.1, on a free port.

`MailServer` keeps every message it accepts (`messages`, parsed with policy.default), answers
DATA with a queue id ("250 2.0.0 Ok: queued as Q1"), can refuse recipients (`refuse(address)`:
550 on RCPT) or put them off (`defer(address)`: 451) and can be down (`stop()`; `start()` brings
it back on the same port). The `mail_server` fixture (tests/conftest.py) gives a fresh one,
started, per test.
"""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self.server = server

    async def handle_RCPT(self, _server: Any, _session: Any, envelope: Any, address: str, _options: list[str]) -> str:
        if address.lower() in self.server.refused:
            return "550 5.1.1 <" + address + ">: Recipient address rejected: User unknown"
        if address.lower() in self.server.deferred:
            return "451 4.3.0 <" + address + ">: Temporary lookup failure, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        with self.server.lock:
            self.server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
            count = len(self.server.envelopes)
        return f"250 2.0.0 Ok: queued as Q{count}"


class MailServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.refused: set[str] = set()
        self.deferred: set[str] = set()
        self.envelopes: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://{HOST}:{self.port}?timeout=5"

    def start(self) -> None:
        if self._controller is None:
            self._controller = Controller(_Handler(self), hostname=HOST, port=self.port)
            self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def refuse(self, address: str) -> None:
        """Answer RCPT for `address` with 550 (a bounce)."""
        self.refused.add(address.lower())

    def defer(self, address: str) -> None:
        """Answer RCPT for `address` with 451 (try again later), until `deferred` is cleared."""
        self.deferred.add(address.lower())

    @property
    def messages(self) -> list[EmailMessage]:
        with self.lock:
            raw = [content for _, _, content in self.envelopes]
        parsed: list[EmailMessage] = []
        for content in raw:
            message = message_from_bytes(content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed

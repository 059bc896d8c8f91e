"""A real SMTP server for the tests: aiosmtpd's Controller on 127.0.0.1, on a free port.

`MailServer` keeps every message it accepts (`messages`, parsed with policy.default), answers
DATA with a queue id ("250 2.0.0 Ok: queued as Q1"), can refuse recipients (`refuse(address)`:
550 on RCPT) or put them off (`defer(address)`: 451) and can be down (`stop()`; `start()` brings
it back on the same port). The `mail_server` fixture (tests/conftest.py) gives a fresh one,
started, per test.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

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

    async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
        with self.server.lock:
            self.server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
            self.server.sessions.append({"tls": session.ssl is not None, "login": session.auth_data})
            count = len(self.server.envelopes)
        return f"250 2.0.0 Ok: queued as Q{count}"


class MailServer:
    """`tls_context`: offer STARTTLS with it; `credentials`: (user, password) that AUTH must give
    (over TLS, as aiosmtpd insists)."""

    def __init__(
        self,
        port: int | None = None,
        *,
        tls_context: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.tls_context = tls_context
        self.credentials = credentials
        self.sessions: list[dict[str, Any]] = []  # per message: {"tls": bool, "login": the user or None}
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
            options: dict[str, Any] = {}
            if self.tls_context is not None:
                options["tls_context"] = self.tls_context
            if self.credentials is not None:
                options.update(authenticator=self._authenticate, auth_required=True)
            self._controller = Controller(_Handler(self), hostname=HOST, port=self.port, **options)
            self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def _authenticate(self, _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
        if not isinstance(data, LoginPassword) or self.credentials is None:
            return AuthResult(success=False, handled=False)
        given = (data.login.decode(), data.password.decode())
        # handled=False: aiosmtpd answers a failure with its 535 (handled=True would answer nothing)
        return AuthResult(success=given == self.credentials, handled=False, auth_data=given[0])

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


def self_signed_tls(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext] | None:
    """A server context with a certificate for 127.0.0.1 made by the openssl command, and a
    client context that trusts it; None when openssl is not installed."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))

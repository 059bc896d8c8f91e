"""LEDGER_SMTP_URL: where invoice emails are handed over, and how.

    smtp://[user:password@]host[:port]                  STARTTLS when the server offers it (port 25)
    smtp://[user:password@]host[:port]?starttls=required  STARTTLS or nothing: no mail in the clear
    smtps://[user:password@]host[:port]                 TLS from the first byte (port 465)

The user and password are percent-decoded (`%40` for an `@` in a user name). `?timeout=SECONDS`
bounds every step of the conversation (default 30). Anything else is a ConfigurationError naming
the variable. The password is never shown: not in errors, not in the parsed value's repr.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from adapters.persistence import ConfigurationError

VARIABLE = "LEDGER_SMTP_URL"

# How the connection is protected.
STARTTLS_IF_OFFERED = "starttls"
STARTTLS_REQUIRED = "starttls-required"
IMPLICIT_TLS = "tls"

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
DEFAULT_TIMEOUT_SECONDS = 30.0
MAX_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: str  # STARTTLS_IF_OFFERED, STARTTLS_REQUIRED or IMPLICIT_TLS
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    def __str__(self) -> str:
        """The URL without the password, for logs and messages."""
        scheme = "smtps" if self.security == IMPLICIT_TLS else "smtp"
        user = f"{self.username}:***@" if self.username else ""
        query = "?starttls=required" if self.security == STARTTLS_REQUIRED else ""
        return f"{scheme}://{user}{self.host}:{self.port}{query}"


def parse_smtp_url(url: str, *, variable: str = VARIABLE) -> SmtpServer:
    """The server an SMTP URL names; ConfigurationError (naming `variable`) for anything else."""

    def refuse(why: str) -> ConfigurationError:
        return ConfigurationError(f"{variable} {why}: expected smtp://[user:password@]host[:port][?starttls=required]")

    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise refuse("has an invalid port") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise refuse(f"has the scheme {parts.scheme or '(none)'!r}, not smtp or smtps")
    if not parts.hostname:
        raise refuse("names no host")
    if parts.path not in ("", "/") or parts.fragment:
        raise refuse("has a path or fragment")
    security = IMPLICIT_TLS if parts.scheme == "smtps" else STARTTLS_IF_OFFERED
    timeout = DEFAULT_TIMEOUT_SECONDS
    try:
        options = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise refuse("has a malformed query") from None
    for name, value in options:
        if name == "starttls" and value == "required" and security != IMPLICIT_TLS:
            security = STARTTLS_REQUIRED
        elif name == "timeout":
            timeout = _timeout(value, refuse)
        else:
            raise refuse(f"has an option it does not know ({name}={value})")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise refuse("has a password without a user")
    return SmtpServer(
        host=parts.hostname,
        port=port if port is not None else DEFAULT_PORTS[parts.scheme],
        security=security,
        username=username,
        password=password,
        timeout=timeout,
    )


def _timeout(value: str, refuse: Callable[[str], ConfigurationError]) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_TIMEOUT_SECONDS:  # also refuses nan and inf
        raise refuse(f"has timeout={value!r}: seconds above 0, at most {MAX_TIMEOUT_SECONDS:g}")
    return seconds

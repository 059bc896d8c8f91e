"""LEDGER_SMTP_URL: the forms it takes, and clear refusals that never show the password."""

from __future__ import annotations

import pytest

from adapters.mail.smtp_url import (
    IMPLICIT_TLS,
    STARTTLS_IF_OFFERED,
    STARTTLS_REQUIRED,
    SmtpServer,
    parse_smtp_url,
)
from adapters.persistence import ConfigurationError


def test_smtp_uses_starttls_when_offered_on_port_25_by_default() -> None:
    assert parse_smtp_url("smtp://mail.example.com") == SmtpServer("mail.example.com", 25, STARTTLS_IF_OFFERED)


def test_starttls_required_insists_on_it() -> None:
    server = parse_smtp_url("smtp://mail.example.com:587?starttls=required")
    assert (server.port, server.security) == (587, STARTTLS_REQUIRED)


def test_smtps_is_implicit_tls_on_port_465() -> None:
    server = parse_smtp_url("smtps://mail.example.com")
    assert (server.port, server.security) == (465, IMPLICIT_TLS)


def test_user_and_password_are_percent_decoded() -> None:
    server = parse_smtp_url("smtps://billing%40acme.example:p%40ss%3Aw0rd@mail.example.com:2465")
    assert (server.username, server.password, server.port) == ("billing@acme.example", "p@ss:w0rd", 2465)


def test_a_timeout_can_be_given() -> None:
    assert parse_smtp_url("smtp://localhost:2525?timeout=2.5").timeout == 2.5


def test_the_password_is_never_shown() -> None:
    server = parse_smtp_url("smtp://ann:hunter2@mail.example.com")
    assert "hunter2" not in repr(server)
    assert "hunter2" not in str(server)
    assert str(server) == "smtp://ann:***@mail.example.com:25"


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.com",
        "mail.example.com:25",
        "smtp://",
        "smtp://mail.example.com:notaport",
        "smtp://mail.example.com:99999",
        "smtp://mail.example.com/path",
        "smtp://mail.example.com?starttls=maybe",
        "smtp://mail.example.com?tls=1",
        "smtp://mail.example.com?timeout=0",
        "smtp://mail.example.com?timeout=nan",
        "smtp://:secret@mail.example.com",
    ],
)
def test_anything_else_is_refused_naming_the_variable(url: str) -> None:
    with pytest.raises(ConfigurationError, match="LEDGER_SMTP_URL") as refused:
        parse_smtp_url(url)
    assert "secret" not in str(refused.value)


def test_a_refusal_does_not_echo_a_password() -> None:
    with pytest.raises(ConfigurationError) as refused:
        parse_smtp_url("smtpx://ann:hunter2@mail.example.com")
    assert "hunter2" not in str(refused.value)

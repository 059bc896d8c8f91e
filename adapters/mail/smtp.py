"""Hand one message to an SMTP server (smtplib) and say how it went, in three outcomes:

- ACCEPTED: the server took the message (its reply, e.g. "250 OK" or "250 2.0.0 Ok: queued as
  4Q2x..", names its queue id when it gives one);
- BOUNCED: the server refused the recipient or the message for good (5xx on RCPT or DATA), or
  the address cannot travel over SMTP without SMTPUTF8 (not ASCII; no code then): sending it
  again cannot help;
- FAILED: it did not get through this time (connection refused, timeout, TLS or login failure,
  4xx): worth retrying later.

Nothing above this module sees an smtplib or socket exception: every one becomes an outcome.
STARTTLS is used whenever the server offers it; with `?starttls=required` a server that does not
offer it gets no message at all (FAILED, saying so). Every step is bounded by the URL's timeout.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import getaddresses

from adapters.mail.smtp_url import IMPLICIT_TLS, STARTTLS_REQUIRED, SmtpServer

ACCEPTED = "accepted"
BOUNCED = "bounced"
FAILED = "failed"


@dataclass(frozen=True)
class Delivery:
    """How handing one message over went."""

    outcome: str  # ACCEPTED, BOUNCED or FAILED
    reply: str  # the server's answer ("250 OK"), or what went wrong
    code: int | None = None  # the SMTP reply code, when the server answered


class _Refused(Exception):
    def __init__(self, code: int, reply: str, step: str) -> None:
        super().__init__(f"{step}: {code} {reply}")
        self.code = code
        self.reply = reply
        self.step = step


class SmtpSender:
    """Sends each message on a connection of its own (a worker sends a few an hour, not a stream)."""

    def __init__(self, server: SmtpServer, *, tls_context: ssl.SSLContext | None = None) -> None:
        self.server = server
        self._tls = tls_context or ssl.create_default_context()

    def send(self, message: EmailMessage) -> Delivery:
        sender = _address(message, "From")
        recipients = [address for _, address in getaddresses(message.get_all("To", []) + message.get_all("Cc", []))]
        if not sender or not recipients:
            return Delivery(FAILED, "the message has no sender or no recipient")
        for address in (sender, *recipients):
            why = unsendable(address)
            if why is not None:
                return Delivery(BOUNCED, why)
        try:
            smtp = self._connect()
            try:  # not `with`: its QUIT could turn an accepted message into an error
                refusal = self._secure_and_log_in(smtp)
                if refusal is not None:
                    return refusal
                return self._transfer(smtp, sender, recipients, message)
            finally:
                smtp.close()
        except _Refused as refused:
            outcome = BOUNCED if refused.code >= 500 and refused.step in ("RCPT", "DATA") else FAILED
            return Delivery(outcome, f"{refused.step} refused: {refused.code} {refused.reply}", refused.code)
        except smtplib.SMTPResponseException as error:
            return Delivery(FAILED, f"{error.smtp_code} {_text(error.smtp_error)}", error.smtp_code)
        except (smtplib.SMTPException, OSError) as error:  # refused, reset, timed out, TLS, DNS
            return Delivery(FAILED, f"{self.server.host}:{self.server.port}: {_describe(error)}")

    def _connect(self) -> smtplib.SMTP:
        server = self.server
        if server.security == IMPLICIT_TLS:
            return smtplib.SMTP_SSL(server.host, server.port, timeout=server.timeout, context=self._tls)
        return smtplib.SMTP(server.host, server.port, timeout=server.timeout)

    def _secure_and_log_in(self, smtp: smtplib.SMTP) -> Delivery | None:
        smtp.ehlo()
        if self.server.security != IMPLICIT_TLS:
            if smtp.has_extn("starttls"):
                smtp.starttls(context=self._tls)
                smtp.ehlo()
            elif self.server.security == STARTTLS_REQUIRED:
                return Delivery(
                    FAILED,
                    f"{self.server.host}:{self.server.port} does not offer STARTTLS, and LEDGER_SMTP_URL requires it "
                    "(?starttls=required): nothing was sent",
                )
        if self.server.username:
            smtp.login(self.server.username, self.server.password or "")
        return None

    def _transfer(self, smtp: smtplib.SMTP, sender: str, recipients: list[str], message: EmailMessage) -> Delivery:
        """MAIL, RCPT and DATA one by one (not sendmail): DATA's reply carries the queue id."""
        code, reply = smtp.mail(sender)
        if code != 250:
            raise _Refused(code, _text(reply), "MAIL FROM")
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                raise _Refused(code, _text(reply), "RCPT")
        # smtplib passes bytes through as they are: the lines must end in CRLF already.
        code, reply = smtp.data(message.as_bytes(policy=message.policy.clone(linesep="\r\n")))
        if code != 250:
            raise _Refused(code, _text(reply), "DATA")
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()  # the message was accepted; how the goodbye went does not matter
        return Delivery(ACCEPTED, f"{code} {_text(reply)}", code)


def unsendable(address: str) -> str | None:
    """Why SMTP cannot carry the address, or None. Without SMTPUTF8 (which this mailer does not
    use) only ASCII addresses travel; and the ledger takes any text with one @ as a customer's
    address ("ann,bob@example.com"), which no To header can hold (the email package refuses it).
    No retry changes either, so it is a bounce."""
    if not address.isascii():
        return f"{address} is not an ASCII address (it would need SMTPUTF8, which this mailer does not use)"
    try:
        Address(addr_spec=address)
    except (ValueError, IndexError, HeaderParseError):
        return f"{address} is not an address a message can be sent to (RFC 5322)"
    return None


def _address(message: EmailMessage, header: str) -> str:
    found = getaddresses(message.get_all(header, []))
    return found[0][1] if found else ""


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__

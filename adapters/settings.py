"""Settings: read from the environment (and an optional .env file) here and nowhere else.

The process environment wins over .env, which only fills in what is unset. Settings that
cannot work (a dunning schedule that cannot be followed) are refused here, at start, with the
variable's name in the message.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from adapters.persistence import DATABASE_TIMEOUT_SECONDS, ConfigurationError
from commands.portal.tokens import WeakSecretKeyError, require_secret
from ledger.dunning.policy import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_SCHEDULE,
    DunningPolicy,
    parse_max_attempts,
    parse_schedule,
)
from ledger.errors import InvalidDunningPolicyError, InvalidTextError
from ledger.seller import Seller

DEFAULT_DATABASE_URL = "sqlite:///var/ledger.sqlite3"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    api_token: str | None = None
    secret_key: str | None = None
    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    smtp_url: str | None = None  # LEDGER_SMTP_URL: smtp://[user:password@]host:port[?starttls=required], smtps://
    mail_from: str | None = None  # LEDGER_MAIL_FROM: the sender of invoice emails
    mail_on_issue: bool = False  # LEDGER_MAIL_ON_ISSUE=1: email each invoice to its customer when it is issued
    # LEDGER_SELLER_NAME, _ADDRESS (lines separated by "|"), _EMAIL, _TAX_ID, LEDGER_PAYMENT_INSTRUCTIONS
    seller: Seller = field(default_factory=Seller)
    # LEDGER_PDF_FONT_DIR: where DejaVuSans.ttf and DejaVuSans-Bold.ttf are; None: fonts-dejavu-core's directory.
    pdf_font_dir: Path | None = None
    public_url: str | None = None  # where customers reach us: Stripe Checkout's success/cancel pages
    dunning: DunningPolicy = field(default_factory=DunningPolicy.parse)  # LEDGER_DUNNING_SCHEDULE, _MAX_ATTEMPTS
    # LEDGER_DATABASE_TIMEOUT: how long a request waits for a database that does not answer.
    database_timeout: float = DATABASE_TIMEOUT_SECONDS
    # LEDGER_FOLLOW_IN_PROCESS=0: `ledger serve` keeps no read models up to date itself; run
    # `ledger project --follow` beside it (docs/throughput.md: the pair costs less CPU per webhook).
    follow_in_process: bool = True

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, dotenv_path: Path | None = Path(".env")
    ) -> Settings:
        values: dict[str, str | None] = {}
        if dotenv_path is not None and dotenv_path.is_file():
            values.update(dotenv_values(dotenv_path))
        values.update(os.environ if environ is None else environ)

        def get(name: str) -> str | None:
            value = values.get(name)
            return value if value else None

        return cls(
            database_url=get("LEDGER_DATABASE_URL") or DEFAULT_DATABASE_URL,
            api_token=get("LEDGER_API_TOKEN"),
            secret_key=_secret_key(get("LEDGER_SECRET_KEY")),
            stripe_api_key=get("STRIPE_API_KEY"),
            stripe_webhook_secret=get("STRIPE_WEBHOOK_SECRET"),
            stripe_api_base=get("STRIPE_API_BASE"),
            smtp_url=get("LEDGER_SMTP_URL"),
            mail_from=get("LEDGER_MAIL_FROM"),
            mail_on_issue=_flag("LEDGER_MAIL_ON_ISSUE", get("LEDGER_MAIL_ON_ISSUE")),
            seller=_seller(get),
            pdf_font_dir=Path(font_dir) if (font_dir := get("LEDGER_PDF_FONT_DIR")) else None,
            public_url=get("LEDGER_PUBLIC_URL"),
            dunning=_dunning_policy(get("LEDGER_DUNNING_SCHEDULE"), get("LEDGER_DUNNING_MAX_ATTEMPTS")),
            database_timeout=_seconds(
                "LEDGER_DATABASE_TIMEOUT", get("LEDGER_DATABASE_TIMEOUT"), DATABASE_TIMEOUT_SECONDS
            ),
            follow_in_process=_flag("LEDGER_FOLLOW_IN_PROCESS", get("LEDGER_FOLLOW_IN_PROCESS") or "1"),
        )


def _dunning_policy(schedule: str | None, max_attempts: str | None) -> DunningPolicy:
    try:
        steps = parse_schedule(schedule or DEFAULT_SCHEDULE)
    except InvalidDunningPolicyError as error:
        raise InvalidDunningPolicyError(f"LEDGER_DUNNING_SCHEDULE: {error}") from None
    try:
        attempts = parse_max_attempts(max_attempts or DEFAULT_MAX_ATTEMPTS)
    except InvalidDunningPolicyError as error:
        raise InvalidDunningPolicyError(f"LEDGER_DUNNING_MAX_ATTEMPTS: {error}") from None
    return DunningPolicy(steps, attempts)


def _secret_key(value: str | None) -> str | None:
    """The portal's signing secret, refused at start when it is too short to be one."""
    if value is None:
        return None
    try:
        return require_secret(value)
    except WeakSecretKeyError as error:
        raise ConfigurationError(str(error)) from None


def _flag(name: str, value: str | None) -> bool:
    if value is None:
        return False
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be 1 or 0 (true or false): {value!r}")


def _seller(get: Callable[[str], str | None]) -> Seller:
    address = get("LEDGER_SELLER_ADDRESS")
    try:
        return Seller(
            name=get("LEDGER_SELLER_NAME") or Seller.name,
            address=tuple(line.strip() for line in address.split("|") if line.strip()) if address else (),
            email=get("LEDGER_SELLER_EMAIL") or "",
            tax_id=get("LEDGER_SELLER_TAX_ID") or "",
            payment_instructions=get("LEDGER_PAYMENT_INSTRUCTIONS") or "",
        )
    except InvalidTextError as error:
        raise ConfigurationError(f"LEDGER_SELLER_*: {error}") from None


def _seconds(name: str, value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:  # also refuses nan and inf
        raise ConfigurationError(f"{name} must be a number of seconds above 0 (at most 3600): {value!r}")
    return seconds

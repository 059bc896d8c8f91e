"""`ledger serve`: the web application composed from the settings and served by uvicorn.

Each uvicorn worker process builds its own application (`asgi_app`, the factory uvicorn
imports) with its own event-store connections and an in-process projection follower (none with
LEDGER_FOLLOW_IN_PROCESS=0: `ledger project --follow` runs beside them); workers
share the database, and the projection runner's transactions keep them from applying a batch
twice. On SQLite one writer at a time is the database's own rule: use 1 worker there.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from adapters.admin.sessions import SessionStore
from adapters.bootstrap import bootstrap
from adapters.clock import SystemClock
from adapters.mail.triggers import MailLoop, mail_triggers
from adapters.mail.worker import mail_worker
from adapters.persistence import ConfigurationError, database_probe
from adapters.read_models import InProcessProjections, invoice_version_index, read_model_engine
from adapters.reconciliation import records_for
from adapters.settings import Settings
from adapters.stripe import StripePaymentProvider
from adapters.stripe.webhooks import StripeWebhookVerifier
from commands.application import BillingApplication
from ledger.reconciliation.runs import LEDGER, STRIPE
from web.app import create_app
from web.services import STRIPE_CHECKOUT_ORIGIN, Services

log = logging.getLogger("ledger.serve")
T = TypeVar("T")
SETUP_ATTEMPTS = 10


def build_app(settings: Settings | None = None, *, follow: bool = True) -> Starlette:
    settings = settings or Settings.from_environment()
    if not settings.api_token:
        raise ConfigurationError("set LEDGER_API_TOKEN: every /api request must carry it as a bearer token")
    clock = SystemClock()
    payments = _payments(settings)
    app = _with_retries(lambda: bootstrap(settings, clock=clock, payments=lambda: payments))
    engine = read_model_engine(settings.database_url, settings.database_timeout)
    read_models = _with_retries(lambda: InProcessProjections(app, engine, settings.database_url))
    # Invoice as of a moment from the invoice_versions read model (its tables made just above):
    # a first call in this process costs what any call does (docs/throughput.md, As of).
    app.use_version_index(invoice_version_index(app, engine))
    services = Services(
        app=app,
        read_models=read_models,
        clock=clock,
        api_token=settings.api_token,
        inline_reads=settings.database_url.startswith("sqlite"),
        payments=payments,
        public_url=settings.public_url,
        webhooks=StripeWebhookVerifier(settings.stripe_webhook_secret) if settings.stripe_webhook_secret else None,
        database_up=database_probe(settings.database_url, settings.database_timeout),
        records=records_for(settings, STRIPE if settings.stripe_api_key else LEDGER),
        dunning_policy=settings.dunning,
        # The dashboard's sessions live beside the read models (not rebuilt from the log).
        admin_sessions=SessionStore(engine, clock=clock),
        seller=settings.seller,
        pdf_font_dir=settings.pdf_font_dir,
        secret_key=settings.secret_key,
        checkout_origins=_checkout_origins(settings),
    )

    mail = _mail(app, engine, settings, read_models)  # a bad LEDGER_SMTP_URL is refused here, at start

    def start() -> None:
        if follow and settings.follow_in_process:
            read_models.start()
        if follow and mail is not None:
            mail.start()

    def stop() -> None:
        if mail is not None:
            mail.stop()
        read_models.stop()
        engine.dispose()
        app.close()
        if payments is not None:
            payments.close()

    return create_app(services, on_startup=start, on_shutdown=stop)


def _mail(
    app: BillingApplication, engine: Engine, settings: Settings, read_models: InProcessProjections
) -> MailLoop | None:
    """The mail triggers and worker on a thread of this process, when LEDGER_SMTP_URL is set
    (adapters/mail/triggers.py); each worker process runs its own, and the email's claim keeps
    them from sending one twice."""
    if not settings.smtp_url:
        return None
    worker = mail_worker(app, engine, settings, catch_up=read_models.catch_up)
    triggers = mail_triggers(app, engine, on_issue=settings.mail_on_issue)
    return MailLoop(triggers.run_once, worker.run_once)


def _payments(settings: Settings) -> StripePaymentProvider | None:
    """Stripe when STRIPE_API_KEY is set; without it checkout answers 503 "not configured"."""
    if not settings.stripe_api_key:
        return None
    return StripePaymentProvider(settings.stripe_api_key, api_base=settings.stripe_api_base)


def _checkout_origins(settings: Settings) -> tuple[str, ...]:
    """Stripe's hosted checkout, and the origin of a stand-in Stripe (STRIPE_API_BASE), whose
    sessions' pages are there."""
    if not settings.stripe_api_base:
        return (STRIPE_CHECKOUT_ORIGIN,)
    parts = urlsplit(settings.stripe_api_base)
    return (STRIPE_CHECKOUT_ORIGIN, f"{parts.scheme}://{parts.netloc}")


def asgi_app() -> Starlette:
    """uvicorn's factory (`adapters.web_server:asgi_app`), one call per worker process."""
    return frozen_after_start(build_app())


def frozen_after_start(app: T) -> T:
    """`app`, with what the worker has built by now moved out of the garbage collector's view.

    What a worker builds before it serves (modules, the Stripe SDK, SQLAlchemy's and the
    application's objects: about 175,000 of a served worker's 250,000) lives as long as the
    process. One collection first, so that no garbage is kept; then `gc.freeze()`, so that a full
    collection walks only what serving made since. Measured on the webhook bench (PostgreSQL):
    full collections while serving took up to 80-116 ms before, a pause every request in flight
    waits out, and 7-19 ms after (docs/throughput.md). Every factory that serves the application
    calls this (the bench's too), so that what is measured is what `ledger serve` runs."""
    gc.collect()
    gc.freeze()
    return app


def serve(host: str, port: int, workers: int, settings: Settings) -> None:
    if workers > 1 and settings.database_url.startswith("sqlite"):
        log.warning("SQLite has one writer at a time: %d workers will queue on its lock", workers)
    build_app(settings, follow=False)  # fail here, with a clear message, before forking workers
    run_uvicorn("adapters.web_server:asgi_app", host, port, workers, os.environ.get("LEDGER_LOG_LEVEL", "info"))


def run_uvicorn(factory: str, host: str, port: int, workers: int, log_level: str) -> None:
    """`uvicorn.run(factory, factory=True, ...)`, each connection with TCP_NODELAY however many
    workers serve (`NoDelayConfig`). The bench serves its apps through this too (bench/web.py)."""
    config = NoDelayConfig(
        factory, factory=True, host=host, port=port, workers=workers, log_level=log_level, access_log=False
    )
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run
        if config.workers > 1:  # uvicorn's Config makes 0 workers 1, as uvicorn.run goes by it
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        else:
            server.run()
    if config.workers == 1 and not server.started:
        sys.exit(STARTUP_FAILURE)  # as uvicorn.run: the port was taken, or the app did not start


class NoDelayConfig(uvicorn.Config):
    """uvicorn's settings, with a listening socket whose connections get TCP_NODELAY.

    With more than one worker uvicorn binds the listening socket itself (`Config.bind_socket`),
    leaving its protocol number at 0. Accepted connections inherit it, and asyncio switches
    Nagle's algorithm off (TCP_NODELAY) only on a socket that says IPPROTO_TCP. A response's
    body then waits for the client's delayed ACK of its headers: about 40 ms per request on a
    keep-alive connection, on Linux (uvicorn issue #3149, open for 0.54). Measured with the
    bench's trivial POST on this project's machine: 17,800 requests/s with 1 worker, 360/s with
    2. One worker was never affected: asyncio binds it from getaddrinfo, which says IPPROTO_TCP.
    """

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return sock  # a Unix socket: no Nagle
        inheritable = sock.get_inheritable()
        listener = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        listener.set_inheritable(inheritable)
        return listener


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _with_retries(build: Callable[[], T]) -> T:
    """Workers starting together on one PostgreSQL database can race on the library's and the
    migrations' CREATE statements ("tuple concurrently updated"): try again, briefly."""
    for attempt in range(SETUP_ATTEMPTS):
        try:
            return build()
        except ConfigurationError:
            raise
        except Exception:  # the race surfaces as several driver errors
            if attempt + 1 == SETUP_ATTEMPTS:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")

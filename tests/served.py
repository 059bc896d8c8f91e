"""An ASGI app served for real by uvicorn on a free loopback port, in a thread, until `stop()`:
the ledger's API in the e2e tests, the Stripe-compatible server beside it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import uvicorn

from tests.pg_cluster import free_port


class ServedApp:
    def __init__(self, asgi: Any, *, lifespan: str = "on", name: str = "uvicorn") -> None:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"{name} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def until_not_503(request: Callable[[], httpx.Response], *, tries: int = 60) -> httpx.Response:
    """Ask again while the answer is 503, a second apart, as a client told Retry-After would (Stripe
    redelivers for days): after an outage the connection pool reconnects with a backoff of its own."""
    response = request()
    for _ in range(tries - 1):
        if response.status_code != 503:
            break
        time.sleep(1)
        response = request()
    return response

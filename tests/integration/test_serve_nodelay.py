"""`ledger serve --workers N` binds its listener so that every connection gets TCP_NODELAY.

uvicorn binds the listener itself when it runs more than one worker, with a protocol number of 0,
and asyncio sets TCP_NODELAY only on accepted sockets that say IPPROTO_TCP: each keep-alive
response then waited about 40 ms for the client's delayed ACK (adapters/web_server.py
`NoDelayConfig`). These tests accept a real loopback connection on the listener, in this process
and, as uvicorn's supervisor hands it over, in a spawned worker process, and read the option off
the accepted socket.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
from multiprocessing.connection import Connection
from typing import ClassVar

import pytest

from adapters import web_server
from adapters.web_server import NoDelayConfig, run_uvicorn

FACTORY = "adapters.web_server:asgi_app"


def _listener(workers: int) -> socket.socket:
    return NoDelayConfig(FACTORY, factory=True, host="127.0.0.1", port=0, workers=workers).bind_socket()


def _nodelay_of_an_accepted_connection(listener: socket.socket) -> int:
    """Serve on `listener` with asyncio (as a uvicorn worker does), connect once, and return the
    TCP_NODELAY option of the socket the server accepted."""

    async def run() -> int:
        loop = asyncio.get_running_loop()
        seen: asyncio.Future[int] = loop.create_future()

        class Report(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                accepted = transport.get_extra_info("socket")
                seen.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await loop.create_server(Report, sock=listener)
        async with server:
            host, port = listener.getsockname()[:2]
            _, writer = await asyncio.open_connection(host, port)
            try:
                return await asyncio.wait_for(seen, timeout=10)
            finally:
                writer.close()

    return asyncio.run(run())


def _in_a_worker(listener: socket.socket, answer: Connection) -> None:
    answer.send(_nodelay_of_an_accepted_connection(listener))


def test_the_listener_says_tcp_and_stays_inheritable_for_the_workers() -> None:
    listener = _listener(workers=2)
    with listener:
        assert (listener.family, listener.type, listener.proto) == (
            socket.AF_INET,
            socket.SOCK_STREAM,
            socket.IPPROTO_TCP,
        )
        assert listener.get_inheritable()
        assert listener.getsockname()[0] == "127.0.0.1"


def test_a_connection_accepted_on_it_has_tcp_nodelay() -> None:
    with _listener(workers=2) as listener:
        assert _nodelay_of_an_accepted_connection(listener) != 0


def test_a_worker_process_handed_the_listener_accepts_with_tcp_nodelay() -> None:
    """As uvicorn's supervisor does: the listener pickled into a spawned process."""
    spawn = multiprocessing.get_context("spawn")
    receiving, sending = spawn.Pipe(duplex=False)
    with _listener(workers=2) as listener:
        worker = spawn.Process(target=_in_a_worker, args=(listener, sending))
        worker.start()
        sending.close()  # the worker's copy only: a worker that dies ends the poll at once
        try:
            assert receiving.poll(60), "the worker process did not report"
            assert receiving.recv() != 0
        finally:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    assert worker.exitcode == 0


class _Supervisor:
    """Stands in for uvicorn's `Multiprocess`: keeps the sockets it is handed, starts no worker."""

    handed: ClassVar[list[socket.socket]] = []

    def __init__(self, config: object, sockets: list[socket.socket]) -> None:
        _Supervisor.handed = sockets

    def run(self) -> None:
        pass


def test_ledger_serve_hands_its_workers_that_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    """`run_uvicorn`, which `ledger serve` and the bench run: with 2 workers the supervisor gets
    the IPPROTO_TCP listener, not the one uvicorn.run would bind."""
    monkeypatch.setattr(web_server, "Multiprocess", _Supervisor)
    run_uvicorn(FACTORY, "127.0.0.1", 0, 2, "warning")
    [listener] = _Supervisor.handed
    with listener:
        assert listener.proto == socket.IPPROTO_TCP
        assert _nodelay_of_an_accepted_connection(listener) != 0

"""`python -m bench.serve FACTORY PORT WORKERS`: an app factory served as `ledger serve` serves
(adapters/web_server.py `run_uvicorn`, on 127.0.0.1, warnings only, no access log), so that the
bench measures the listener a user runs, TCP_NODELAY included, with any number of workers."""

from __future__ import annotations

import sys

from adapters.web_server import run_uvicorn


def main(argv: list[str]) -> None:
    factory, port, workers = argv
    run_uvicorn(factory, "127.0.0.1", int(port), int(workers), "warning")


if __name__ == "__main__":
    main(sys.argv[1:])

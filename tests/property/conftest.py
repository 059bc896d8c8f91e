"""Fixtures of the property tests that run on the real backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from uuid import uuid4

import pytest

from tests.pg_cluster import Cluster

DatabaseFactory = Callable[[], AbstractContextManager[str]]


@pytest.fixture
def fresh_databases(database_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> DatabaseFactory:
    """Empty databases on the backend `database_url` is on: one per hypothesis example."""
    if database_url.startswith("sqlite"):

        @contextmanager
        def sqlite_file() -> Iterator[str]:
            yield f"sqlite:///{tmp_path}/{uuid4().hex}.sqlite3"

        return sqlite_file
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    return cluster.database

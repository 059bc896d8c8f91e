"""Fixtures of the read-model tests: the engine on the test's database, and a runner on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from adapters.read_models import projection_runner, read_model_engine
from commands.application import BillingApplication
from projections.runner import ProjectionRunner


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = read_model_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def runner(app: BillingApplication, engine: Engine) -> ProjectionRunner:
    return projection_runner(app, engine)

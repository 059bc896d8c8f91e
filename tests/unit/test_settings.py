"""Settings come from the environment and an optional .env; the database URL picks the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.persistence import ConfigurationError, event_store_env
from adapters.settings import DEFAULT_DATABASE_URL, Settings


def test_defaults_to_an_embedded_sqlite_file_under_var(tmp_path: Path) -> None:
    settings = Settings.from_environment({}, dotenv_path=tmp_path / "missing.env")
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite:///var/ledger.sqlite3"
    assert settings.api_token is None


def test_the_environment_wins_over_the_dotenv_file(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("LEDGER_DATABASE_URL=sqlite:///from-dotenv.sqlite3\nLEDGER_API_TOKEN=dotenv-token\n")
    settings = Settings.from_environment({"LEDGER_API_TOKEN": "env-token"}, dotenv_path=dotenv)
    assert settings.database_url == "sqlite:///from-dotenv.sqlite3"
    assert settings.api_token == "env-token"


def test_sqlite_urls_map_to_relative_and_absolute_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = event_store_env("sqlite:///var/x.sqlite3")
    assert relative["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert relative["SQLITE_DBNAME"] == "var/x.sqlite3"
    assert (tmp_path / "var").is_dir()
    absolute = event_store_env(f"sqlite:///{tmp_path}/abs/y.sqlite3")
    assert absolute["SQLITE_DBNAME"] == f"{tmp_path}/abs/y.sqlite3"


def test_postgres_urls_set_a_lock_timeout_and_never_enable_db_functions() -> None:
    env = event_store_env("postgresql://led%40ger:s3cr%2Ft@db.internal:6543/billing")
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("led@ger", "s3cr/t")
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"]) == ("db.internal", "6543", "billing")
    assert int(env["POSTGRES_LOCK_TIMEOUT"]) > 0
    assert env["POSTGRES_ENABLE_DB_FUNCTIONS"] == "n"


@pytest.mark.parametrize(
    "url", ["mysql://x/y", "sqlite://", "postgresql:///nohost", "nonsense", "postgresql://u@h/db?sslmode=require"]
)
def test_unsupported_database_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        event_store_env(url)

"""Settings come from the environment and an optional .env; the database URL picks the store."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import make_url

from adapters.persistence import DATABASE_TIMEOUT_SECONDS, ConfigurationError, event_store_env, read_model_url
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
    assert env["PERSISTENCE_MODULE"] == "adapters.postgres_store:BoundedPostgresFactory"
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("led@ger", "s3cr/t")
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"]) == ("db.internal", "6543", "billing")
    assert int(env["POSTGRES_LOCK_TIMEOUT"]) > 0
    assert env["POSTGRES_ENABLE_DB_FUNCTIONS"] == "n"


@pytest.mark.parametrize(
    "url",
    [
        "mysql://x/y",
        "sqlite://",
        "postgresql:///nohost",
        "nonsense",
        "postgresql://u@h/db?sslmod=require",  # a typo: libpq knows no such parameter
        "postgresql://u@h/db?sslmode",  # a parameter without its value
    ],
)
def test_unsupported_database_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        event_store_env(url)


def test_libpq_parameters_in_a_postgres_url_are_kept_for_both_connections() -> None:
    url = "postgresql://u:pw@db.internal/billing?sslmode=require&application_name=ledger%20web&connect_timeout=3"
    env = event_store_env(url)
    assert dict(parse_qsl(env["LEDGER_LIBPQ_OPTIONS"])) == {
        "sslmode": "require",
        "application_name": "ledger web",
        "connect_timeout": "3",
    }
    assert make_url(read_model_url(url)).query == {
        "sslmode": "require",
        "application_name": "ledger web",
        "connect_timeout": "3",
    }


def test_the_database_timeout_is_read_from_the_environment(tmp_path: Path) -> None:
    missing = tmp_path / "missing.env"
    assert Settings.from_environment({}, dotenv_path=missing).database_timeout == DATABASE_TIMEOUT_SECONDS
    settings = Settings.from_environment({"LEDGER_DATABASE_TIMEOUT": "1.5"}, dotenv_path=missing)
    assert settings.database_timeout == 1.5
    assert event_store_env("postgresql://u@h/db", settings.database_timeout)["LEDGER_STORE_WAIT_SECONDS"] == "1.5"


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf", "86400"])
def test_a_database_timeout_that_cannot_work_is_refused_naming_the_variable(value: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="LEDGER_DATABASE_TIMEOUT"):
        Settings.from_environment({"LEDGER_DATABASE_TIMEOUT": value}, dotenv_path=tmp_path / "missing.env")


def test_the_pdf_font_directory_is_read_when_set(tmp_path: Path) -> None:
    missing = tmp_path / "missing.env"
    assert Settings.from_environment({}, dotenv_path=missing).pdf_font_dir is None
    settings = Settings.from_environment({"LEDGER_PDF_FONT_DIR": "/opt/fonts"}, dotenv_path=missing)
    assert settings.pdf_font_dir == Path("/opt/fonts")


def test_the_in_process_follower_is_on_unless_switched_off(tmp_path: Path) -> None:
    missing = tmp_path / "missing.env"
    assert Settings.from_environment({}, dotenv_path=missing).follow_in_process
    assert Settings.from_environment({"LEDGER_FOLLOW_IN_PROCESS": "1"}, dotenv_path=missing).follow_in_process
    assert not Settings.from_environment({"LEDGER_FOLLOW_IN_PROCESS": "0"}, dotenv_path=missing).follow_in_process
    with pytest.raises(ConfigurationError, match="LEDGER_FOLLOW_IN_PROCESS"):
        Settings.from_environment({"LEDGER_FOLLOW_IN_PROCESS": "sometimes"}, dotenv_path=missing)

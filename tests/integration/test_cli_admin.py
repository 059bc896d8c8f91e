"""`ledger admin` as an operator runs it, on both backends: users created from a script or at
the terminal, listed, disabled (their sessions ended with them) and enabled; and the demo's
dashboard user."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.admin.sessions import SessionStore
from adapters.bootstrap import bootstrap
from adapters.cli import main
from adapters.clock import SystemClock
from adapters.demo import DEMO_ADMIN
from adapters.read_models import read_model_engine
from adapters.settings import Settings
from ledger.admin.users import user_id_for
from projections.admin.activity import list_activity
from projections.schema import upgrade

PASSWORD = "correct horse battery"


@pytest.fixture
def ledger_env(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    return database_url


@pytest.fixture
def sessions(ledger_env: str) -> Iterator[SessionStore]:
    engine = read_model_engine(ledger_env)
    upgrade(engine)
    yield SessionStore(engine, clock=SystemClock())
    engine.dispose()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def _authenticates(database_url: str, email: str, password: str) -> bool:
    app = bootstrap(Settings(database_url=database_url))
    try:
        return app.admin.authenticate(email, password) is not None
    finally:
        app.close()


def test_create_user_from_stdin_then_list_users(
    ledger_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _stdin(monkeypatch, PASSWORD + "\n")
    code, out, _ = _run(capsys, "admin", "create-user", "Ann@Example.com", "--role", "admin", "--password-stdin")
    assert code == 0
    assert f"created ann@example.com (admin), user id {user_id_for('ann@example.com')}" in out
    _stdin(monkeypatch, PASSWORD + "\n")
    assert _run(capsys, "admin", "create-user", "bob@example.com", "--role", "auditor", "--password-stdin")[0] == 0
    assert _authenticates(ledger_env, "ann@example.com", PASSWORD)

    code, out, _ = _run(capsys, "admin", "list-users")
    assert code == 0
    lines = [line.split() for line in out.splitlines()[1:]]
    assert [line[:3] for line in lines] == [
        ["ann@example.com", "admin", "active"],
        ["bob@example.com", "auditor", "active"],
    ]
    code, out, _ = _run(capsys, "admin", "list-users", "--format", "json")
    assert [(u["email"], u["created_by"]) for u in json.loads(out)] == [
        ("ann@example.com", "cli"),
        ("bob@example.com", "cli"),
    ]
    assert PASSWORD not in out


def test_a_short_password_a_taken_email_and_a_bad_role_are_refused(
    ledger_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _stdin(monkeypatch, "too short\n")
    code, _, err = _run(capsys, "admin", "create-user", "ann@example.com", "--role", "admin", "--password-stdin")
    assert (code, err) == (2, "ledger: password must be at least 12 characters long\n")
    _stdin(monkeypatch, PASSWORD + "\n")
    assert _run(capsys, "admin", "create-user", "ann@example.com", "--role", "admin", "--password-stdin")[0] == 0
    _stdin(monkeypatch, "another long password\n")
    code, _, err = _run(capsys, "admin", "create-user", "ANN@example.com", "--role", "auditor", "--password-stdin")
    assert (code, err) == (2, "ledger: dashboard user 'ann@example.com' already exists\n")
    assert _authenticates(ledger_env, "ann@example.com", PASSWORD)
    with pytest.raises(SystemExit):
        main(["admin", "create-user", "bob@example.com", "--role", "owner", "--password-stdin"])
    code, _, err = _run(capsys, "admin", "create-user", "not-an-address", "--role", "admin", "--password-stdin")
    assert code == 2
    assert "email" in err


def test_the_password_is_asked_twice_at_the_terminal(
    ledger_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([PASSWORD, PASSWORD + " typo"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    code, _, err = _run(capsys, "admin", "create-user", "ann@example.com", "--role", "admin")
    assert (code, err) == (2, "ledger: the two passwords differ\n")
    answers = iter([PASSWORD, PASSWORD])
    assert _run(capsys, "admin", "create-user", "ann@example.com", "--role", "admin")[0] == 0
    assert _authenticates(ledger_env, "ann@example.com", PASSWORD)


def test_disable_user_ends_their_sessions_and_enable_user_lets_them_back(
    ledger_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sessions: SessionStore
) -> None:
    _stdin(monkeypatch, PASSWORD + "\n")
    _run(capsys, "admin", "create-user", "ann@example.com", "--role", "admin", "--password-stdin")
    user_id = user_id_for("ann@example.com")
    first, _ = sessions.create(user_id, address="127.0.0.1", user_agent="test")
    second, _ = sessions.create(user_id, address="127.0.0.1", user_agent="test")
    other, _ = sessions.create(user_id_for("bob@example.com"), address="127.0.0.1", user_agent="test")

    code, out, _ = _run(capsys, "admin", "disable-user", "ann@example.com")
    assert (code, out) == (0, "ann@example.com disabled; 2 session(s) ended\n")
    assert sessions.get(first) is None
    assert sessions.get(second) is None
    assert sessions.get(other) is not None
    assert not _authenticates(ledger_env, "ann@example.com", PASSWORD)
    assert "disabled" in _run(capsys, "admin", "list-users")[1]

    assert _run(capsys, "admin", "enable-user", "ann@example.com") == (0, "ann@example.com enabled\n", "")
    assert _authenticates(ledger_env, "ann@example.com", PASSWORD)


def test_set_password_replaces_it_and_ends_the_sessions(
    ledger_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sessions: SessionStore
) -> None:
    _stdin(monkeypatch, PASSWORD + "\n")
    _run(capsys, "admin", "create-user", "ann@example.com", "--role", "admin", "--password-stdin")
    raw, _ = sessions.create(user_id_for("ann@example.com"), address="", user_agent="")
    _stdin(monkeypatch, "a brand new password\n")
    code, out, _ = _run(capsys, "admin", "set-password", "ann@example.com", "--password-stdin")
    assert (code, out) == (0, "new password set for ann@example.com; 1 session(s) ended\n")
    assert sessions.get(raw) is None
    assert _authenticates(ledger_env, "ann@example.com", "a brand new password")
    assert not _authenticates(ledger_env, "ann@example.com", PASSWORD)


def test_an_unknown_user_is_exit_status_3(ledger_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "admin", "disable-user", "nobody@example.com")
    assert (code, err) == (3, "ledger: no dashboard user 'nobody@example.com'\n")
    assert _run(capsys, "admin", "enable-user", "nobody@example.com")[0] == 3


def test_demo_creates_the_dashboard_user_once_and_prints_its_password(
    ledger_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "demo")
    assert code == 0
    assert f"email     {DEMO_ADMIN}" in out
    password = re.search(r"password  (\S+)", out).group(1)  # type: ignore[union-attr]
    assert len(password) >= 12
    assert _authenticates(ledger_env, DEMO_ADMIN, password)

    code, again, _ = _run(capsys, "demo")
    assert code == 0
    assert password not in again
    assert f"{DEMO_ADMIN}, with the password printed by the first `ledger demo`" in again
    assert _authenticates(ledger_env, DEMO_ADMIN, password)

    code, listed, _ = _run(capsys, "admin", "list-users")
    assert re.search(rf"{DEMO_ADMIN}\s+admin\s+active", listed)


def test_the_demos_void_and_write_off_are_its_dashboard_users_actions(
    ledger_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(capsys, "demo")
    _run(capsys, "demo")  # answered from its receipts: no second action
    _run(capsys, "project")
    engine = read_model_engine(ledger_env)
    try:
        rows = list_activity(engine).rows
    finally:
        engine.dispose()
    assert [(row["email"], row["action"]) for row in rows] == [
        (DEMO_ADMIN, "invoice.uncollectible"),
        (DEMO_ADMIN, "invoice.void"),
    ]

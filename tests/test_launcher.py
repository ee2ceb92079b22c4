"""What `make run` does on the first run in dev mode: one supervisor, its password shown once."""

from __future__ import annotations

import pytest
import redis

from ops import processes
from ops.launcher import Place, first_supervisor, services
from referral import accounts


def test_the_first_run_at_a_terminal_makes_one_supervisor_and_shows_the_password_once(
    db: redis.Redis, settings, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTLINE_SHOW_PASSWORD", "1")
    first_supervisor(settings)
    shown = capsys.readouterr().out
    password = shown.split("supervisor / ")[1].split()[0]
    assert accounts.authenticate(db, "supervisor", password) is not None

    first_supervisor(settings)  # the second run
    assert capsys.readouterr().out == ""
    assert [c.name for c in accounts.all_counsellors(db)] == ["supervisor"]


def test_output_to_a_file_gets_no_password_and_no_account(
    db: redis.Redis, settings, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOTLINE_SHOW_PASSWORD", raising=False)
    first_supervisor(settings)
    assert "counsellor add" in capsys.readouterr().out
    assert accounts.all_counsellors(db) == []


def test_make_run_supervises_the_console_and_the_housekeeping(settings, tmp_path) -> None:
    names = [name for name, _, _ in services(settings, {})]
    assert {"console", "housekeeping", "gateway", "worker", "sender", "actions"} <= set(names)
    # Rasa is started when there is a model to serve; without one the rest still runs.
    assert ("rasa" in names) == processes.MODEL.exists()
    without = [name for name, _, _ in services(settings, {}, Place(model=tmp_path / "none.tar.gz"))]
    assert "rasa" not in without and "gateway" in without


def test_each_process_is_given_only_the_secrets_it_uses(settings) -> None:
    env = {name: f"value-of-{name}" for name in processes.SECRETS} | {"PATH": "/usr/bin"}
    given = {name: set(penv) & set(processes.SECRETS) for name, _, penv in services(settings, env)}
    # The action server holds one secret: the token Rasa shows it (no Fernet, no Twilio).
    assert given["actions"] == {"HOTLINE_ACTION_TOKEN"}
    assert given["sender"] == {"HOTLINE_FERNET_KEY", "TWILIO_AUTH_TOKEN"}
    assert given["gateway"] == {"HOTLINE_SECRET", "HOTLINE_FERNET_KEY", "TWILIO_AUTH_TOKEN"}
    assert all(penv["PATH"] == "/usr/bin" for _, _, penv in services(settings, env))
    if "rasa" in given:
        assert given["rasa"] == {"RASA_TOKEN", "HOTLINE_ACTION_TOKEN"}

"""What `make run` does on the first run in dev mode: one supervisor, its password shown once."""

from __future__ import annotations

import pytest
import redis

from ops.launcher import first_supervisor, services
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


def test_make_run_supervises_the_console_and_the_housekeeping(settings) -> None:
    names = [name for name, _, _ in services(settings, {})]
    assert {"console", "housekeeping", "gateway", "worker", "sender", "rasa", "actions"} <= set(names)

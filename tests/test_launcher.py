"""What `make run` does on the first run in dev mode: one supervisor, its password shown once."""

from __future__ import annotations

import pytest
import redis

from hotline.settings import REDIS_LOGIN
from ops import processes
from ops.launcher import Place, first_supervisor, operator_login, redis_logins, run, services
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


def test_each_process_logs_in_to_the_launchers_redis_as_itself(settings, tmp_path) -> None:
    place = Place(var=tmp_path)
    env = {processes.REDIS_KEY: "k" * 32, "PATH": "/usr/bin"}
    logins = redis_logins(env, place)
    acl = (tmp_path / "redis" / "users.acl").read_text()
    assert (tmp_path / "redis" / "users.acl").stat().st_mode & 0o077 == 0
    given = {name: penv for name, _, penv in services(settings, env, place, logins)}
    for name, penv in given.items():
        assert processes.REDIS_KEY not in penv
        if name in REDIS_LOGIN:
            assert penv["REDIS_USERNAME"] == name
            assert penv["REDIS_PASSWORD"] == logins[name]["REDIS_PASSWORD"]
            assert penv["REDIS_PASSWORD"] not in acl  # Redis holds hashes only
        else:
            assert penv["REDIS_PASSWORD"] == ""
    assert given["worker"]["REDIS_PASSWORD"] != given["gateway"]["REDIS_PASSWORD"]


def test_the_operators_commands_log_in_as_ops_to_make_runs_redis(tmp_path) -> None:
    place = Place(var=tmp_path)
    env = {processes.REDIS_KEY: "k" * 32}
    assert operator_login({}, place) == {}  # make run has not set its users up here
    (tmp_path / "dev.env").write_text(f"{processes.REDIS_KEY}={'k' * 32}\n")
    redis_logins(env, place)
    assert operator_login({}, place)["REDIS_USERNAME"] == "ops"
    # A Redis or a login of the operator's own is theirs.
    assert operator_login({"REDIS_URL": "redis://10.0.0.2:6379/0"}, place) == {}
    assert operator_login({"REDIS_USERNAME": "ana"}, place) == {}


def test_production_will_not_start_a_redis_without_users(tmp_path, monkeypatch, capsys) -> None:
    for name in (processes.REDIS_KEY, "REDIS_USERNAME", "REDIS_PASSWORD", "HOTLINE_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{processes.free_port()}/0")
    assert run(Place(var=tmp_path)) == 1
    assert "the Redis this would start has no users" in capsys.readouterr().out
    assert not (tmp_path / "supervisord.conf").exists()

"""Settings refuse to run the hotline unsafely: production with a Twilio account and real
secrets, dev with real secrets, and test values in the test suite only."""

from __future__ import annotations

import secrets

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from hotline.settings import SECRETS, SECRETS_NEEDED, Settings, UnsafeSettings

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2


def real_secrets() -> dict[str, str]:
    """What the launcher generates into var/dev.env, and what an operator puts in production."""
    return {
        "HOTLINE_SECRET": secrets.token_urlsafe(32),
        "HOTLINE_FERNET_KEY": Fernet.generate_key().decode(),
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "RASA_TOKEN": secrets.token_urlsafe(24),
        "HOTLINE_ACTION_TOKEN": secrets.token_urlsafe(24),
    }


def production(**changes: str) -> dict[str, str]:
    return {"HOTLINE_ENV": "prod", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, **real_secrets(), **changes}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test gives counts, never the shell's variables."""
    for name in (
        *SECRETS.values(),
        "HOTLINE_ENV",
        "HOTLINE_SECRETS",
        "TWILIO_ACCOUNT_SID",
        "REDIS_USERNAME",
        "REDIS_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)


def refusal(**values: str) -> str:
    with pytest.raises(ValidationError) as error:
        Settings(**values)
    return str(error.value)


def test_production_with_an_account_and_real_secrets_starts() -> None:
    settings = Settings(**production())
    assert settings.env == "prod" and not settings.dev_mode


def test_a_twilio_account_means_production_rules() -> None:
    # What `make run` does today when an operator exports a Twilio account: HOTLINE_ENV
    # defaults to dev. That must not start.
    message = refusal(TWILIO_ACCOUNT_SID=ACCOUNT_SID, **real_secrets())
    assert "TWILIO_ACCOUNT_SID is set" in message and "HOTLINE_ENV=prod" in message
    assert "HOTLINE_ENV=prod" in refusal(HOTLINE_ENV="test", TWILIO_ACCOUNT_SID=ACCOUNT_SID)


def test_the_environment_is_read_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    with pytest.raises(ValidationError, match="HOTLINE_ENV=prod"):
        Settings()


def test_production_needs_a_twilio_account_that_looks_like_one() -> None:
    values = production()
    del values["TWILIO_ACCOUNT_SID"]
    assert "TWILIO_ACCOUNT_SID is unset" in refusal(**values)
    assert "not an account SID" in refusal(**production(TWILIO_ACCOUNT_SID="ACxxxxxxxx"))


@pytest.mark.parametrize("variable", sorted(SECRETS.values()))
def test_production_refuses_each_empty_secret(variable: str) -> None:
    message = refusal(**production(**{variable: ""}))
    assert f"{variable} is empty" in message


@pytest.mark.parametrize("variable", ["HOTLINE_SECRET", "TWILIO_AUTH_TOKEN", "RASA_TOKEN"])
@pytest.mark.parametrize(
    "value",
    [
        "changeme",
        "secret",
        "short-but-real",
        "a" * 40,
        "0123" * 8,
        "please-change-me-before-deploying",
        "your-twilio-auth-token-here",
    ],
)
def test_production_refuses_each_placeholder(variable: str, value: str) -> None:
    message = refusal(**production(**{variable: value}))
    assert f"{variable} is a placeholder" in message


@pytest.mark.parametrize("env", ["dev", "prod", "test"])
@pytest.mark.parametrize(
    "key",
    ["not-a-fernet-key-at-all-0123456789", "c2hvcnQ=", secrets.token_hex(32)],
    # Fixed ids: the random key must not make the test names differ between runs or workers.
    ids=["words", "too-short", "random-hex"],
)
def test_the_fernet_key_must_parse_in_every_mode(env: str, key: str) -> None:
    values = (
        production(HOTLINE_FERNET_KEY=key)
        if env == "prod"
        else {"HOTLINE_ENV": env, **real_secrets(), "HOTLINE_FERNET_KEY": key}
    )
    assert "HOTLINE_FERNET_KEY is not a Fernet key" in refusal(**values)


def test_every_problem_is_named_at_once() -> None:
    message = refusal(HOTLINE_ENV="prod", HOTLINE_FERNET_KEY="nope", RASA_TOKEN="changeme")
    for words in (
        "TWILIO_ACCOUNT_SID is unset",
        "HOTLINE_FERNET_KEY is not a Fernet key",
        "RASA_TOKEN is a placeholder",
        "HOTLINE_SECRET, TWILIO_AUTH_TOKEN are empty",
    ):
        assert words in message


def test_dev_refuses_placeholders_too() -> None:
    assert "HOTLINE_SECRET is a placeholder" in refusal(HOTLINE_ENV="dev", HOTLINE_SECRET="dev")


def _declared(process: str) -> str:
    """HOTLINE_SECRETS as the launcher and the systemd units set it."""
    return ",".join(sorted(SECRETS_NEEDED[process]))


@pytest.mark.parametrize("process", sorted(p for p, needed in SECRETS_NEEDED.items() if needed))
def test_a_process_refuses_to_start_without_the_secrets_it_declares(process: str) -> None:
    for env in ("dev", "prod"):
        base = production() if env == "prod" else {"HOTLINE_ENV": "dev", **real_secrets()}
        for variable in SECRETS_NEEDED[process]:
            message = refusal(**{**base, "HOTLINE_SECRETS": _declared(process), variable: ""})
            assert f"{variable} is empty, and this process needs it" in message
        # The secrets it does not use may be withheld (the launcher gives each only its own).
        given = {
            k: v
            for k, v in base.items()
            if k not in SECRETS.values() or k in SECRETS_NEEDED[process]
        }
        assert Settings(**given, HOTLINE_SECRETS=_declared(process)).needed_secrets == _declared(
            process
        )


def test_the_table_is_the_one_the_launcher_and_the_units_use() -> None:
    from ops import processes

    assert processes.SECRETS_NEEDED == SECRETS_NEEDED
    # And the launcher's own: each process's Redis password is derived from it (dev).
    assert set(processes.SECRETS) == {*SECRETS.values(), processes.REDIS_KEY}


def test_production_refuses_a_process_without_its_redis_login() -> None:
    ready = Settings(**production())
    with pytest.raises(UnsafeSettings, match="REDIS_USERNAME, REDIS_PASSWORD are empty"):
        ready.require("worker")
    assert ready.require("nlg") is ready  # the NLG endpoint never reaches Redis
    logged_in = Settings(
        **production(), REDIS_USERNAME="worker", REDIS_PASSWORD=secrets.token_urlsafe(32)
    )
    assert logged_in.require("worker") is logged_in
    assert "REDIS_PASSWORD is a placeholder" in refusal(
        **production(), REDIS_USERNAME="worker", REDIS_PASSWORD="changeme"
    )


def test_a_process_that_declares_no_secret_needs_none() -> None:
    assert Settings(**{**production(**dict.fromkeys(SECRETS.values(), "")), "HOTLINE_SECRETS": ""})


def test_a_service_checks_its_own_secrets_at_start() -> None:
    tool = Settings(HOTLINE_ENV="dev")  # an operator's command in dev, holding no secret
    with pytest.raises(
        UnsafeSettings,
        match="the console process refuses to start: HOTLINE_FERNET_KEY, RASA_TOKEN are empty",
    ):
        tool.require("console")
    ready = Settings(HOTLINE_ENV="dev", **real_secrets())
    assert ready.require("console") is ready
    with pytest.raises(UnsafeSettings, match="no process of the hotline"):
        ready.require("consol")


def test_an_unknown_secret_name_is_refused() -> None:
    message = refusal(
        HOTLINE_ENV="dev", HOTLINE_SECRETS="HOTLINE_FERNET_KEY,FERNET_KEY", **real_secrets()
    )
    assert "HOTLINE_SECRETS names FERNET_KEY, which is no secret" in message


def test_only_the_test_suite_runs_with_test_values(settings_factory) -> None:
    suite = settings_factory()
    assert suite.env == "test" and suite.require("gateway") is suite
    relaxed = Settings(HOTLINE_ENV="test", HOTLINE_SECRET="test", RASA_TOKEN="")
    assert relaxed.require("worker") is relaxed
    assert "placeholder" in refusal(HOTLINE_ENV="dev", HOTLINE_SECRET="test")

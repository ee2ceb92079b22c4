"""Typed settings read from the environment; a process that would run unsafe refuses to start.

The rules, checked whenever settings are built (so at every process's start):

- A Twilio account means production: with TWILIO_ACCOUNT_SID set, HOTLINE_ENV must be
  `prod`, and production needs an account SID that looks like one.
- Outside the test suite (HOTLINE_ENV=test), a secret that is set must be real (not a
  placeholder, not short), and the secrets a process uses must be set. HOTLINE_SECRETS
  names them (the launcher and the systemd units set it from `SECRETS_NEEDED`), and a
  service also checks its own at start with `Settings.require`. A production process
  that does not name its secrets must hold every one.
- The Fernet key must parse as a Fernet key, in every mode: a bad key would otherwise be
  found only when the first number is sealed.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Each secret's field and the variable an operator sets.
SECRETS = {
    "secret": "HOTLINE_SECRET",
    "fernet_key": "HOTLINE_FERNET_KEY",
    "twilio_auth_token": "TWILIO_AUTH_TOKEN",
    "rasa_token": "RASA_TOKEN",
    "action_token": "HOTLINE_ACTION_TOKEN",
}

# The secrets each process is given, in `make run` and in the systemd units alike: a process
# that holds no key cannot leak it.
SECRETS_NEEDED: dict[str, frozenset[str]] = {
    "redis": frozenset(),
    # Its API token (from the environment, never its command line: ops/rasa_serve.py) and the
    # bearer token it shows the action server.
    "rasa": frozenset({"RASA_TOKEN", "HOTLINE_ACTION_TOKEN"}),
    # Only Rasa may run actions: they open cases and write the risk screen's verdicts.
    "actions": frozenset({"HOTLINE_ACTION_TOKEN"}),
    "nlg": frozenset(),
    # Signature check, keyed conversation ids and sealing the number on the way in.
    "gateway": frozenset({"HOTLINE_SECRET", "HOTLINE_FERNET_KEY", "TWILIO_AUTH_TOKEN"}),
    # Rasa's API, and the number for DELETE's confirmation.
    "worker": frozenset({"RASA_TOKEN", "HOTLINE_FERNET_KEY"}),
    # Unseals the number to send; the only process that talks to Twilio.
    "sender": frozenset({"HOTLINE_FERNET_KEY", "TWILIO_AUTH_TOKEN"}),
    # Masked numbers on case pages; hand-back through Rasa's events API.
    "console": frozenset({"HOTLINE_FERNET_KEY", "RASA_TOKEN"}),
    "housekeeping": frozenset({"HOTLINE_FERNET_KEY", "RASA_TOKEN"}),
    # Stands in for Twilio, so it holds Twilio's token (dev only).
    "sandbox": frozenset({"TWILIO_AUTH_TOKEN"}),
}

# The processes that log in to Redis, each as its own user (ops/redis_users.py): in production
# each refuses to start without its login.
REDIS_LOGIN = frozenset(
    {"rasa", "actions", "gateway", "worker", "sender", "console", "housekeeping", "sandbox"}
)

# Values a developer might paste from an example; never acceptable outside the test suite.
_PLACEHOLDERS = {"changeme", "change-me", "secret", "dev", "test", "placeholder", "password"}
_PLACEHOLDER_WORDS = (
    "changeme",
    "change-me",
    "change_me",
    "placeholder",
    "example",
    "xxxx",
    "your-",
    "your_",
)
MIN_SECRET_CHARS = 16
# A random secret of 16 characters has far more distinct ones; "aaaa…" or "0000…" has one.
_MIN_DISTINCT_CHARS = 8
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")


class UnsafeSettings(ValueError):
    """The settings would run the hotline unsafely; the message says what to change."""


class Settings(BaseSettings):
    """Everything a process needs to know about its surroundings.

    Handed to code through `get_settings()` (or a FastAPI dependency) so tests build
    their own instance instead of patching globals.
    """

    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    env: Literal["dev", "test", "prod"] = Field("dev", alias="HOTLINE_ENV")
    # The secrets this process must hold, comma-separated ("" for none); unset means all in prod.
    needed_secrets: str | None = Field(None, alias="HOTLINE_SECRETS")
    redis_url: str = Field("redis://127.0.0.1:6379/0", alias="REDIS_URL")
    # This process's own Redis user (ops/redis_users.py); empty only for the test suite's Redis
    # and a dev Redis the launcher did not start.
    redis_username: str = Field("", alias="REDIS_USERNAME")
    redis_password: SecretStr = Field(SecretStr(""), alias="REDIS_PASSWORD")
    rasa_url: str = Field("http://127.0.0.1:5005", alias="RASA_URL")
    rasa_token: SecretStr = Field(SecretStr(""), alias="RASA_TOKEN")
    # What Rasa shows the action server (endpoints.yml): any other local caller is refused.
    action_token: SecretStr = Field(SecretStr(""), alias="HOTLINE_ACTION_TOKEN")
    # Keyed-hash key for conversation ids: without it an id brute-forces back to a number.
    secret: SecretStr = Field(SecretStr(""), alias="HOTLINE_SECRET")
    # Fernet key that seals phone numbers at rest (only the sender unseals them).
    fernet_key: SecretStr = Field(SecretStr(""), alias="HOTLINE_FERNET_KEY")
    public_url: str = Field("http://127.0.0.1:8000", alias="PUBLIC_URL")
    twilio_account_sid: str | None = Field(None, alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr = Field(SecretStr(""), alias="TWILIO_AUTH_TOKEN")
    twilio_sms_from: str = Field("+15005550006", alias="TWILIO_SMS_FROM")
    twilio_whatsapp_from: str = Field("whatsapp:+15005550006", alias="TWILIO_WHATSAPP_FROM")
    sandbox_url: str = Field("http://127.0.0.1:8025", alias="SANDBOX_URL")
    data_dir: Path = Field(PROJECT_ROOT / "data", alias="HOTLINE_DATA_DIR")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    # Closed cases are anonymised after this many days (DESIGN.md: data lifecycle).
    retention_days: int = Field(90, ge=1, alias="HOTLINE_RETENTION_DAYS")
    # Past one machine (docs/operations.md): Redis replicates after it answers, so a webhook
    # acknowledged to Twilio, or a body about to be handed to it, is first confirmed on this
    # many replicas (Redis WAIT, at most this long). 0: one Redis, its append-only file only.
    redis_ack_replicas: int = Field(0, ge=0, alias="HOTLINE_REDIS_ACK_REPLICAS")
    redis_ack_timeout_ms: int = Field(500, ge=1, alias="HOTLINE_REDIS_ACK_TIMEOUT_MS")

    @property
    def dev_mode(self) -> bool:
        """True when no Twilio account is configured: the sandbox stands in for Twilio."""
        return not self.twilio_account_sid

    @property
    def twilio_sid(self) -> str:
        # The sandbox accepts any account SID; a fixed fake one keeps URLs stable in dev.
        return self.twilio_account_sid or "AC" + "0" * 32

    def secret_value(self, variable: str) -> str:
        """The value of a secret by its variable's name (HOTLINE_SECRET …)."""
        field = next(name for name, env in SECRETS.items() if env == variable)
        return getattr(self, field).get_secret_value()

    def _empty(self, variables: frozenset[str]) -> list[str]:
        return sorted(name for name in variables if not self.secret_value(name).strip())

    def require(self, process: str) -> Settings:
        """Refuse to start `process` without the secrets it uses; a service calls this at start."""
        if process not in SECRETS_NEEDED:
            raise UnsafeSettings(
                f"{process} is no process of the hotline "
                f"(one of {', '.join(sorted(SECRETS_NEEDED))})"
            )
        missing = [] if self.env == "test" else self._empty(SECRETS_NEEDED[process])
        if self.env == "prod" and process in REDIS_LOGIN:
            missing += [
                name
                for name, value in (
                    ("REDIS_USERNAME", self.redis_username),
                    ("REDIS_PASSWORD", self.redis_password.get_secret_value()),
                )
                if not value.strip()
            ]
        if missing:
            raise UnsafeSettings(
                f"the {process} process refuses to start: {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} empty"
                + (" (make run generates them into var/dev.env)" if self.env == "dev" else "")
            )
        return self

    def problems(self) -> list[str]:
        """Everything that makes these settings unsafe, each with what to change."""
        problems = []
        sid = self.twilio_account_sid
        if sid and self.env != "prod":
            problems.append(
                f"TWILIO_ACCOUNT_SID is set, which means production, but HOTLINE_ENV is "
                f"{self.env}: set HOTLINE_ENV=prod with real secrets, or unset "
                "TWILIO_ACCOUNT_SID to use the dev sandbox"
            )
        if self.env == "prod":
            if not sid:
                problems.append(
                    "TWILIO_ACCOUNT_SID is unset; production needs a real Twilio account"
                )
            elif not _ACCOUNT_SID.match(sid):
                problems.append("TWILIO_ACCOUNT_SID is not an account SID (AC and 32 hex digits)")
        key = self.fernet_key.get_secret_value()
        if key and not _parses_as_fernet(key):
            problems.append(
                "HOTLINE_FERNET_KEY is not a Fernet key (32 url-safe base64 bytes); make one "
                "with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            )
        if self.env == "test":
            return problems  # the suite's own values, never a deployment's
        given = {variable: self.secret_value(variable) for variable in SECRETS.values()}
        given["REDIS_PASSWORD"] = self.redis_password.get_secret_value()
        for variable, value in given.items():
            if value and _is_placeholder(value):
                problems.append(
                    f"{variable} is a placeholder or shorter than {MIN_SECRET_CHARS} "
                    "random characters"
                )
        if self.needed_secrets is not None:
            named = frozenset(filter(None, (n.strip() for n in self.needed_secrets.split(","))))
            unknown = sorted(named - set(SECRETS.values()))
            if unknown:
                return [
                    *problems,
                    (
                        f"HOTLINE_SECRETS names {', '.join(unknown)}, which is no secret "
                        f"of the hotline (they are {', '.join(SECRETS.values())})"
                    ),
                ]
            missing, who = self._empty(named), "this process"
        elif self.env == "prod":
            # A production process that does not name its secrets must hold every one.
            missing, who = self._empty(frozenset(SECRETS.values())), "production"
        else:
            missing, who = (
                [],
                "",
            )  # an operator's tool in dev; each service checks its own (require)
        if missing:
            problems.append(
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} empty, and "
                f"{who} needs {'it' if len(missing) == 1 else 'them'}"
            )
        return problems

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        problems = self.problems()
        if problems:
            raise UnsafeSettings("refusing to start: " + "; ".join(problems))
        return self


def _parses_as_fernet(key: str) -> bool:
    try:
        Fernet(key.encode())
    except (ValueError, TypeError):
        return False
    return True


def _is_placeholder(value: str) -> bool:
    folded = value.strip().lower()
    return (
        folded in _PLACEHOLDERS
        or len(folded) < MIN_SECRET_CHARS
        or len(set(folded)) < _MIN_DISTINCT_CHARS
        or any(word in folded for word in _PLACEHOLDER_WORDS)
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()

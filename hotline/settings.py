"""Typed settings read from the environment, refusing placeholder secrets outside dev."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Values a developer might paste from an example; never acceptable in production.
_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "dev", "test", "placeholder"}


class Settings(BaseSettings):
    """Everything a process needs to know about its surroundings.

    Handed to code through `get_settings()` (or a FastAPI dependency) so tests build
    their own instance instead of patching globals.
    """

    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    env: Literal["dev", "test", "prod"] = Field("dev", alias="HOTLINE_ENV")
    redis_url: str = Field("redis://127.0.0.1:6379/0", alias="REDIS_URL")
    rasa_url: str = Field("http://127.0.0.1:5005", alias="RASA_URL")
    rasa_token: SecretStr = Field(SecretStr(""), alias="RASA_TOKEN")
    # Keyed-hash key for conversation ids; also signs console sessions.
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

    @property
    def dev_mode(self) -> bool:
        """True when no Twilio account is configured: the sandbox stands in for Twilio."""
        return not self.twilio_account_sid

    @property
    def twilio_sid(self) -> str:
        # The sandbox accepts any account SID; a fixed fake one keeps URLs stable in dev.
        return self.twilio_account_sid or "AC" + "0" * 32

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.env != "prod":
            return self
        for name in ("secret", "fernet_key", "twilio_auth_token", "rasa_token"):
            value = getattr(self, name).get_secret_value()
            if value.strip().lower() in _PLACEHOLDERS or len(value) < 16:
                raise ValueError(f"{name} is unset or a placeholder; production refuses to start")
        if not self.twilio_account_sid:
            raise ValueError("TWILIO_ACCOUNT_SID is unset; production needs a real Twilio account")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()

"""Bot settings, read from the environment (and `.env` when present)."""

import json
import re
from enum import StrEnum
from typing import Annotated

from pydantic import Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The bot ships in its own image, so it does not import the backend's settings.
PLACEHOLDER_SECRETS = frozenset(
    {"", "change-me", "changeme", "change_me", "secret", "token", "please-change-me", "xxx"}
)
MIN_PRODUCTION_SECRET_LENGTH = 24


class AppEnv(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


def parse_id_list(value: object) -> object:
    """Accept `ADMIN_IDS` as "1,2, 3", a JSON list, or a single number."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    if isinstance(value, int):
        return [value]
    return value


class BotMode(StrEnum):
    WEBHOOK = "webhook"
    POLLING = "polling"


class BotSettings(BaseSettings):
    """Everything the bot reads from its environment."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    app_env: AppEnv = AppEnv.PRODUCTION
    bot_token: SecretStr = SecretStr("")
    bot_mode: BotMode = BotMode.WEBHOOK
    bot_host: str = "0.0.0.0"  # noqa: S104 - the container's port is published only to nginx
    bot_port: int = Field(default=8080, ge=1, le=65535)
    webhook_base_url: str = ""
    webhook_path: str = "/telegram/webhook"
    webhook_secret: SecretStr = SecretStr("")
    # A self-signed certificate (PEM) uploaded with setWebhook; empty for a CA-signed one.
    webhook_cert: FilePath | None = None
    telegram_api_base: str | None = None
    backend_url: str = "http://backend:8000"
    internal_api_token: SecretStr = SecretStr("")
    # Shared update claims across replicas (else kept through the backend, in PostgreSQL).
    redis_url: str | None = None
    redis_key_prefix: str = "pomogator:"
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    payment_provider_token: SecretStr = SecretStr("")  # optional fiat rail
    # Telegram waits 10 s for the pre-checkout answer; the backend gets this long of it.
    pre_checkout_timeout_s: float = Field(default=8.0, gt=0, le=9.5)
    free_messages_limit: int = Field(default=10, ge=0)
    vip_price_stars: int = Field(default=250, ge=1)
    vip_period_days: int = Field(default=30, ge=1)
    stream_interval_s: float = Field(default=1.0, gt=0, le=10)
    max_waiting_per_user: int = Field(default=5, ge=0, le=100)
    intake_limit: int = Field(default=32, ge=1, le=10000)
    shutdown_grace_s: float = Field(default=25.0, ge=0, le=600)
    # How long what a replica holds in Redis (a user's turn, the messages it took) outlives
    # the replica if it dies: after that, another replica goes on and tells the user.
    replica_lease_s: float = Field(default=30.0, ge=1, le=600)
    # Messages (and edits, drafts) per second to all chats: Telegram allows about 30, up to
    # 1000 with paid broadcasts. The burst is how many may go at once after a quiet spell.
    telegram_global_rate: float = Field(default=30.0, gt=0, le=1000)
    telegram_global_burst: int = Field(default=30, ge=1, le=1000)
    # New messages per second to one chat (Telegram: about 1; edits and drafts are not counted).
    telegram_per_chat_rate: float = Field(default=1.0, gt=0, le=1000)
    # Streaming answers open at once to the backend (each holds a connection for its length);
    # short calls (profile, claim) have a pool of their own and never wait behind them.
    backend_max_streams: int = Field(default=5000, ge=1)
    # Seconds a short call (a profile, a setting, a payment) may take before the user is told
    # the bot is unavailable; an unreachable backend is reported within 3 s regardless.
    backend_timeout_s: float = Field(default=30.0, gt=0, le=300)
    # Broadcast copies per second, under Telegram's ~30/s for the whole bot (answers go on).
    broadcast_per_second: float = Field(default=20.0, gt=0, le=30)
    log_level: str = "INFO"
    log_format: str = "json"

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_admin_ids(cls, value: object) -> object:
        return parse_id_list(value)

    @field_validator("webhook_secret")
    @classmethod
    def _telegram_secret_alphabet(cls, value: SecretStr) -> SecretStr:
        # Telegram refuses other characters at setWebhook (e.g. base64's "+/=").
        secret = value.get_secret_value()
        if secret and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ValueError(
                "WEBHOOK_SECRET may hold only A-Z, a-z, 0-9, _ and - (e.g. openssl rand -hex 32)"
            )
        return value

    @field_validator("redis_url", mode="before")
    @classmethod
    def _no_redis_when_empty(cls, value: object) -> object:
        # `REDIS_URL=` in .env means "no Redis".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("webhook_cert", mode="before")
    @classmethod
    def _no_cert_when_empty(cls, value: object) -> object:
        # `WEBHOOK_CERT=` in .env means "none", not the current directory.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("webhook_path")
    @classmethod
    def _path_starts_with_slash(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("WEBHOOK_PATH must start with '/'")
        return value

    @model_validator(mode="after")
    def _broadcast_within_the_global_rate(self) -> "BotSettings":
        # Copies wait for the same global budget as answers: at or above its rate they would
        # take all of it, and answers would queue behind a broadcast.
        if self.broadcast_per_second >= self.telegram_global_rate:
            raise ValueError(
                f"BROADCAST_PER_SECOND ({self.broadcast_per_second:g}) must be below "
                f"TELEGRAM_GLOBAL_RATE ({self.telegram_global_rate:g}), which answers share"
            )
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> "BotSettings":
        if self.app_env is not AppEnv.PRODUCTION:
            return self
        token = self.internal_api_token.get_secret_value()
        if (
            token.strip().lower() in PLACEHOLDER_SECRETS
            or len(token) < MIN_PRODUCTION_SECRET_LENGTH
        ):
            raise ValueError("INTERNAL_API_TOKEN is empty or a placeholder")
        if ":" not in self.bot_token.get_secret_value():
            raise ValueError("BOT_TOKEN is not a Telegram bot token (get one from @BotFather)")
        if self.bot_mode is BotMode.WEBHOOK:
            secret = self.webhook_secret.get_secret_value()
            if secret.strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError("WEBHOOK_SECRET is empty or a placeholder")
            if not self.webhook_base_url.startswith("https://"):
                raise ValueError("WEBHOOK_BASE_URL must be an https:// address Telegram can reach")
        return self

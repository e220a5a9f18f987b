"""Backend settings, read from the environment (and `.env` when present)."""

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Values that mean "nobody set this": refused outside development.
PLACEHOLDER_SECRETS = frozenset(
    {"", "change-me", "changeme", "change_me", "secret", "token", "please-change-me", "xxx"}
)
MIN_PRODUCTION_SECRET_LENGTH = 24


MB = 1024 * 1024
DEFAULT_SYSTEM_PROMPT = (
    "You are Pomogator, a helpful assistant people talk to in Telegram. Answer in the language "
    "of the user's message. Be accurate and concise; use Markdown (bold, lists, code blocks) "
    "only where it helps, and no tables wider than a phone screen."
)


class AppEnv(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


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


class DatabaseSettings(BaseSettings):
    """Just the database: all that migrations need."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/pomogator"

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError("DATABASE_URL must start with postgresql+asyncpg://")
        return value


class Settings(DatabaseSettings):
    """Everything the backend reads from its environment."""

    app_env: AppEnv = AppEnv.PRODUCTION
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=0, ge=0, le=500)
    db_pool_timeout_s: float = Field(default=10.0, gt=0)
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)
    # A pooled connection idle this long is pinged before use (a restart may have closed it).
    db_ping_idle_s: float = Field(default=1.0, ge=0)
    internal_api_token: SecretStr = SecretStr("")
    free_messages_limit: int = Field(default=10, ge=0, le=1_000_000)
    vip_period_days: int = Field(default=30, ge=1, le=3660)
    vip_price_stars: int = Field(default=250, ge=1, le=10_000)
    # "subscription": a Stars subscription renewed monthly by Telegram; "one_off": one month.
    vip_payment_mode: Literal["subscription", "one_off"] = "subscription"
    vip_price_amount: int | None = Field(default=None, ge=1)  # fiat rail, in minor units
    vip_price_currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    invoice_ttl_hours: int = Field(default=48, ge=1, le=24 * 30)
    payment_webhook_secret: SecretStr = SecretStr("")
    payment_webhook_tolerance_s: int = Field(default=300, ge=1, le=3600)
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    model_catalog_path: Path | None = None
    openai_api_key: SecretStr = SecretStr("")
    openai_base_url: str = "https://api.openai.com/v1"
    perplexity_api_key: SecretStr = SecretStr("")
    perplexity_base_url: str = "https://api.perplexity.ai/v1"
    deepseek_api_key: SecretStr = SecretStr("")
    deepseek_base_url: str = "https://api.deepseek.com"
    provider_max_retries: int = Field(default=1, ge=0, le=5)
    provider_connect_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # Answers one provider streams at once; more wait for a connection (the SDK's default
    # is 1,000, which made the last of 2,000 users waiting at once wait two answers' time).
    provider_max_connections: int = Field(default=5000, ge=1, le=100_000)
    max_message_chars: int = Field(default=4096, ge=1, le=100_000)
    # Attachments: Telegram lets bots download files up to 20 MB.
    voice_max_seconds: int = Field(default=300, ge=1, le=7200)
    voice_max_bytes: int = Field(default=20 * MB, ge=1, le=20 * MB)
    photo_max_bytes: int = Field(default=10 * MB, ge=1, le=20 * MB)
    document_max_bytes: int = Field(default=10 * MB, ge=1, le=20 * MB)
    document_max_pages: int = Field(default=50, ge=1, le=2000)
    custom_instructions_max_chars: int = Field(default=1000, ge=1, le=4000)
    # A picture (/image) costs this many free messages; with PICTURE_VIP_ONLY only VIPs may ask.
    picture_credits: int = Field(default=3, ge=1, le=100)
    picture_vip_only: bool = False
    # A reservation still pending this long belongs to an answer that died with its process:
    # it is refunded. Longer than any model's timeout_s in the catalog.
    stale_reservation_s: int = Field(default=1200, ge=60)
    sweep_interval_s: float = Field(default=60.0, gt=0)
    # Texts of messages older than this many days are erased (0: kept until /forget).
    message_retention_days: int = Field(default=0, ge=0, le=36_500)
    # A provider failing this many answers in a row is not called for the cooldown.
    breaker_failures: int = Field(default=5, ge=1, le=1000)
    breaker_cooldown_s: float = Field(default=30.0, gt=0, le=3600)
    # Fair use: messages a user may send per minute, and a VIP per day (0: no limit).
    user_messages_per_minute: int = Field(default=20, ge=0, le=10_000)
    vip_daily_messages: int = Field(default=500, ge=0, le=1_000_000)
    # Request bodies above this are refused before they are read (attachments are base64).
    max_request_bytes: int = Field(default=30 * MB, ge=64 * 1024, le=200 * MB)
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.JSON
    backend_host: str = "0.0.0.0"  # noqa: S104 - the container's port is published only to nginx
    backend_port: int = Field(default=8000, ge=1, le=65535)

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_admin_ids(cls, value: object) -> object:
        return parse_id_list(value)

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @field_validator("system_prompt")
    @classmethod
    def _default_prompt_when_empty(cls, value: str) -> str:
        return value.strip() or DEFAULT_SYSTEM_PROMPT

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> "Settings":
        token = self.internal_api_token.get_secret_value()
        if self.app_env is AppEnv.PRODUCTION and (
            token.strip().lower() in PLACEHOLDER_SECRETS
            or len(token) < MIN_PRODUCTION_SECRET_LENGTH
        ):
            raise ValueError(
                "INTERNAL_API_TOKEN is empty or a placeholder; set a random value of at least "
                f"{MIN_PRODUCTION_SECRET_LENGTH} characters (e.g. `openssl rand -hex 32`)"
            )
        if self.app_env is AppEnv.DEVELOPMENT and not token:
            raise ValueError("INTERNAL_API_TOKEN must be set (any value will do in development)")
        return self

    @property
    def is_production(self) -> bool:
        return self.app_env is AppEnv.PRODUCTION

    def provider_credentials(self, name: str) -> tuple[str, str]:
        """(base_url, api_key) of a provider credential set named in the catalog."""
        sets = {
            "openai": (self.openai_base_url, self.openai_api_key),
            "perplexity": (self.perplexity_base_url, self.perplexity_api_key),
            "deepseek": (self.deepseek_base_url, self.deepseek_api_key),
        }
        if name not in sets:
            raise KeyError(name)
        base_url, key = sets[name]
        return base_url, key.get_secret_value()

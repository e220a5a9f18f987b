"""Bot settings refuse what would fail later at Telegram or the backend."""

import pytest
from pydantic import ValidationError

from bot.config import BotMode, BotSettings

GOOD = {
    "app_env": "production",
    "bot_token": "123456:ABCDEF",
    "internal_api_token": "b" * 40,
    "webhook_secret": "w" * 32,
    "webhook_base_url": "https://bot.example.com",
}


def make(**values: object) -> BotSettings:
    return BotSettings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def test_documented_defaults():
    settings = make(**GOOD)
    assert (settings.bot_host, settings.bot_port) == ("0.0.0.0", 8080)
    assert settings.webhook_path == "/telegram/webhook"
    assert settings.bot_mode is BotMode.WEBHOOK


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"internal_api_token": "change-me"}, "INTERNAL_API_TOKEN"),
        ({"bot_token": ""}, "BOT_TOKEN"),
        ({"webhook_secret": ""}, "WEBHOOK_SECRET"),
        ({"webhook_base_url": "http://bot.example.com"}, "WEBHOOK_BASE_URL"),
        ({"webhook_path": "telegram"}, "WEBHOOK_PATH"),
    ],
)
def test_production_refuses_unusable_values(override, complaint):
    with pytest.raises(ValidationError, match=complaint):
        make(**{**GOOD, **override})


def test_polling_needs_no_public_address():
    settings = make(**{**GOOD, "bot_mode": "polling", "webhook_base_url": "", "webhook_secret": ""})
    assert settings.bot_mode is BotMode.POLLING


def test_webhook_secret_telegram_would_refuse_is_refused_early():
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET"):
        make(**{**GOOD, "webhook_secret": "abc+def/ghi=" * 3})


def test_empty_webhook_cert_means_no_certificate():
    assert make(**GOOD, webhook_cert="").webhook_cert is None


def test_missing_webhook_cert_is_refused_at_start(tmp_path):
    with pytest.raises(ValidationError, match="webhook_cert"):
        make(**GOOD, webhook_cert=str(tmp_path / "missing.pem"))


def test_telegram_limits_default_to_telegrams_own():
    settings = make(**GOOD)
    assert (settings.telegram_global_rate, settings.telegram_global_burst) == (30, 30)
    assert settings.telegram_per_chat_rate == 1


def test_short_backend_calls_wait_long_enough_for_a_crowd_on_a_busy_backend():
    # 300 new users in one second on a two-core box had their registrations take past 10 s.
    assert make(**GOOD).backend_timeout_s == 30


def test_global_rate_may_be_raised_to_telegrams_paid_maximum():
    assert make(**GOOD, telegram_global_rate=1000).telegram_global_rate == 1000


@pytest.mark.parametrize(
    "override",
    [
        {"telegram_global_rate": 0},
        {"telegram_global_rate": 1001},
        {"telegram_global_burst": 0},
        {"telegram_per_chat_rate": 0},
        {"backend_max_streams": 0},
        {"backend_timeout_s": 0},
    ],
)
def test_limits_that_could_not_work_are_refused(override):
    with pytest.raises(ValidationError, match=next(iter(override))):
        make(**GOOD, **override)


def test_a_broadcast_pace_the_global_rate_cannot_carry_is_refused():
    with pytest.raises(ValidationError, match="BROADCAST_PER_SECOND"):
        make(**GOOD, telegram_global_rate=10, broadcast_per_second=20)
    assert make(**GOOD, telegram_global_rate=10, broadcast_per_second=5).broadcast_per_second == 5

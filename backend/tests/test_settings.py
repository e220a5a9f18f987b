"""Settings: safe defaults, placeholder secrets refused in production."""

import pytest
from pydantic import ValidationError

from backend.config import Settings


def make(**values: object) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize("token", ["", "change-me", "CHANGEME", "short-but-real"])
def test_production_refuses_empty_or_placeholder_token(token):
    with pytest.raises(ValidationError, match="INTERNAL_API_TOKEN"):
        make(app_env="production", internal_api_token=token)


def test_production_accepts_a_long_random_token():
    settings = make(app_env="production", internal_api_token="f" * 64)
    assert settings.is_production


def test_defaults_match_the_documented_ones():
    settings = make(app_env="development", internal_api_token="dev")
    assert settings.free_messages_limit == 10
    assert settings.vip_period_days == 30
    assert (settings.backend_host, settings.backend_port) == ("0.0.0.0", 8000)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1,2, 3", {1, 2, 3}), ("[4, 5]", {4, 5}), ("", set()), ("42", {42})],
)
def test_admin_ids_accept_lists_in_several_forms(raw, expected, monkeypatch):
    monkeypatch.setenv("ADMIN_IDS", raw)
    settings = make(app_env="development", internal_api_token="dev")
    assert settings.admin_ids == frozenset(expected)


def test_database_url_must_use_asyncpg():
    with pytest.raises(ValidationError, match="postgresql\\+asyncpg"):
        make(app_env="development", internal_api_token="dev", database_url="postgresql://x/y")

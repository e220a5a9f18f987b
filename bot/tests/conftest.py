"""Bot fixtures: the real dispatcher, a recording Bot session, the real backend over ASGI.

`env` records Bot API calls in-process; `live_env` runs the Bot over HTTP against the loopback
fake Telegram (tests/fakes/telegram.py), so files really go through getFile and the file URL.
"""

import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiogram import Bot, Dispatcher
from redis.asyncio import Redis

from backend.main import bind_state, create_app
from backend.services.providers.registry import ProviderRegistry
from backend.tests.fixtures import TEST_TOKEN, fast_catalog, next_telegram_id, provider_settings
from bot.config import BotSettings
from bot.main import create_bot, create_dispatcher
from bot.services.backend import BackendClient
from bot.services.claims import connect_redis
from bot.tests.telegram import TOKEN, RecordingSession
from bot.utils.telegram_limits import TelegramLimits
from tests.fakes.telegram import FakeTelegram, start_fake_telegram

ADMIN_ID = 777_000
# The real Redis the shared-state tests use (each under a key prefix of its own).
REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own on the real Redis, its keys deleted afterwards."""
    prefix = f"pomogator-test-{secrets.token_hex(6)}:"
    probe = connect_redis(REDIS_URL)
    try:
        await probe.ping()
    except Exception as exc:
        await probe.aclose()
        pytest.skip(f"no Redis at {REDIS_URL}: {type(exc).__name__}")
    try:
        yield prefix
    finally:
        keys = [key async for key in probe.scan_iter(match=f"{prefix}*")]
        if keys:
            await probe.delete(*keys)
        await probe.aclose()


async def no_sleep(seconds: float) -> None:
    """Waiting out a 429 in tests: recorded by the fake's timing, not slept."""


@dataclass
class BotEnv:
    bot: Bot
    dp: Dispatcher
    telegram: RecordingSession
    backend: BackendClient
    fake: object
    settings: BotSettings

    async def send(self, update: dict) -> None:
        await self.dp.feed_raw_update(self.bot, update)


def bot_settings(**values: object) -> BotSettings:
    return BotSettings(
        _env_file=None,  # type: ignore[call-arg]
        app_env="development",
        bot_token=TOKEN,
        internal_api_token=TEST_TOKEN,
        backend_url="http://backend.test",
        stream_interval_s=0.01,
        **values,
    )


@pytest.fixture
async def env(settings, catalog, engine, fake_providers):
    async with backend_client(settings, catalog, engine, fake_providers) as backend:
        telegram = RecordingSession()
        config = bot_settings(admin_ids=str(ADMIN_ID))
        # Telegram's real pacing (1 message/s per chat) is tested on its own; here it would
        # only slow every journey down.
        limits = TelegramLimits(per_chat_rate=1000, per_chat_burst=1000, sleep=no_sleep)
        bot = create_bot(config, session=telegram, limits=limits)  # type: ignore[arg-type]
        dp = create_dispatcher(config, backend)
        await dp.emit_startup(bot=bot, dispatcher=dp, **dp.workflow_data)
        telegram.calls.clear()  # the command menu set at start-up; its own test checks it
        yield BotEnv(bot, dp, telegram, backend, fake_providers, config)
        await dp.emit_shutdown(bot=bot, dispatcher=dp, **dp.workflow_data)


@contextlib.asynccontextmanager
async def replica(
    backend: BackendClient,
    redis: Redis | None = None,
    *,
    session: RecordingSession | None = None,
    **values: object,
) -> AsyncIterator[BotEnv]:
    """One more bot process (its own dispatcher and memory) in front of the same backend."""
    telegram = session or RecordingSession()
    config = bot_settings(**({"admin_ids": str(ADMIN_ID)} | values))
    limits = TelegramLimits(per_chat_rate=1000, per_chat_burst=1000, sleep=no_sleep)
    bot = create_bot(config, session=telegram, limits=limits)  # type: ignore[arg-type]
    dp = create_dispatcher(config, backend, redis)
    await dp.emit_startup(bot=bot, dispatcher=dp, **dp.workflow_data)
    telegram.calls.clear()
    try:
        yield BotEnv(bot, dp, telegram, backend, None, config)
    finally:
        await dp.emit_shutdown(bot=bot, dispatcher=dp, **dp.workflow_data)


@pytest.fixture
def user_id() -> int:
    return next_telegram_id()


@dataclass
class LiveBotEnv:
    """The bot talking HTTP to the fake Telegram, and the real backend answering."""

    bot: Bot
    dp: Dispatcher
    telegram: FakeTelegram
    backend: BackendClient
    fake: Any  # the fake providers
    settings: BotSettings

    async def send(self, update: dict[str, Any]) -> None:
        await self.dp.feed_raw_update(self.bot, update)

    async def left(self, user_id: int) -> int:
        """Free messages left, as the backend counts them."""
        return (await self.backend.profile(user_id)).free_messages_left


@contextlib.asynccontextmanager
async def backend_client(
    settings, catalog, engine, fake_providers, **overrides: object
) -> AsyncIterator[BackendClient]:
    """The real backend app over ASGI, answering through the fake providers."""
    unknown = set(overrides) - set(type(settings).model_fields)
    assert not unknown, f"the backend has no settings {sorted(unknown)}"
    backend_settings = provider_settings(settings, fake_providers).model_copy(
        update={"admin_ids": frozenset({ADMIN_ID}), **overrides}
    )
    test_catalog = fast_catalog(catalog)
    registry = ProviderRegistry.from_settings(backend_settings, test_catalog)
    app = create_app(backend_settings, test_catalog)
    bind_state(app, backend_settings, engine, test_catalog, providers=registry)
    backend = BackendClient(
        "http://backend.test", TEST_TOKEN, transport=httpx.ASGITransport(app=app)
    )
    try:
        yield backend
    finally:
        await backend.aclose()
        await registry.aclose()


@pytest.fixture
async def live_env_factory(
    settings, catalog, engine, fake_providers
) -> AsyncIterator[Callable[..., Any]]:
    """Start a LiveBotEnv; keyword arguments change the backend's settings."""
    stack = contextlib.AsyncExitStack()

    async def start(**backend_overrides: object) -> LiveBotEnv:
        backend = await stack.enter_async_context(
            backend_client(settings, catalog, engine, fake_providers, **backend_overrides)
        )
        telegram = await stack.enter_async_context(start_fake_telegram(TOKEN))
        config = bot_settings(admin_ids=str(ADMIN_ID), telegram_api_base=telegram.base_url)
        limits = TelegramLimits(per_chat_rate=1000, per_chat_burst=1000, sleep=no_sleep)
        bot = create_bot(config, limits=limits)
        stack.push_async_callback(bot.session.close)
        dp = create_dispatcher(config, backend)
        await dp.emit_startup(bot=bot, dispatcher=dp, **dp.workflow_data)
        stack.push_async_callback(dp.emit_shutdown, bot=bot, dispatcher=dp, **dp.workflow_data)
        telegram.reset()  # the command menu set at start-up; its own test checks it
        fake_providers.reset()
        return LiveBotEnv(bot, dp, telegram, backend, fake_providers, config)

    async with stack:
        yield start


@pytest.fixture
async def live_env(live_env_factory) -> LiveBotEnv:
    return await live_env_factory()

"""Bot fixtures: the real dispatcher, a recording Bot session, the real backend over ASGI."""

from dataclasses import dataclass

import httpx
import pytest
from aiogram import Bot, Dispatcher

from backend.main import bind_state, create_app
from backend.services.providers.registry import ProviderRegistry
from backend.tests.fixtures import TEST_TOKEN, fast_catalog, next_telegram_id, provider_settings
from bot.config import BotSettings
from bot.main import create_bot, create_dispatcher
from bot.services.backend import BackendClient
from bot.tests.telegram import TOKEN, RecordingSession
from bot.utils.telegram_limits import TelegramLimits

ADMIN_ID = 777_000


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
    backend_settings = provider_settings(settings, fake_providers).model_copy(
        update={"admin_ids": frozenset({ADMIN_ID})}
    )
    test_catalog = fast_catalog(catalog)
    registry = ProviderRegistry.from_settings(backend_settings, test_catalog)
    app = create_app(backend_settings, test_catalog)
    bind_state(app, backend_settings, engine, test_catalog, providers=registry)
    backend = BackendClient(
        "http://backend.test", TEST_TOKEN, transport=httpx.ASGITransport(app=app)
    )
    telegram = RecordingSession()
    config = bot_settings(admin_ids=str(ADMIN_ID))
    # Telegram's real pacing (1 message/s per chat) is tested on its own; here it would only
    # slow every journey down.
    limits = TelegramLimits(per_chat_rate=1000, per_chat_burst=1000, sleep=no_sleep)
    bot = create_bot(config, session=telegram, limits=limits)  # type: ignore[arg-type]
    dp = create_dispatcher(config, backend)
    await dp.emit_startup(bot=bot, dispatcher=dp, **dp.workflow_data)
    telegram.calls.clear()  # the command menu set at start-up; its own test checks it
    yield BotEnv(bot, dp, telegram, backend, fake_providers, config)
    await dp.emit_shutdown(bot=bot, dispatcher=dp, **dp.workflow_data)
    await backend.aclose()
    await registry.aclose()


@pytest.fixture
def user_id() -> int:
    return next_telegram_id()

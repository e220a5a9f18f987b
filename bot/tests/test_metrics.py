"""The bot's /metrics: updates, Bot API errors and 429s, and the request id sent to the backend."""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import structlog
from aiogram import Bot, Dispatcher
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bot.main import create_bot, create_dispatcher, create_webhook_app
from bot.services.backend import BackendClient
from bot.tests.conftest import backend_client, bot_settings, no_sleep
from bot.tests.telegram import RecordingSession, message_update, retry_after
from bot.tests.test_webhook import free_port
from bot.utils.metrics import BotMetrics
from bot.utils.telegram_limits import TelegramLimits


def value(metrics: BotMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


@dataclass
class MeteredBot:
    bot: Bot
    dp: Dispatcher
    telegram: RecordingSession
    backend: BackendClient
    metrics: BotMetrics
    seen_request_ids: list[str]


class RecordingTransport(httpx.AsyncBaseTransport):
    """The backend over ASGI, remembering the X-Request-ID of every call."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seen: list[str]) -> None:
        self.inner = inner
        self.seen = seen

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.headers.get("x-request-id", ""))
        return await self.inner.handle_async_request(request)


@contextlib.asynccontextmanager
async def metered(settings, catalog, engine, fake_providers) -> AsyncIterator[MeteredBot]:
    async with backend_client(settings, catalog, engine, fake_providers) as backend:
        seen: list[str] = []
        for http in (backend._http, backend._streams):  # short calls and streamed answers
            http._transport = RecordingTransport(http._transport, seen)
        telegram = RecordingSession()
        config = bot_settings()  # no admins: no broadcast runner calling in the background
        limits = TelegramLimits(per_chat_rate=1000, per_chat_burst=1000, sleep=no_sleep)
        metrics = BotMetrics()
        bot = create_bot(config, session=telegram, limits=limits, metrics=metrics)  # type: ignore[arg-type]
        dp = create_dispatcher(config, backend, metrics=metrics)
        await dp.emit_startup(bot=bot, dispatcher=dp, **dp.workflow_data)
        telegram.calls.clear()
        seen.clear()
        try:
            yield MeteredBot(bot, dp, telegram, backend, metrics, seen)
        finally:
            await dp.emit_shutdown(bot=bot, dispatcher=dp, **dp.workflow_data)


async def test_a_handled_update_is_timed_and_counted(
    settings, catalog, engine, fake_providers, user_id
):
    async with metered(settings, catalog, engine, fake_providers) as env:
        await env.dp.feed_raw_update(env.bot, message_update(user_id, "/start"))
        metrics = env.metrics
        assert value(metrics, "pomogator_bot_updates_total", type="message", outcome="handled") == 1
        assert value(metrics, "pomogator_bot_update_duration_seconds_count", type="message") == 1
        assert value(metrics, "pomogator_bot_answers_in_flight") == 0


async def test_every_backend_call_of_an_update_carries_its_request_id(
    settings, catalog, engine, fake_providers, user_id
):
    async with metered(settings, catalog, engine, fake_providers) as env:
        update = message_update(user_id, "Hello there")
        await env.dp.feed_raw_update(env.bot, update)
        assert env.seen_request_ids
        assert set(env.seen_request_ids) == {f"upd-{update['update_id']}"}
        assert structlog.contextvars.get_contextvars().get("request_id") is None


async def test_backend_client_sends_no_request_id_outside_an_update():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={"error": {"code": "user_not_found", "message": ""}})

    client = BackendClient("http://backend.test", "t", transport=httpx.MockTransport(answer))
    with contextlib.suppress(Exception):
        await client.profile(1)
    with (
        structlog.contextvars.bound_contextvars(request_id="upd-42"),
        contextlib.suppress(Exception),
    ):
        await client.profile(1)
    await client.aclose()
    assert "x-request-id" not in seen[0].headers
    assert seen[1].headers["x-request-id"] == "upd-42"


async def test_telegram_429s_and_errors_are_counted_per_method(
    settings, catalog, engine, fake_providers, user_id
):
    async with metered(settings, catalog, engine, fake_providers) as env:
        env.telegram.failures["SendMessage"] = [retry_after(1), retry_after(1)]
        await env.dp.feed_raw_update(env.bot, message_update(user_id, "/start"))
        metrics = env.metrics
        assert value(metrics, "pomogator_telegram_429_total", method="sendMessage") == 2
        assert (
            value(metrics, "pomogator_telegram_api_errors_total", method="sendMessage", code="429")
            == 2
        )
        assert env.telegram.named("SendMessage"), "the message went out after the retries"


async def test_broadcast_runner_finds_the_counter_in_the_dispatcher(
    settings, catalog, engine, fake_providers
):
    async with metered(settings, catalog, engine, fake_providers) as env:
        counter = env.dp["metrics"].broadcast_messages
        counter.labels(outcome="delivered").inc()
        assert value(env.metrics, "pomogator_broadcast_messages_total", outcome="delivered") == 1


async def test_webhook_app_serves_metrics_without_the_secret(
    settings, catalog, engine, fake_providers, user_id
):
    async with metered(settings, catalog, engine, fake_providers) as env:
        await env.dp.feed_raw_update(env.bot, message_update(user_id, "/start"))
        config = bot_settings(
            webhook_secret="webhook-secret-0123456789abcdef0123",
            webhook_base_url="https://bot.example.test",
            webhook_path="/tg/hook",
        )
        app = create_webhook_app(config, env.bot, env.dp, env.backend)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with httpx.AsyncClient() as http:
                response = await http.get(f"http://127.0.0.1:{port}/metrics")
        finally:
            await runner.cleanup()
    assert response.status_code == 200
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"pomogator_bot_updates", "pomogator_bot_update_duration_seconds"} <= names

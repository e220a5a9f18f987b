"""The webhook server: Telegram's secret header is required; setWebhook is called at start."""

import asyncio
import gc
import socket
from pathlib import Path

import httpx
from aiogram.types import Update

from bot.main import WEBHOOK_HANDLER, create_webhook_app
from bot.tests.conftest import bot_settings
from bot.tests.telegram import message_update

SECRET = "webhook-secret-0123456789abcdef0123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve(env):
    from aiohttp import web

    config = bot_settings(
        webhook_secret=SECRET, webhook_base_url="https://bot.example.test", webhook_path="/tg/hook"
    )
    app = create_webhook_app(config, env.bot, env.dp, env.backend)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def test_wrong_secret_is_refused_and_nothing_happens(env, user_id):
    runner, url = await serve(env)
    try:
        env.telegram.calls.clear()
        async with httpx.AsyncClient() as http:
            wrong = await http.post(
                f"{url}/tg/hook",
                json=message_update(user_id, "/start"),
                headers={"X-Telegram-Bot-Api-Secret-Token": "nope"},
            )
            missing = await http.post(f"{url}/tg/hook", json=message_update(user_id, "/start"))
        assert (wrong.status_code, missing.status_code) == (401, 401)
        assert env.telegram.named("SendMessage") == []
    finally:
        await runner.cleanup()


async def test_start_sets_the_webhook_with_secret_and_updates(env, user_id):
    runner, url = await serve(env)
    try:
        [call] = env.telegram.named("SetWebhook")
        assert call.params["url"] == "https://bot.example.test/tg/hook"
        assert call.params["secret_token"] == SECRET
        assert "callback_query" in call.params["allowed_updates"]
        async with httpx.AsyncClient() as http:
            health = await http.get(f"{url}/health")
        assert health.status_code == 200
    finally:
        await runner.cleanup()


async def test_an_update_is_answered_in_the_background_holding_only_its_model(env, user_id):
    env.fake.script("openai", text="An answer still streaming.", chunks=3, chunk_delay_s=0.3)
    runner, url = await serve(env)
    handler = runner.app[WEBHOOK_HANDLER]
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    try:
        async with httpx.AsyncClient() as http:
            taken = await http.post(
                f"{url}/tg/hook", json=message_update(user_id, "A question"), headers=headers
            )
        assert taken.status_code == 200  # acknowledged before the answer
        [task] = handler._background_feed_update_tasks
        # While the answer streams, the task holds the Update, not the decoded body as well
        # (aiogram's own background mode keeps the dict for the whole answer).
        frame = task.get_coro().cr_frame
        assert frame is not None
        assert {type(v) for v in frame.f_locals.values()} & {dict} == set()
        assert isinstance(frame.f_locals["update"], Update)
        await task
        [answer] = [
            c for c in env.telegram.named("SendMessage") if c.params.get("chat_id") == user_id
        ]
        assert "An answer still streaming." in answer.params["text"]
    finally:
        await runner.cleanup()


async def test_a_body_that_is_no_update_is_acknowledged_and_dropped(env, user_id):
    runner, url = await serve(env)
    handler = runner.app[WEBHOOK_HANDLER]
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    try:
        env.telegram.calls.clear()
        async with httpx.AsyncClient() as http:
            odd = await http.post(
                f"{url}/tg/hook", json={"update_id": "not a number"}, headers=headers
            )
            listed = await http.post(f"{url}/tg/hook", json=[1, 2], headers=headers)
        # Telegram would only send it again: it is taken, logged, and nothing is done.
        assert (odd.status_code, listed.status_code) == (200, 200)
        assert handler._background_feed_update_tasks == set()
        assert env.telegram.calls == []
    finally:
        await runner.cleanup()


async def test_the_dispatcher_keeps_no_state_per_user(env, user_id):
    for n in range(3):
        await env.send(message_update(user_id + n, "/start"))
    assert env.telegram.named("SendMessage")
    # aiogram's FSM would keep a record per (chat, user) in memory for as long as the bot runs.
    assert env.dp.fsm.storage.storage == {}  # type: ignore[attr-defined]


async def test_self_signed_certificate_is_uploaded_with_set_webhook(env, tmp_path):
    from aiohttp import web

    cert = tmp_path / "fullchain.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    config = bot_settings(
        webhook_secret=SECRET, webhook_base_url="https://203.0.113.7:8443", webhook_cert=cert
    )
    runner = web.AppRunner(create_webhook_app(config, env.bot, env.dp, env.backend))
    await runner.setup()
    try:
        [call] = env.telegram.named("SetWebhook")
        assert call.params["url"] == "https://203.0.113.7:8443/telegram/webhook"
        assert Path(call.params["certificate"].path) == cert
    finally:
        await runner.cleanup()


async def test_no_certificate_is_uploaded_without_webhook_cert(env):
    runner, _url = await serve(env)
    try:
        [call] = env.telegram.named("SetWebhook")
        assert "certificate" not in call.params
    finally:
        await runner.cleanup()


async def test_startup_moves_the_heap_out_of_the_collectors_sight(env):
    gc.unfreeze()
    runner, _url = await serve(env)
    try:
        frozen = gc.get_freeze_count()
    finally:
        await runner.cleanup()
        gc.unfreeze()
    # aiogram's types alone are ~190k objects a full collection would otherwise walk.
    assert frozen > 100_000


async def test_an_update_arriving_as_the_bot_stops_is_refused_for_telegram_to_send_again(
    env, user_id
):
    env.fake.script("openai", text="An answer still streaming.", chunks=3, chunk_delay_s=0.3)
    runner, url = await serve(env)
    handler = runner.app[WEBHOOK_HANDLER]
    other = user_id + 1
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with httpx.AsyncClient() as http:
        taken = await http.post(
            f"{url}/tg/hook", json=message_update(user_id, "A question"), headers=headers
        )
        assert taken.status_code == 200
        # The next update is received but not yet handled when the stop begins (under load,
        # such requests wait for the event loop).
        arrived, go_on = asyncio.Event(), asyncio.Event()
        resolve_bot = handler.resolve_bot

        async def held(request):
            arrived.set()
            await go_on.wait()
            return await resolve_bot(request)

        handler.resolve_bot = held  # type: ignore[method-assign]
        late = asyncio.create_task(
            http.post(
                f"{url}/tg/hook", json=message_update(other, "Another question"), headers=headers
            )
        )
        await arrived.wait()
        stopping = asyncio.create_task(runner.cleanup())
        for _ in range(500):
            if handler.draining:
                break
            await asyncio.sleep(0.01)
        go_on.set()
        refused = await late
        await stopping

    assert refused.status_code == 503
    chats = {c.params.get("chat_id") for c in env.telegram.named("SendMessage")}
    assert user_id in chats  # the answer in flight was finished
    assert other not in chats


async def test_a_message_the_drain_gives_up_on_is_handed_over_before_the_clients_close(
    env, user_id, redis_prefix
):
    from aiohttp import web

    from bot.main import create_dispatcher
    from bot.services.claims import connect_redis
    from bot.services.inflight import InFlightAnswers
    from bot.tests.conftest import REDIS_URL

    env.fake.script("openai", text="A long answer. " * 3, chunks=3, chunk_delay_s=1.0)
    config = bot_settings(
        webhook_secret=SECRET,
        webhook_base_url="https://bot.example.test",
        webhook_path="/tg/hook",
        redis_key_prefix=redis_prefix,
        shutdown_grace_s=0.2,
    )
    redis = connect_redis(REDIS_URL)
    dp = create_dispatcher(config, env.backend, redis)
    runner = web.AppRunner(create_webhook_app(config, env.bot, dp, env.backend, redis))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with httpx.AsyncClient() as http:
        taken = await http.post(
            f"http://127.0.0.1:{port}/tg/hook",
            json=message_update(user_id, "A long question"),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
    assert taken.status_code == 200
    for _ in range(500):
        if env.fake.requests("openai"):
            break
        await asyncio.sleep(0.01)
    await runner.cleanup()  # the answer, under way, runs past SHUTDOWN_GRACE_S

    other = connect_redis(REDIS_URL)
    try:
        lost = await InFlightAnswers(other, redis_prefix).lost()
    finally:
        await other.aclose()
    # Told at once by another replica, not after the lease: the lease was ended in time.
    assert [taken.chat_id for taken in lost] == [user_id]

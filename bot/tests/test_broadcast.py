"""Broadcasts: paced copies, blocked and failed recipients counted, resumed after a stop.

These tests have a database of their own: "all users" is then only the users made here, and a
broadcast left running cannot reach the other tests' bots.
"""

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.methods import CopyMessage, TelegramMethod
from aiogram.methods.base import TelegramType
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from backend.database.migrate import upgrade
from backend.main import bind_state, create_app
from backend.services.providers.registry import ProviderRegistry
from backend.tests.fixtures import TEST_TOKEN, fast_catalog, next_telegram_id, provider_settings
from bot.main import create_bot, create_dispatcher
from bot.services.backend import BackendClient
from bot.services.broadcast import LEASE_S, BroadcastRunner, pacing
from bot.services.schemas import BroadcastInfo
from bot.tests.conftest import ADMIN_ID, bot_settings, no_sleep
from bot.tests.telegram import BOT_USER, RecordingSession, callback_update, message_update
from bot.utils.i18n import create_i18n
from bot.utils.telegram_limits import TelegramLimits


class ShiftedClock:
    """Real time, moved forward by hand (to let a lease run out)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class TimedSession(RecordingSession):
    """Records when each copy was made (on the event loop's clock) and can act on it."""

    copy_times: list[float] = field(default_factory=list)
    after_copy: Callable[[int], None] | None = None

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        result = await super().make_request(bot, method, timeout)
        if isinstance(method, CopyMessage):
            self.copy_times.append(asyncio.get_running_loop().time())
            if self.after_copy is not None:
                self.after_copy(len(self.copy_times))
        return result

    def copied_to(self) -> list[int]:
        return [int(c.params["chat_id"]) for c in self.named("CopyMessage")]

    def refuse(self, chat_id: int, error: type[Exception], message: str) -> None:
        def decide(method: TelegramMethod[Any]) -> Exception | None:
            if getattr(method, "chat_id", None) == chat_id:
                return error(method=method, message=message)  # type: ignore[call-arg]
            return None

        self.failures.setdefault("CopyMessage", []).append(decide)


@pytest.fixture(scope="module")
def broadcast_database(scratch_database) -> str:
    url = scratch_database()
    upgrade(url, configure_logging=False)
    return url


@pytest.fixture(scope="module")
async def broadcast_engine(broadcast_database) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(broadcast_database, pool_size=5)
    yield engine
    await engine.dispose()


@dataclass
class World:
    backend: BackendClient
    telegram: TimedSession
    bot: Bot
    clock: ShiftedClock
    i18n: Any

    def runner(self, **options: Any) -> BroadcastRunner:
        options = {"per_second": 30.0, "progress_interval_s": 0.0, **options}
        runner = BroadcastRunner(self.backend, frozenset({ADMIN_ID}), **options)
        runner.bind(self.bot, self.i18n.core)
        return runner

    async def users(self, count: int) -> list[int]:
        ids = [next_telegram_id() for _ in range(count)]
        for user_id in ids:
            await self.backend.register(
                user_id, username=None, first_name="Anna", last_name=None, language_code="en"
            )
        return ids

    async def broadcast(self, audience: str = "all") -> BroadcastInfo:
        return await self.backend.create_broadcast(ADMIN_ID, audience, ADMIN_ID, 42)  # type: ignore[arg-type]

    async def state(self, broadcast_id: int) -> BroadcastInfo:
        [found] = [b for b in await self.backend.broadcasts(ADMIN_ID) if b.id == broadcast_id]
        return found


@pytest.fixture
async def world(settings, catalog, broadcast_engine, fake_providers) -> AsyncIterator[World]:
    clock = ShiftedClock()
    backend_settings = provider_settings(settings, fake_providers).model_copy(
        update={"admin_ids": frozenset({ADMIN_ID})}
    )
    test_catalog = fast_catalog(catalog)
    registry = ProviderRegistry.from_settings(backend_settings, test_catalog)
    app = create_app(backend_settings, test_catalog, clock)
    bind_state(app, backend_settings, broadcast_engine, test_catalog, clock, providers=registry)
    backend = BackendClient(
        "http://backend.test", TEST_TOKEN, transport=httpx.ASGITransport(app=app)
    )
    telegram = TimedSession()
    limits = TelegramLimits(
        global_rate=1000, global_burst=1000, per_chat_rate=1000, per_chat_burst=1000, sleep=no_sleep
    )
    bot = create_bot(bot_settings(), session=telegram, limits=limits)  # type: ignore[arg-type]
    i18n = create_i18n()
    await i18n.core.startup()
    try:
        yield World(backend, telegram, bot, clock, i18n)
    finally:
        # Nothing left running for the next test's runners.
        for left in await backend.broadcasts(ADMIN_ID, "running"):
            await backend.cancel_broadcast(ADMIN_ID, left.id)
        await backend.aclose()
        await registry.aclose()


class YieldingLimiter:
    """No waiting, but a chance for the loop to run (and to cancel) before each copy."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.log = log

    async def acquire(self, amount: float = 1) -> None:
        if self.log is not None:
            self.log.append("acquire")
        await asyncio.sleep(0)


def assert_each_once(world: World, users: list[int]) -> None:
    copies = Counter(world.telegram.copied_to())
    assert [chat for chat, n in copies.items() if n > 1] == []
    assert all(copies[user] == 1 for user in users)


async def test_copies_are_spaced_by_the_broadcast_rate(world):
    await world.users(6)
    broadcast = await world.broadcast()
    rate = 100.0
    await world.runner(limiter=pacing(rate)).run_broadcast(broadcast)
    times = world.telegram.copy_times
    assert len(times) == broadcast.total >= 6
    # One copy per 1/rate seconds, with no burst: n copies span at least (n - 1) / rate.
    assert times[-1] - times[0] >= (len(times) - 1) / rate * 0.95


async def test_every_copy_waits_for_the_limiter_first(world):
    await world.users(4)
    broadcast = await world.broadcast()
    log: list[str] = []
    world.telegram.after_copy = lambda _n: log.append("copy")
    await world.runner(limiter=YieldingLimiter(log)).run_broadcast(broadcast)
    assert log == ["acquire", "copy"] * broadcast.total


async def test_blocked_and_failed_recipients_are_counted(world):
    _delivered, blocked, failed = await world.users(3)
    world.telegram.refuse(blocked, TelegramForbiddenError, "Forbidden: bot was blocked by the user")
    world.telegram.refuse(failed, TelegramBadRequest, "Bad Request: chat not found")
    broadcast = await world.broadcast()
    await world.runner(limiter=YieldingLimiter()).run_broadcast(broadcast)
    done = await world.state(broadcast.id)
    assert done.status == "done"
    assert (done.blocked, done.failed, done.delivered) == (1, 1, done.total - 2)
    assert blocked not in world.telegram.copied_to()
    card = await world.backend.admin_lookup(ADMIN_ID, str(blocked))
    assert card.bot_blocked


async def test_progress_is_shown_and_the_final_report_sent_to_the_admin(world):
    await world.users(7)
    broadcast = await world.broadcast()
    await world.runner(limiter=YieldingLimiter(), batch_size=5).run_broadcast(broadcast)
    to_admin = [c for c in world.telegram.named("SendMessage", "EditMessageText")]
    assert all(int(c.params["chat_id"]) == ADMIN_ID for c in to_admin)
    first, *edits, report = to_admin
    total = broadcast.total
    assert first.text == (
        f"📣 Broadcast #{broadcast.id}: 5/{total} · delivered 5 · blocked 0 · failed 0"
    )
    assert first.buttons() == [("⏹ Stop", f"admbs:{broadcast.id}")]
    assert edits and all(c.method == "EditMessageText" for c in edits)
    assert edits[-1].text.startswith(f"📣 Broadcast #{broadcast.id}: {total}/{total} ")
    assert report.text == (
        f"✅ Broadcast #{broadcast.id} finished: delivered {total} · blocked 0 · failed 0 "
        f"(of {total})."
    )


async def test_a_stopped_runner_finishes_its_batch_and_the_next_one_goes_on(world):
    users = await world.users(12)
    broadcast = await world.broadcast()
    first = world.runner(limiter=YieldingLimiter(), batch_size=5)
    stopping: list[asyncio.Task[None]] = []
    world.telegram.after_copy = lambda n: (
        n == 7 and stopping.append(asyncio.create_task(first.stop()))
    )
    await first.start(world.bot)
    for _ in range(500):
        if stopping and stopping[0].done():
            break
        await asyncio.sleep(0.01)
    assert stopping and stopping[0].done()
    halfway = await world.state(broadcast.id)
    # The batch in hand was finished and reported: its lease is free for the next runner.
    assert (halfway.status, halfway.delivered) == ("running", 10)
    assert halfway.cursor == sorted(world.telegram.copied_to())[-1]

    world.telegram.after_copy = None
    second = world.runner(limiter=YieldingLimiter(), batch_size=5)
    await second.start(world.bot)
    await wait_until_ended(world, broadcast.id)
    await second.stop()
    done = await world.state(broadcast.id)
    assert (done.status, done.delivered) == ("done", done.total)
    assert_each_once(world, users)
    assert len(world.telegram.copied_to()) == done.total


async def test_a_runner_killed_mid_batch_is_resumed_once_its_lease_runs_out(world):
    users = await world.users(9)
    broadcast = await world.broadcast()
    killed = world.runner(limiter=YieldingLimiter(), batch_size=5)
    task = asyncio.create_task(killed.run_broadcast(broadcast))
    world.telegram.after_copy = lambda n: n == 3 and task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # What was sent before it died is kept; the rest of its batch stays leased.
    assert (await world.state(broadcast.id)).delivered == 3
    world.telegram.after_copy = None
    again = world.runner(limiter=YieldingLimiter(), batch_size=5)
    wait = await again.run_broadcast(broadcast)
    assert wait is not None and 0 < wait <= LEASE_S
    assert len(world.telegram.copied_to()) == 3

    world.clock.offset += timedelta(seconds=LEASE_S + 1)
    assert await again.run_broadcast(broadcast) is None
    done = await world.state(broadcast.id)
    assert (done.status, done.delivered) == ("done", done.total)
    assert_each_once(world, users)


async def test_two_runners_at_once_never_send_to_anyone_twice(world):
    users = await world.users(15)
    broadcast = await world.broadcast()
    runners = [world.runner(limiter=YieldingLimiter(), batch_size=4) for _ in range(2)]
    for _attempt in range(20):
        await asyncio.gather(*(r.run_broadcast(broadcast) for r in runners))
        if (await world.state(broadcast.id)).status == "done":
            break
    done = await world.state(broadcast.id)
    assert (done.status, done.delivered) == ("done", done.total)
    assert_each_once(world, users)


async def test_a_canceled_broadcast_stops_after_the_batch_in_hand(world):
    await world.users(12)
    broadcast = await world.broadcast()
    canceling: list[asyncio.Task[BroadcastInfo]] = []
    world.telegram.after_copy = lambda n: (
        n == 1
        and canceling.append(
            asyncio.create_task(world.backend.cancel_broadcast(ADMIN_ID, broadcast.id))
        )
    )
    await world.runner(limiter=YieldingLimiter(), batch_size=5).run_broadcast(broadcast)
    await asyncio.gather(*canceling)
    ended = await world.state(broadcast.id)
    assert ended.status == "canceled"
    assert len(world.telegram.copied_to()) < ended.total
    assert world.telegram.sent_texts()[-1].startswith(f"⏹ Broadcast #{broadcast.id} stopped:")


async def wait_until_ended(world: World, broadcast_id: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (await world.state(broadcast_id)).status == "running":
        assert time.monotonic() < deadline, "the broadcast did not end"
        await asyncio.sleep(0.02)


# --- through the bot: /broadcast, the preview, Send ---


@contextlib.asynccontextmanager
async def admin_bot(world: World) -> AsyncIterator[Dispatcher]:
    config = bot_settings(
        admin_ids=str(ADMIN_ID), telegram_global_rate=1000, broadcast_per_second=30
    )
    dp = create_dispatcher(config, world.backend)
    await dp.emit_startup(bot=world.bot, dispatcher=dp, **dp.workflow_data)
    world.telegram.calls.clear()
    try:
        yield dp
    finally:
        await dp.emit_shutdown(bot=world.bot, dispatcher=dp, **dp.workflow_data)


def reply_to(user_id: int, prompt: Any, text: str) -> dict[str, Any]:
    return message_update(
        user_id,
        text,
        reply_to_message={
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private"},
            "from": BOT_USER.model_dump(exclude_none=True),
            "text": prompt.text,
        },
    )


async def test_broadcast_is_previewed_then_sent_to_everyone_once_confirmed(world):
    users = await world.users(3)
    async with admin_bot(world) as dp:
        await dp.feed_raw_update(world.bot, message_update(ADMIN_ID, "/broadcast all"))
        [prompt] = world.telegram.named("SendMessage")
        assert prompt.text.startswith("📣 Broadcast to all users\n")
        assert prompt.params["reply_markup"].force_reply
        news = reply_to(ADMIN_ID, prompt, "Big news!")
        news_id = news["message"]["message_id"]
        await dp.feed_raw_update(world.bot, news)
        [preview_copy] = world.telegram.named("CopyMessage")
        assert preview_copy.params == preview_copy.params | {
            "chat_id": ADMIN_ID,
            "from_chat_id": ADMIN_ID,
            "message_id": news["message"]["message_id"],
        }
        count = await world.backend.audience_count(ADMIN_ID, "all")
        preview = world.telegram.named("SendMessage")[-1]
        assert preview.text == f"☝️ This goes to {count} users. Send it?"
        (_send, confirm), (_drop, _dropped) = preview.buttons()
        world.telegram.calls.clear()
        await dp.feed_raw_update(world.bot, callback_update(ADMIN_ID, confirm))
        [broadcast] = await world.backend.broadcasts(ADMIN_ID, "running") or [None]
        assert broadcast is not None
        assert (broadcast.message_id, broadcast.total) == (news["message"]["message_id"], count)
        assert f"Broadcast #{broadcast.id} started" in world.telegram.sent_texts()[-1]
        await dp.feed_raw_update(world.bot, callback_update(ADMIN_ID, confirm))  # a second tap
        await wait_until_ended(world, broadcast.id)
    assert_each_once(world, users)
    assert world.telegram.sent_texts()[-1].startswith(f"✅ Broadcast #{broadcast.id} finished")
    same = [b for b in await world.backend.broadcasts(ADMIN_ID) if b.message_id == news_id]
    assert len(same) == 1


async def test_cancel_on_the_preview_sends_nothing(world):
    await world.users(1)
    async with admin_bot(world) as dp:
        await dp.feed_raw_update(world.bot, message_update(ADMIN_ID, "/broadcast vip"))
        [prompt] = world.telegram.named("SendMessage")
        await dp.feed_raw_update(world.bot, reply_to(ADMIN_ID, prompt, "VIP news"))
        _confirm, (_label, drop) = world.telegram.named("SendMessage")[-1].buttons()
        await dp.feed_raw_update(world.bot, callback_update(ADMIN_ID, drop))
        assert world.telegram.sent_texts()[-1] == "Broadcast cancelled; nothing was sent."
    assert await world.backend.broadcasts(ADMIN_ID, "running") == []


async def test_a_forged_confirm_from_a_non_admin_creates_nothing(world):
    [stranger] = await world.users(1)
    async with admin_bot(world) as dp:
        await dp.feed_raw_update(world.bot, callback_update(stranger, "admb:confirm:all:5"))
        [alert] = world.telegram.named("AnswerCallbackQuery")
        assert alert.params["text"] == "This command is for the bot's operators."
    assert await world.backend.broadcasts(ADMIN_ID, "running") == []


async def test_the_bot_resumes_a_running_broadcast_at_start_up(world):
    users = await world.users(4)
    broadcast = await world.broadcast()
    async with admin_bot(world):
        await wait_until_ended(world, broadcast.id)
    assert (await world.state(broadcast.id)).status == "done"
    assert_each_once(world, users)

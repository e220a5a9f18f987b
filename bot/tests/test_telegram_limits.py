"""The bot stays under Telegram's rate limits and rides out flood control."""

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import GetMe, SendMessage, SendMessageDraft, TelegramMethod
from redis.asyncio import Redis
from structlog.testing import capture_logs

from bot.handlers.chat import LiveAnswer
from bot.main import create_bot
from bot.services.claims import connect_redis
from bot.tests.conftest import REDIS_URL, bot_settings, closed_port
from bot.utils.telegram_limits import DraftSkipped, TelegramLimits

Reply = tuple[int, dict[str, Any]]


def flood(retry_after: int) -> Reply:
    return 429, {
        "ok": False,
        "error_code": 429,
        "description": f"Too Many Requests: retry after {retry_after}",
        "parameters": {"retry_after": retry_after},
    }


BLOCKED: Reply = (
    403,
    {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
)


class RecordingSession(BaseSession):
    """Answers like the Bot API from a script and records what reached the network."""

    def __init__(self, script: list[Reply] | None = None) -> None:
        super().__init__()
        self.script = list(script or [])
        self.requests: list[tuple[float, TelegramMethod[Any]]] = []

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[Any],
        timeout: int | None = None,
    ) -> Any:
        self.requests.append((time.monotonic(), method))
        status, body = self.script.pop(0) if self.script else (200, success(method))
        # Through aiogram's own response parsing, so errors are exactly what it raises.
        return self.check_response(bot, method, status, json.dumps(body)).result

    async def stream_content(self, *args: Any, **kwargs: Any) -> AsyncGenerator[bytes, None]:
        yield b""

    async def close(self) -> None:
        pass

    @property
    def chats(self) -> list[Any]:
        return [getattr(method, "chat_id", None) for _, method in self.requests]

    @property
    def names(self) -> list[str]:
        return [type(method).__name__ for _, method in self.requests]

    @property
    def drafts(self) -> list[str]:
        return [m.text for _, m in self.requests if isinstance(m, SendMessageDraft)]


def success(method: TelegramMethod[Any]) -> dict[str, Any]:
    if isinstance(method, SendMessage):
        result: Any = {
            "message_id": len(method.text),
            "date": 0,
            "chat": {"id": method.chat_id, "type": "private"},
            "text": method.text,
        }
    elif isinstance(method, GetMe):
        result = {"id": 1, "is_bot": True, "first_name": "Pomogator"}
    else:
        result = True
    return {"ok": True, "result": result}


class RecordingSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


MakeBot = Callable[..., tuple[Bot, RecordingSession, TelegramLimits]]


@pytest.fixture
def make_bot(sleep: RecordingSleep) -> MakeBot:
    def make(
        script: list[Reply] | None = None, **options: Any
    ) -> tuple[Bot, RecordingSession, TelegramLimits]:
        options = {"global_rate": 1000.0, "global_burst": 1000, "per_chat_rate": 1000.0} | options
        limits = TelegramLimits(sleep=sleep, **options)
        session = RecordingSession(script)
        session.middleware(limits)
        return Bot("123456:TEST", session=session), session, limits

    return make


async def test_flood_control_is_waited_out_and_the_message_arrives(make_bot, sleep):
    bot, session, _ = make_bot([flood(2)])

    message = await bot.send_message(42, "hello")

    assert message.text == "hello"
    assert sleep.calls == [2]
    assert session.chats == [42, 42]


async def test_flood_control_retries_stop_at_the_bound(make_bot, sleep):
    bot, session, _ = make_bot([flood(2)] * 10, max_retries=3)

    with pytest.raises(TelegramRetryAfter) as raised:
        await bot.send_message(42, "hello")

    assert raised.value.retry_after == 2
    assert sleep.calls == [2, 2, 2]
    assert len(session.requests) == 4


async def test_flood_control_longer_than_the_maximum_wait_is_raised_at_once(make_bot, sleep):
    bot, session, _ = make_bot([flood(120)], max_retry_after=60)

    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(42, "hello")

    assert sleep.calls == []
    assert len(session.requests) == 1


async def test_blocked_user_is_not_retried(make_bot, sleep):
    bot, session, _ = make_bot([BLOCKED])

    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(42, "hello")

    assert len(session.requests) == 1
    assert sleep.calls == []


async def test_blocked_user_is_recorded_and_reported(make_bot):
    reported: list[Any] = []
    bot, _, limits = make_bot([BLOCKED], on_forbidden=reported.append)

    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(42, "hello")

    assert limits.blocked_chats == {42}
    assert limits.forbidden_count == 1
    assert reported == [42]


async def test_chat_that_accepts_a_message_again_is_no_longer_blocked(make_bot):
    bot, _, limits = make_bot([BLOCKED])
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(42, "hello")

    await bot.send_message(42, "welcome back")

    assert limits.blocked_chats == set()


async def test_messages_to_one_chat_are_spaced_but_other_chats_are_not_held_up(make_bot):
    bot, session, _ = make_bot(per_chat_rate=2.0)

    await asyncio.gather(
        bot.send_message(1, "first"),
        bot.send_message(1, "second"),
        bot.send_message(2, "other chat"),
    )

    assert session.chats == [1, 2, 1]
    (first, _), (other, _), (second, _) = session.requests
    assert second - first >= 0.4
    assert other - first < 0.25


async def test_global_limit_caps_throughput_across_chats(make_bot):
    bot, session, _ = make_bot(global_rate=20.0, global_burst=1)

    started = time.monotonic()
    await asyncio.gather(*(bot.send_message(chat, "hi") for chat in range(6)))

    # 6 calls at 20/s with no burst need at least 5 gaps of 0.05 s.
    assert time.monotonic() - started >= 0.2
    assert sorted(session.chats) == list(range(6))


async def test_methods_that_send_nothing_are_not_throttled(make_bot):
    bot, session, _ = make_bot(global_rate=1.0, global_burst=1)
    await bot.send_message(1, "uses the only slot for a second")

    started = time.monotonic()
    await bot.get_me()

    assert time.monotonic() - started < 0.5
    assert len(session.requests) == 2


async def test_per_chat_limiters_are_bounded(make_bot):
    bot, _, limits = make_bot(max_chats=3)

    for chat in range(10):
        await bot.send_message(chat, "hi")

    assert limits.tracked_chats == 3


# --- drafts: best-effort, final messages first -------------------------------------------------


async def draft(bot: Bot, chat_id: int = 42, text: str = "Thinking…") -> None:
    await bot.send_message_draft(chat_id=chat_id, draft_id=1, text=text)


async def test_draft_is_skipped_at_once_when_the_global_budget_is_spent(make_bot):
    bot, session, limits = make_bot(global_rate=1.0, global_burst=1)
    await bot.send_message(1, "takes the only slot for a second")

    started = time.monotonic()
    with pytest.raises(DraftSkipped):
        await draft(bot)

    assert time.monotonic() - started < 0.1
    assert session.names == ["SendMessage"]
    assert limits.drafts_skipped == 1


async def test_draft_spends_a_spare_slot_of_the_global_budget(make_bot):
    bot, session, _ = make_bot(global_rate=1.0, global_burst=1)

    await draft(bot, text="sent: the slot was spare")
    with pytest.raises(DraftSkipped):
        await draft(bot, text="skipped: the first draft took the slot")

    assert session.drafts == ["sent: the slot was spare"]


async def test_final_message_waits_for_its_turn_instead_of_being_skipped(make_bot):
    bot, session, _ = make_bot(global_rate=20.0, global_burst=1)
    await draft(bot)

    started = time.monotonic()
    await bot.send_message(42, "the answer")

    assert time.monotonic() - started >= 0.04
    assert session.names == ["SendMessageDraft", "SendMessage"]


async def test_draft_never_takes_the_slot_a_waiting_message_is_due(make_bot):
    bot, session, _ = make_bot(global_rate=20.0, global_burst=1)
    await bot.send_message(1, "takes the only slot")
    waiting = asyncio.create_task(bot.send_message(2, "queued for the next slot"))
    for _ in range(5):
        await asyncio.sleep(0)  # it reaches the limiter and waits there
    # The event loop is busy past the moment the slot comes free: the draft arrives before
    # the limiter has woken the message that waited for it.
    time.sleep(0.1)  # noqa: ASYNC251 - a late event loop, on purpose

    with pytest.raises(DraftSkipped):
        await draft(bot, chat_id=3)
    await waiting

    assert session.names == ["SendMessage", "SendMessage"]


async def test_draft_does_not_wait_for_its_chats_message_limit(make_bot):
    bot, session, _ = make_bot(per_chat_rate=1.0)
    await bot.send_message(42, "uses this chat's slot for a second")

    started = time.monotonic()
    await draft(bot, chat_id=42)

    assert time.monotonic() - started < 0.5
    assert session.names == ["SendMessage", "SendMessageDraft"]


async def test_flood_control_on_a_draft_skips_it_without_waiting(make_bot, sleep):
    bot, session, _ = make_bot([flood(5)])

    with pytest.raises(DraftSkipped):
        await draft(bot)

    assert sleep.calls == []
    assert len(session.requests) == 1


async def test_skipped_draft_is_shown_by_the_next_update(make_bot):
    bot, session, _ = make_bot(global_rate=20.0, global_burst=1)
    live = LiveAnswer(bot, 42, draft_id=7, interval_s=10.0, use_drafts=True)
    await bot.send_message(1, "a final message takes the only slot")

    # No waiting for the budget, and no error for the answer.
    await asyncio.wait_for(live.show("Thinking…", force=True), timeout=0.03)
    assert session.drafts == []
    await asyncio.sleep(0.06)  # the slot is free again
    await live.show("Thinking…")  # within the interval, but the text was never shown

    assert session.drafts == ["Thinking…"]
    assert session.names == ["SendMessage", "SendMessageDraft"]  # still drafts, no placeholder


# --- the rates come from the settings ---------------------------------------------------------


async def test_global_budget_comes_from_the_settings():
    session = RecordingSession()
    settings = bot_settings(
        telegram_global_rate=1, telegram_global_burst=1, broadcast_per_second=0.5
    )
    bot = create_bot(settings, session=session)  # type: ignore[arg-type]
    await bot.send_message(1, "takes the only slot for a second")

    with pytest.raises(DraftSkipped):
        await draft(bot, chat_id=2)


async def test_per_chat_rate_comes_from_the_settings():
    session = RecordingSession()
    settings = bot_settings(telegram_per_chat_rate=1000)
    bot = create_bot(settings, session=session)  # type: ignore[arg-type]

    started = time.monotonic()
    for number in range(3):
        await bot.send_message(42, f"message {number}")

    # At Telegram's 1/s per chat the third message would go 2 s after the first.
    assert time.monotonic() - started < 0.5
    assert session.chats == [42, 42, 42]


# --- replicas share the budgets through Redis -------------------------------------------------


@pytest.fixture
async def shared_bots(redis_prefix: str) -> AsyncIterator[Callable[..., list[tuple[Bot, Any]]]]:
    """Bots that stand for replicas: each its own limiter, all on one real Redis."""
    clients: list[Redis] = []

    def make(count: int = 2, **options: Any) -> list[tuple[Bot, Any]]:
        bots = []
        for _ in range(count):
            redis = connect_redis(REDIS_URL)
            clients.append(redis)
            limits = TelegramLimits(redis=redis, redis_prefix=redis_prefix, **options)
            session = RecordingSession()
            session.middleware(limits)
            bots.append((Bot("123456:TEST", session=session), session))
        return bots

    yield make
    for client in clients:
        await client.aclose()


def most_in_one_second(times: list[float], window: float = 0.95) -> int:
    """The largest number of calls that fell within any one second (by default less 50 ms:
    calls are timed as they reach the session, a moment after the budget let them go)."""
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t - start < window) for i, start in enumerate(times))


async def test_replicas_share_the_global_budget(shared_bots):
    (one, first), (two, second) = shared_bots(global_rate=3.0, global_burst=3)

    await asyncio.gather(
        *(bot.send_message(chat, "hi") for chat in range(8) for bot in (one, two)),
    )

    # Each replica alone would allow 3 a second: together they sent 6 at once.
    times = [t for session in (first, second) for t, _ in session.requests]
    assert len(times) == 16
    assert most_in_one_second(times) <= 3


async def test_replicas_share_a_chats_budget(shared_bots):
    (one, first), (two, second) = shared_bots(global_rate=1000.0, global_burst=1000)

    await asyncio.gather(one.send_message(42, "from one"), two.send_message(42, "from two"))

    [(at_one, _)], [(at_two, _)] = first.requests, second.requests
    assert abs(at_one - at_two) >= 0.9


async def test_a_draft_is_skipped_when_another_replica_spent_the_budget(shared_bots):
    (one, _), (two, second) = shared_bots(global_rate=1.0, global_burst=1)
    await one.send_message(1, "takes the whole bot's only slot for a second")

    with pytest.raises(DraftSkipped):
        await draft(two)

    assert second.requests == []


async def test_unreachable_redis_falls_back_to_this_replicas_budget_and_says_so_once():
    redis = connect_redis(f"redis://127.0.0.1:{closed_port()}/0")
    limits = TelegramLimits(redis=redis, per_chat_rate=1000.0, per_chat_burst=1000)
    session = RecordingSession()
    session.middleware(limits)
    bot = Bot("123456:TEST", session=session)
    try:
        with capture_logs() as logs:
            for chat in range(3):
                await bot.send_message(chat, "sent all the same")
    finally:
        await redis.aclose()

    assert session.chats == [0, 1, 2]
    down = [e for e in logs if e["event"] == "redis_unavailable"]
    assert [e["part"] for e in down] == ["telegram limits"]

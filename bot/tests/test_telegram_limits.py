"""The bot stays under Telegram's rate limits and rides out flood control."""

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import GetMe, SendMessage, TelegramMethod

from bot.utils.telegram_limits import TelegramLimits

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

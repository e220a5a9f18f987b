"""One answer at a time per user; later messages wait their turn, in order, up to a bound."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject, Update

from bot.utils.logging import get_logger

log = get_logger("bot.ordering")


class UserQueue:
    """Per-user FIFO locks (asyncio.Lock wakes waiters in arrival order)."""

    def __init__(self, max_waiting: int = 5) -> None:
        self.max_waiting = max_waiting
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    def busy_beyond_bound(self, user_id: int) -> bool:
        return self._waiting.get(user_id, 0) > self.max_waiting

    async def run(self, user_id: int, work: Callable[[], Awaitable[Any]]) -> Any:
        lock = self._locks.setdefault(user_id, asyncio.Lock())
        self._waiting[user_id] = self._waiting.get(user_id, 0) + 1
        try:
            async with lock:
                return await work()
        finally:
            self._waiting[user_id] -= 1
            if self._waiting[user_id] == 0:
                # Nobody holds or waits for it: forget it so memory stays bounded.
                del self._waiting[user_id]
                self._locks.pop(user_id, None)

    def in_flight(self) -> int:
        return sum(1 for lock in self._locks.values() if lock.locked())


class OrderingMiddleware(BaseMiddleware):
    """Serialise a user's messages; past the bound the user is asked to wait.

    Registered as the first update middleware: the place in the queue is taken before any
    await, so messages are answered in the order Telegram delivered them. Button presses whose
    callback data starts with one of `answering_prefixes` start an answer too (switch model
    and answer this photo), so they queue like messages; other buttons never wait.
    """

    def __init__(
        self,
        queue: UserQueue,
        on_busy: Callable[[Message], Awaitable[Any]],
        answering_prefixes: tuple[str, ...] = (),
    ) -> None:
        self._queue = queue
        self._on_busy = on_busy
        self._answering = tuple(f"{prefix}:" for prefix in answering_prefixes)

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        query = event.callback_query if isinstance(event, Update) else None
        if query is not None and self._answering and (query.data or "").startswith(self._answering):
            return await self._queue.run(query.from_user.id, lambda: handler(event, data))
        message = event.message if isinstance(event, Update) else None
        if message is None or message.from_user is None:
            return await handler(event, data)
        if message.successful_payment is not None or message.refunded_payment is not None:
            # Money is never turned away or kept waiting behind a long answer: it is
            # recorded at once (and acknowledged to Telegram only then).
            return await handler(event, data)
        user_id = message.from_user.id
        if self._queue.busy_beyond_bound(user_id):
            log.info("user_busy", user_id=user_id)
            return await self._on_busy(message)
        return await self._queue.run(user_id, lambda: handler(event, data))

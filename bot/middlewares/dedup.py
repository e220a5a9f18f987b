"""Drop updates Telegram delivers again (same update_id) so nobody is answered twice."""

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

from bot.utils.logging import get_logger

log = get_logger("bot.dedup")


class SeenUpdates:
    """Recently handled update ids, bounded in count and age (this process only)."""

    def __init__(self, ttl_s: float = 3600.0, max_size: int = 100_000) -> None:
        self._ttl = ttl_s
        self._max = max_size
        self._seen: OrderedDict[int, float] = OrderedDict()

    def claim(self, update_id: int) -> bool:
        """True the first time an id is seen (within the TTL)."""
        now = time.monotonic()
        while self._seen and (
            len(self._seen) >= self._max or now - next(iter(self._seen.values())) > self._ttl
        ):
            self._seen.popitem(last=False)
        if update_id in self._seen:
            return False
        self._seen[update_id] = now
        return True

    def release(self, update_id: int) -> None:
        """Forget an id whose handling failed, so Telegram's redelivery is handled."""
        self._seen.pop(update_id, None)


class DeduplicationMiddleware(BaseMiddleware):
    def __init__(self, seen: SeenUpdates) -> None:
        self._seen = seen

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        if not self._seen.claim(event.update_id):
            log.info("update_redelivered", update_id=event.update_id)
            return None
        try:
            return await handler(event, data)
        except BaseException:
            self._seen.release(event.update_id)
            raise

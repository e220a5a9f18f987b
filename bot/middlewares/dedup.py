"""Drop updates Telegram delivers again (same update_id) so nobody is answered twice.

Two layers: this replica's memory catches a redelivery racing the first delivery here, before
any await; the shared claim (bot/services/claims.py: Redis, else the backend) catches one that
landed on another replica. Updates that move money skip the shared claim: they are
acknowledged to Telegram only once recorded (bot/main.py), so a failed one must be handled
when Telegram delivers it again, and the backend records each charge id once whoever asks.
"""

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

from bot.services.claims import UpdateClaims
from bot.utils.logging import get_logger

log = get_logger("bot.dedup")

# Message fields of the updates that are acknowledged only after processing.
MONEY_FIELDS = ("successful_payment", "refunded_payment")


def moves_money(update: Update) -> bool:
    """A payment or a refund: recorded before Telegram gets its 200."""
    message = update.message
    return message is not None and any(getattr(message, name) for name in MONEY_FIELDS)


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
    """This replica's memory: the first update middleware, deciding before any await."""

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
            log.info("update_redelivered", update_id=event.update_id, seen="here")
            return None
        try:
            return await handler(event, data)
        except BaseException:
            # The local mark only: a failed answer was apologised for, and Telegram retries
            # only what it was not acknowledged for (payments, which skip the shared claim).
            self._seen.release(event.update_id)
            raise


class SharedClaimMiddleware(BaseMiddleware):
    """The claim every replica sees; registered after the user's place in the queue is taken,
    so waiting for Redis or the backend cannot reorder a user's messages."""

    def __init__(self, claims: UpdateClaims) -> None:
        self._claims = claims

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if (
            isinstance(event, Update)
            and not moves_money(event)
            and not await self._claims.claim(event.update_id)
        ):
            log.info("update_redelivered", update_id=event.update_id, seen="elsewhere")
            return None
        return await handler(event, data)

"""Session request middleware that keeps the bot within Telegram's rate limits.

Final messages and edits wait for their turn. Drafts (`sendMessageDraft`, the streaming
preview) are best-effort: they never wait, so they cannot crowd out the answers themselves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aiogram import methods
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods.base import TelegramType
from aiolimiter import AsyncLimiter
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from bot.services.redis_health import REDIS_ERRORS, RedisCircuit

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response, TelegramMethod
    from aiogram.types import ChatIdUnion

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

MESSAGE_CREATING_METHODS: frozenset[type[TelegramMethod[Any]]] = frozenset(
    {
        methods.SendMessage,
        methods.SendPhoto,
        methods.SendDocument,
        methods.SendInvoice,
        methods.CopyMessage,
        methods.ForwardMessage,
    }
)
DRAFT_METHODS: frozenset[type[TelegramMethod[Any]]] = frozenset({methods.SendMessageDraft})
MESSAGE_SENDING_METHODS: frozenset[type[TelegramMethod[Any]]] = (
    MESSAGE_CREATING_METHODS | DRAFT_METHODS | {methods.EditMessageText}
)


class DraftSkipped(Exception):
    """A draft was not sent: the global budget had nothing spare (or Telegram said 429).

    Nothing reached the chat; the caller may show the text with a later draft.
    """


class SendBuckets(Protocol):
    """The global and per-chat send budgets, wherever they are kept."""

    async def take_chat(self, chat_id: ChatIdUnion) -> None:
        """Wait for the chat's next message slot."""

    async def take_global(self) -> None:
        """Wait for a slot of the whole bot's budget."""

    async def take_spare(self) -> bool:
        """A global slot if one is spare and nobody here waits for one; never waits."""


class LocalBuckets:
    """The budgets in this process (aiolimiter): right for a single bot replica."""

    def __init__(
        self,
        global_rate: float,
        global_burst: int,
        per_chat_rate: float,
        per_chat_burst: int,
        max_chats: int,
    ) -> None:
        self._global = AsyncLimiter(global_burst, global_burst / global_rate)
        self._waiting_for_global = 0
        self._per_chat_rate = per_chat_rate
        self._per_chat_burst = per_chat_burst
        self._max_chats = max_chats
        self.chats: OrderedDict[ChatIdUnion, AsyncLimiter] = OrderedDict()

    async def take_chat(self, chat_id: ChatIdUnion) -> None:
        limiter = self.chats.get(chat_id)
        if limiter is None:
            limiter = AsyncLimiter(self._per_chat_burst, self._per_chat_burst / self._per_chat_rate)
            self.chats[chat_id] = limiter
            # Evicting the least recent chat at most lets it burst once more; the
            # alternative is memory that grows with every chat the bot ever saw.
            if len(self.chats) > self._max_chats:
                self.chats.popitem(last=False)
        else:
            self.chats.move_to_end(chat_id)
        await limiter.acquire()

    async def take_global(self) -> None:
        self._waiting_for_global += 1
        try:
            await self._global.acquire()
        finally:
            self._waiting_for_global -= 1

    async def take_spare(self) -> bool:
        # Calls already waiting come first: the limiter wakes them one at a time, so a freed
        # token is theirs even where has_capacity() already says yes (most of all when the
        # event loop runs late).
        if self._waiting_for_global or not self._global.has_capacity():
            return False
        # Capacity is there and nobody is ahead: acquire() takes it without suspending.
        await self._global.acquire()
        return True


def whole_second_window(rate: float, burst: int) -> RateLimitItem:
    """`burst` per `burst / rate` seconds, rounded to whole seconds (Redis keys expire in
    seconds): Telegram's own limits, 30/s and 1/s per chat, are exact."""
    window = max(1, round(burst / rate))
    return RateLimitItemPerSecond(max(1, round(rate * window)), window)


class RedisBuckets:
    """The budgets in Redis, shared by every replica: the bot as a whole stays under the limits.

    A moving window per budget (the `limits` library: one Lua call per slot, its timestamps
    in a Redis list). A call that finds its budget spent sleeps until the window's oldest
    entry leaves it; within this process, calls wait for the global budget in arrival order.
    Drafts take only from the unused half of the global window.
    """

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        global_rate: float,
        global_burst: int,
        per_chat_rate: float,
        per_chat_burst: int,
    ) -> None:
        # The bot's own client pool (its timeouts and bound), not a second one of the library's.
        pool: dict[str, Any] = {"connection_pool": redis.connection_pool}
        storage = RedisStorage(
            "async+redis://", implementation="redispy", key_prefix=f"{prefix}telegram", **pool
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self._global = whole_second_window(global_rate, global_burst)
        self._chat = whole_second_window(per_chat_rate, per_chat_burst)
        self._global_turn = asyncio.Lock()  # FIFO: this process's callers, in arrival order

    async def _take(self, item: RateLimitItem, key: str) -> None:
        while not await self._limiter.hit(item, key):
            stats = await self._limiter.get_window_stats(item, key)
            await asyncio.sleep(min(max(stats.reset_time - time.time(), 0.005), 1.0))

    async def take_chat(self, chat_id: ChatIdUnion) -> None:
        await self._take(self._chat, f"chat:{chat_id}")

    async def take_global(self) -> None:
        async with self._global_turn:
            await self._take(self._global, "global")

    async def take_spare(self) -> bool:
        # Calls waiting on other replicas cannot be seen from here: a draft takes a slot only
        # while more than half of the window is unused, so under load the answers get it all.
        if self._global_turn.locked():
            return False
        stats = await self._limiter.get_window_stats(self._global, "global")
        if stats.remaining <= self._global.amount // 2:
            return False
        return await self._limiter.hit(self._global, "global")


class TelegramLimits(BaseRequestMiddleware):
    """Throttles message-sending calls globally and per chat, and retries flood-control 429s.

    With `redis`, the budgets are the whole bot's, shared by every replica; while Redis cannot
    be reached, each replica keeps them in its own memory (so N replicas may send up to N
    times the rate until Redis is back, and Telegram's 429s, retried here, cover the rest).
    """

    def __init__(
        self,
        *,
        global_rate: float = 30.0,
        global_burst: int = 30,
        per_chat_rate: float = 1.0,
        per_chat_burst: int = 1,
        max_chats: int = 10_000,
        max_retries: int = 3,
        max_retry_after: float = 60.0,
        sending_methods: Collection[type[TelegramMethod[Any]]] = MESSAGE_SENDING_METHODS,
        creating_methods: Collection[type[TelegramMethod[Any]]] = MESSAGE_CREATING_METHODS,
        draft_methods: Collection[type[TelegramMethod[Any]]] = DRAFT_METHODS,
        on_forbidden: Callable[[ChatIdUnion], None] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        redis: Redis | None = None,
        redis_prefix: str = "pomogator:",
    ) -> None:
        if global_rate <= 0 or per_chat_rate <= 0:
            raise ValueError("rates must be positive")
        if global_burst < 1 or per_chat_burst < 1 or max_chats < 1:
            raise ValueError("bursts and max_chats must be at least 1")
        rates = (global_rate, global_burst, per_chat_rate, per_chat_burst)
        self._local = LocalBuckets(*rates, max_chats)
        self._shared = RedisBuckets(redis, redis_prefix, *rates) if redis is not None else None
        self._circuit = RedisCircuit("telegram limits")
        self._max_chats = max_chats
        self._max_retries = max_retries
        self._max_retry_after = max_retry_after
        self._sending = frozenset(sending_methods)
        self._creating = frozenset(creating_methods)
        self._drafts = frozenset(draft_methods)
        self._on_forbidden = on_forbidden
        self._sleep = sleep
        self._blocked: OrderedDict[ChatIdUnion, None] = OrderedDict()
        self.forbidden_count = 0
        self.drafts_skipped = 0

    @property
    def blocked_chats(self) -> frozenset[ChatIdUnion]:
        """Chats that answered 403 recently and have not accepted a message since."""
        return frozenset(self._blocked)

    @property
    def tracked_chats(self) -> int:
        """How many per-chat limiters this process holds right now."""
        return len(self._local.chats)

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        """Send method once its limiters allow, retrying on flood control within the bounds.

        A draft is sent only with spare global capacity, else `DraftSkipped` is raised.
        """
        chat_id: ChatIdUnion | None = getattr(method, "chat_id", None)
        is_draft = type(method) in self._drafts
        retries = 0
        while True:
            if is_draft:
                await self._take_spare_capacity(chat_id)
            else:
                await self._throttle(method, chat_id)
            try:
                result = await make_request(bot, method)
            except TelegramRetryAfter as error:
                if is_draft:
                    # Waiting out flood control would hold the answer back for a preview
                    # that is stale by then; the next draft shows the newer text.
                    self.drafts_skipped += 1
                    raise DraftSkipped(method.__api_method__) from error
                # A 429 means Telegram did not perform the call, so repeating it
                # cannot duplicate a message.
                if retries >= self._max_retries or error.retry_after > self._max_retry_after:
                    raise
                retries += 1
                logger.warning(
                    "Flood control on %s in chat %s: retry %d/%d in %ss",
                    method.__api_method__,
                    chat_id,
                    retries,
                    self._max_retries,
                    error.retry_after,
                )
                await self._sleep(error.retry_after)
            except TelegramForbiddenError:
                self._record_forbidden(chat_id)
                raise
            else:
                if chat_id is not None:
                    self._blocked.pop(chat_id, None)
                return result

    async def _take_spare_capacity(self, chat_id: ChatIdUnion | None) -> None:
        """A global token for a draft, if one is free and no other call is waiting for it."""
        # Drafts create no message, so no per-chat limit applies.
        if not await self._shared_or_local(lambda buckets: buckets.take_spare()):
            self.drafts_skipped += 1
            raise DraftSkipped(f"no spare capacity for a draft in chat {chat_id}")

    async def _throttle(self, method: TelegramMethod[Any], chat_id: ChatIdUnion | None) -> None:
        kind = type(method)
        # Per chat first: a call waiting for its chat's slot must not hold global
        # capacity that other chats could use meanwhile.
        if kind in self._creating and chat_id is not None:
            await self._shared_or_local(lambda buckets: buckets.take_chat(chat_id))
        if kind in self._sending:
            await self._shared_or_local(lambda buckets: buckets.take_global())

    async def _shared_or_local(self, take: Callable[[SendBuckets], Awaitable[_T]]) -> _T:
        """`take` from the shared budgets, or from this process's while Redis is down."""
        if self._shared is not None and self._circuit.usable():
            try:
                result = await take(self._shared)
            except REDIS_ERRORS as exc:
                self._circuit.failed(exc)
            else:
                self._circuit.succeeded()
                return result
        return await take(self._local)

    def _record_forbidden(self, chat_id: ChatIdUnion | None) -> None:
        self.forbidden_count += 1
        if chat_id is None:
            return
        self._blocked[chat_id] = None
        self._blocked.move_to_end(chat_id)
        if len(self._blocked) > self._max_chats:
            self._blocked.popitem(last=False)
        if self._on_forbidden is not None:
            self._on_forbidden(chat_id)

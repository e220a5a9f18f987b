"""Session request middleware that keeps the bot within Telegram's rate limits.

Final messages and edits wait for their turn. Drafts (`sendMessageDraft`, the streaming
preview) are best-effort: they never wait, so they cannot crowd out the answers themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any

from aiogram import methods
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods.base import TelegramType
from aiolimiter import AsyncLimiter

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response, TelegramMethod
    from aiogram.types import ChatIdUnion

logger = logging.getLogger(__name__)

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


class TelegramLimits(BaseRequestMiddleware):
    """Throttles message-sending calls globally and per chat, and retries flood-control 429s."""

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
    ) -> None:
        if global_rate <= 0 or per_chat_rate <= 0:
            raise ValueError("rates must be positive")
        if global_burst < 1 or per_chat_burst < 1 or max_chats < 1:
            raise ValueError("bursts and max_chats must be at least 1")
        self._global = AsyncLimiter(global_burst, global_burst / global_rate)
        self._waiting_for_global = 0
        self._per_chat_rate = per_chat_rate
        self._per_chat_burst = per_chat_burst
        self._max_chats = max_chats
        self._chats: OrderedDict[ChatIdUnion, AsyncLimiter] = OrderedDict()
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
        """How many per-chat limiters are held right now."""
        return len(self._chats)

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
        # Drafts create no message, so no per-chat limit applies. Calls already waiting come
        # first: the limiter wakes them one at a time, so a freed token is theirs even where
        # has_capacity() already says yes (most of all when the event loop runs late).
        if self._waiting_for_global or not self._global.has_capacity():
            self.drafts_skipped += 1
            raise DraftSkipped(f"no spare capacity for a draft in chat {chat_id}")
        # Capacity is there and nobody is ahead: acquire() takes it without suspending.
        await self._global.acquire()

    async def _throttle(self, method: TelegramMethod[Any], chat_id: ChatIdUnion | None) -> None:
        kind = type(method)
        # Per chat first: a call waiting for its chat's slot must not hold global
        # capacity that other chats could use meanwhile.
        if kind in self._creating and chat_id is not None:
            await self._chat_limiter(chat_id).acquire()
        if kind in self._sending:
            self._waiting_for_global += 1
            try:
                await self._global.acquire()
            finally:
                self._waiting_for_global -= 1

    def _chat_limiter(self, chat_id: ChatIdUnion) -> AsyncLimiter:
        limiter = self._chats.get(chat_id)
        if limiter is None:
            limiter = AsyncLimiter(self._per_chat_burst, self._per_chat_burst / self._per_chat_rate)
            self._chats[chat_id] = limiter
            # Evicting the least recent chat at most lets it burst once more; the
            # alternative is memory that grows with every chat the bot ever saw.
            if len(self._chats) > self._max_chats:
                self._chats.popitem(last=False)
        else:
            self._chats.move_to_end(chat_id)
        return limiter

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

"""Resolve the user through the backend (registering on first contact), cached briefly."""

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User

from bot.services.backend import BackendClient, BackendError, BackendUnavailable
from bot.services.schemas import Profile
from bot.utils.logging import get_logger

log = get_logger("bot.auth")


class ProfileCache:
    """Recently seen profiles, so a burst of updates costs one backend call."""

    def __init__(self, ttl_s: float = 30.0, max_size: int = 10_000) -> None:
        self._ttl = ttl_s
        self._max = max_size
        self._items: OrderedDict[int, tuple[float, Profile]] = OrderedDict()

    def get(self, telegram_id: int) -> Profile | None:
        item = self._items.get(telegram_id)
        if item is None or time.monotonic() - item[0] > self._ttl:
            return None
        return item[1]

    def put(self, profile: Profile) -> None:
        self._items[profile.telegram_id] = (time.monotonic(), profile)
        self._items.move_to_end(profile.telegram_id)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def update(self, telegram_id: int, **changes: Any) -> None:
        """Adjust a cached profile (e.g. messages left after an answer)."""
        profile = self.get(telegram_id)
        if profile is not None:
            self.put(profile.model_copy(update=changes))


class UserMiddleware(BaseMiddleware):
    """Put the user's backend profile in `data["profile"]` (None if the backend is down)."""

    def __init__(self, backend: BackendClient, cache: ProfileCache) -> None:
        self._backend = backend
        self._cache = cache

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        data["profile"] = None
        if isinstance(event, Update) and (
            (user is not None and user.is_bot) or (user is None and event.message is not None)
        ):
            # A bot, an anonymous group admin, a channel speaking in its discussion group:
            # nobody to answer, charge or keep a conversation for.
            log.info("update_without_person", update_id=event.update_id)
            return None
        if user is not None and not user.is_bot:
            profile = self._cache.get(user.id)
            if profile is None:
                try:
                    profile = await self._backend.register(
                        user.id,
                        username=user.username,
                        first_name=user.first_name,
                        last_name=user.last_name,
                        language_code=user.language_code,
                    )
                    self._cache.put(profile)
                except BackendUnavailable as exc:
                    log.warning("backend_unavailable", during="register", error=str(exc))
                except BackendError as exc:  # the profile refused: answered as if unreachable
                    log.error("register_refused", code=exc.code)
            data["profile"] = profile
        return await handler(event, data)

"""Resolve the user through the backend (registering on first contact), cached briefly."""

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User
from redis.asyncio import Redis

from bot.services.backend import BackendClient, BackendError, BackendUnavailable
from bot.services.redis_health import REDIS_ERRORS, RedisCircuit
from bot.services.schemas import Profile
from bot.utils.logging import get_logger

log = get_logger("bot.auth")


class LocalProfiles:
    """Recently seen profiles in this process's memory, bounded in count and age."""

    def __init__(self, ttl_s: float, max_size: int) -> None:
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


class ProfileCache:
    """Recently seen profiles, so a burst of updates costs one backend call.

    With `redis`, one cache for every replica (a key per user, expiring after `ttl_s`), so a
    change made through one replica (a payment, a block, the messages left) is what the next
    update sees on any other. Without Redis, or while it is down, this process's memory.
    """

    def __init__(
        self,
        redis: Redis | None = None,
        prefix: str = "pomogator:",
        ttl_s: float = 30.0,
        max_size: int = 10_000,
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}profile:"
        self._ttl_ms = int(ttl_s * 1000)
        self._local = LocalProfiles(ttl_s, max_size)
        self._circuit = RedisCircuit("profile cache")

    def _shared(self) -> Redis | None:
        return self._redis if self._redis is not None and self._circuit.usable() else None

    async def get(self, telegram_id: int) -> Profile | None:
        redis = self._shared()
        if redis is None:
            return self._local.get(telegram_id)
        try:
            raw = await redis.get(f"{self._prefix}{telegram_id}")
        except REDIS_ERRORS as exc:
            self._circuit.failed(exc)
            return self._local.get(telegram_id)
        self._circuit.succeeded()
        return Profile.model_validate_json(raw) if raw is not None else None

    async def put(self, profile: Profile) -> None:
        self._local.put(profile)
        redis = self._shared()
        if redis is None:
            return
        try:
            await redis.set(
                f"{self._prefix}{profile.telegram_id}", profile.model_dump_json(), px=self._ttl_ms
            )
        except REDIS_ERRORS as exc:
            self._circuit.failed(exc)
        else:
            self._circuit.succeeded()

    async def update(self, telegram_id: int, **changes: Any) -> None:
        """Adjust a cached profile (e.g. messages left after an answer)."""
        profile = await self.get(telegram_id)
        if profile is not None:
            await self.put(profile.model_copy(update=changes))


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
            profile = await self._cache.get(user.id)
            if profile is None:
                try:
                    profile = await self._backend.register(
                        user.id,
                        username=user.username,
                        first_name=user.first_name,
                        last_name=user.last_name,
                        language_code=user.language_code,
                    )
                    await self._cache.put(profile)
                except BackendUnavailable as exc:
                    log.warning("backend_unavailable", during="register", error=str(exc))
                except BackendError as exc:  # the profile refused: answered as if unreachable
                    log.error("register_refused", code=exc.code)
            data["profile"] = profile
        return await handler(event, data)

"""Tell handlers the user's allowance as last known; the backend still decides each answer."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject

from bot.services.schemas import Profile


@dataclass(frozen=True, slots=True)
class Allowance:
    is_vip: bool
    free_messages_left: int
    free_messages_limit: int

    @property
    def exhausted(self) -> bool:
        return not self.is_vip and self.free_messages_left <= 0


class AllowanceMiddleware(BaseMiddleware):
    """`data["allowance"]` from the profile the auth middleware resolved."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        profile: Profile | None = data.get("profile")
        data["allowance"] = (
            Allowance(profile.is_vip, profile.free_messages_left, profile.free_messages_limit)
            if profile
            else None
        )
        return await handler(event, data)

"""Users the operators suspended: one clear sentence, and nothing asked of the backend."""

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User
from aiogram_i18n import I18nContext

from bot.middlewares.dedup import moves_money
from bot.services.schemas import Profile
from bot.utils.logging import get_logger

log = get_logger("bot.blocked")


class BlockedMiddleware(BaseMiddleware):
    """Answer a suspended user's messages and buttons with "your access is suspended".

    Payments still reach their handlers: money that moved is recorded (and pre-checkout is
    refused by the backend).
    """

    def __init__(self, admin_ids: frozenset[int]) -> None:
        self._admins = admin_ids

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        profile: Profile | None = data.get("profile")
        user: User | None = data.get("event_from_user")
        i18n: I18nContext | None = data.get("i18n")
        if (
            profile is None
            or not profile.blocked
            or i18n is None
            or not isinstance(event, Update)
            or (user is not None and user.id in self._admins)
        ):
            return await handler(event, data)
        message, query = event.message, event.callback_query
        if message is not None and not moves_money(event):
            log.info("blocked_user_refused", update_id=event.update_id)
            await message.answer(i18n.get("admin-access-suspended"))
            return None
        if query is not None:
            await query.answer(i18n.get("admin-access-suspended"), show_alert=True)
            return None
        return await handler(event, data)

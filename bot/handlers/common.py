"""Shared replies, and the last-resort handlers: outdated buttons and messages I can't read."""

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram_i18n import I18nContext

from bot.middlewares.auth import ProfileCache
from bot.services.backend import BackendClient, BackendError
from bot.services.schemas import Profile


async def edit_or_answer(
    query: CallbackQuery,
    text: str,
    keyboard: InlineKeyboardMarkup | None,
    notice: str | None = None,
) -> None:
    """Show a menu in place of the message whose button was pressed (or below it)."""
    await query.answer(notice)
    message = query.message
    if isinstance(message, Message):
        try:
            await message.edit_text(text, reply_markup=keyboard)
            return
        except TelegramBadRequest as exc:
            if "message is not modified" in str(exc):
                return
        await message.answer(text, reply_markup=keyboard)


async def unavailable(event: Message | CallbackQuery, i18n: I18nContext) -> None:
    text = i18n.get("error-backend-unavailable")
    if isinstance(event, CallbackQuery):
        await event.answer(text, show_alert=True)
    else:
        await event.answer(text)


async def outdated_button(query: CallbackQuery, i18n: I18nContext) -> None:
    """Anything no handler claimed: stale or forged callback data."""
    await query.answer(i18n.get("button-outdated"), show_alert=True)


async def choose(
    query: CallbackQuery,
    backend: BackendClient,
    profiles: ProfileCache,
    i18n: I18nContext,
    refused: str,
    **changes: str,
) -> Profile | None:
    """Save what a button chose; None (and "this button is outdated") if the backend refuses
    it with the error code `refused` (the catalog changed since the button was sent)."""
    try:
        profile = await backend.update_user(query.from_user.id, **changes)
    except BackendError as exc:
        if exc.code != refused:
            raise
        await outdated_button(query, i18n)
        return None
    await profiles.put(profile)
    return profile


async def not_supported(message: Message, i18n: I18nContext) -> None:
    """Stickers, locations, videos, contacts...: what works instead."""
    await message.answer(i18n.get("not-supported"))


def create_router() -> Router:
    """The fallback handlers on a fresh router (one per dispatcher)."""
    router = Router(name="fallback")
    router.callback_query.register(outdated_button)
    router.message.register(not_supported)
    return router

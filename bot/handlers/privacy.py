"""/forget: erase the user's conversation history, after a confirmation.

The backend erases the texts (questions, answers, reasoning, sources) and starts a new
conversation; payments, the credit ledger and token counts stay, as the law requires.
"""

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram_i18n import I18nContext

from bot.handlers.common import edit_or_answer
from bot.keyboards.menus import ForgetCB, back_home, forget_menu
from bot.services.backend import BackendClient
from bot.utils.logging import get_logger

log = get_logger("bot.privacy")


async def forget_command(message: Message, i18n: I18nContext) -> None:
    await message.answer(i18n.get("forget-confirm"), reply_markup=forget_menu(i18n))


async def forget_ask(query: CallbackQuery, i18n: I18nContext) -> None:
    """The settings button: the same confirmation, in place of the settings."""
    await edit_or_answer(query, i18n.get("forget-confirm"), forget_menu(i18n))


async def forget_confirmed(query: CallbackQuery, backend: BackendClient, i18n: I18nContext) -> None:
    result = await backend.forget(query.from_user.id)
    log.info("history_forgotten", user_id=query.from_user.id, messages=result.forgotten)
    await edit_or_answer(query, i18n.get("forget-done", count=result.forgotten), back_home(i18n))


async def forget_cancelled(query: CallbackQuery, i18n: I18nContext) -> None:
    await edit_or_answer(query, i18n.get("forget-cancelled"), back_home(i18n))


def create_router() -> Router:
    """The /forget handlers on a fresh router (one per dispatcher)."""
    router = Router(name="privacy")
    router.message.register(forget_command, Command("forget"))
    router.callback_query.register(forget_ask, ForgetCB.filter(F.action == "ask"))
    router.callback_query.register(forget_confirmed, ForgetCB.filter(F.action == "yes"))
    router.callback_query.register(forget_cancelled, ForgetCB.filter(F.action == "no"))
    return router

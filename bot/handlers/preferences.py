"""Chat modes and the custom instruction (/settings, /instructions).

Setting the instruction is stateless: the bot asks with a ForceReply prompt, and a reply to
that prompt (recognised by its first line, in any interface language) is the instruction.
"""

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, ForceReply, InlineKeyboardMarkup, Message
from aiogram_i18n import I18nContext

from bot.handlers.common import choose, edit_or_answer, unavailable
from bot.handlers.menu import mode_label, settings_view
from bot.keyboards.menus import ModeCB, PrefsCB, instructions_menu, modes_menu
from bot.middlewares.auth import ProfileCache
from bot.services.backend import BackendClient, BackendError
from bot.services.schemas import Profile
from bot.utils.catalog import CatalogCache
from bot.utils.i18n import LANGUAGES

# --- chat modes -------------------------------------------------------------------------------


async def modes_button(
    query: CallbackQuery, profile: Profile | None, catalogs: CatalogCache, i18n: I18nContext
) -> None:
    if profile is None:
        await unavailable(query, i18n)
        return
    catalog = await catalogs.get()
    lines = [i18n.get("modes-title", mode=await mode_label(profile, catalogs, i18n))]
    for mode in catalog.modes:
        description = mode.describe(i18n.locale)
        label = mode.label(i18n.locale)
        lines.append(f"• {label} — {description}" if description else f"• {label}")
    await edit_or_answer(query, "\n".join(lines), modes_menu(catalog, profile, i18n))


async def choose_mode(
    query: CallbackQuery,
    callback_data: ModeCB,
    backend: BackendClient,
    profiles: ProfileCache,
    catalogs: CatalogCache,
    i18n: I18nContext,
) -> None:
    mode = (await catalogs.get()).mode(callback_data.mode)
    if mode is None:
        await query.answer(i18n.get("button-outdated"), show_alert=True)
        return
    profile = await choose(query, backend, profiles, i18n, "unknown_mode", mode=mode.key)
    if profile is None:
        return
    text, keyboard = await settings_view(profile, backend, catalogs, i18n)
    notice = i18n.get("mode-chosen", mode=mode.label(i18n.locale))
    await edit_or_answer(query, text, keyboard, notice=notice)


# --- the custom instruction -------------------------------------------------------------------


def instructions_view(profile: Profile, i18n: I18nContext) -> tuple[str, InlineKeyboardMarkup]:
    if profile.custom_instructions:
        text = i18n.get("instructions-current", text=profile.custom_instructions)
    else:
        text = i18n.get("instructions-none")
    return text, instructions_menu(profile, i18n)


async def instructions_button(
    query: CallbackQuery, profile: Profile | None, i18n: I18nContext
) -> None:
    if profile is None:
        await unavailable(query, i18n)
        return
    text, keyboard = instructions_view(profile, i18n)
    await edit_or_answer(query, text, keyboard)


async def instructions_command(
    message: Message,
    command: CommandObject,
    profile: Profile | None,
    backend: BackendClient,
    profiles: ProfileCache,
    catalogs: CatalogCache,
    i18n: I18nContext,
) -> None:
    """/instructions shows the instruction; /instructions <text> sets it."""
    if profile is None:
        await unavailable(message, i18n)
        return
    if command.args and command.args.strip():
        await set_instructions(message, command.args, backend, profiles, catalogs, i18n)
        return
    text, keyboard = instructions_view(profile, i18n)
    await message.answer(text, reply_markup=keyboard)


async def ask_for_instructions(
    query: CallbackQuery, bot: Bot, catalogs: CatalogCache, i18n: I18nContext
) -> None:
    """The ForceReply prompt: the user's reply to it becomes the instruction."""
    await query.answer()
    limit = (await catalogs.get()).limits.custom_instructions_max_chars
    chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    await bot.send_message(
        chat_id,
        prompt_title(i18n) + "\n" + i18n.get("instructions-prompt", limit=limit),
        reply_markup=ForceReply(
            force_reply=True, input_field_placeholder=i18n.get("instructions-placeholder")
        ),
    )


def prompt_title(i18n: I18nContext, locale: str | None = None) -> str:
    return i18n.core.get("instructions-prompt-title", locale or i18n.locale)


def is_instructions_reply(message: Message, bot: Bot, i18n: I18nContext) -> bool:
    """A reply to the bot's instruction prompt (in whichever language it was asked)."""
    prompt = message.reply_to_message
    if prompt is None or prompt.from_user is None or prompt.from_user.id != bot.id:
        return False
    first_line = (prompt.text or "").split("\n", 1)[0]
    return first_line in {prompt_title(i18n, locale) for locale in LANGUAGES}


async def instructions_reply(
    message: Message,
    backend: BackendClient,
    profiles: ProfileCache,
    catalogs: CatalogCache,
    i18n: I18nContext,
) -> None:
    assert message.text is not None
    await set_instructions(message, message.text, backend, profiles, catalogs, i18n)


async def set_instructions(
    message: Message,
    text: str,
    backend: BackendClient,
    profiles: ProfileCache,
    catalogs: CatalogCache,
    i18n: I18nContext,
) -> None:
    assert message.from_user is not None
    text = text.strip()
    limit = (await catalogs.get()).limits.custom_instructions_max_chars
    if len(text) > limit:
        await message.answer(i18n.get("instructions-too-long", limit=limit, length=len(text)))
        return
    try:
        profile = await backend.update_user(message.from_user.id, custom_instructions=text)
    except BackendError as exc:
        if exc.code != "instructions_too_long":
            raise
        limit = int(exc.details.get("limit") or limit)
        await message.answer(i18n.get("instructions-too-long", limit=limit, length=len(text)))
        return
    await profiles.put(profile)
    saved, keyboard = instructions_view(profile, i18n)
    await message.answer(i18n.get("instructions-saved") + "\n\n" + saved, reply_markup=keyboard)


async def clear_instructions(
    query: CallbackQuery, backend: BackendClient, profiles: ProfileCache, i18n: I18nContext
) -> None:
    profile = await backend.update_user(query.from_user.id, custom_instructions="")
    await profiles.put(profile)
    text, keyboard = instructions_view(profile, i18n)
    await edit_or_answer(query, text, keyboard, notice=i18n.get("instructions-cleared"))


def create_router() -> Router:
    """The mode and instruction handlers on a fresh router (one per dispatcher)."""
    router = Router(name="preferences")
    router.callback_query.register(modes_button, PrefsCB.filter(F.action == "modes"))
    router.callback_query.register(choose_mode, ModeCB.filter())
    router.callback_query.register(instructions_button, PrefsCB.filter(F.action == "instructions"))
    router.callback_query.register(ask_for_instructions, PrefsCB.filter(F.action == "set"))
    router.callback_query.register(clear_instructions, PrefsCB.filter(F.action == "clear"))
    router.message.register(instructions_command, Command("instructions"))
    router.message.register(instructions_reply, F.text, is_instructions_reply)
    return router

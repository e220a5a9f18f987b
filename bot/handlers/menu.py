"""/start, /help, /status, /settings, /new, /subscribe and the main menu buttons."""

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram_i18n import I18nContext

from bot.config import BotSettings
from bot.handlers.common import edit_or_answer, unavailable
from bot.keyboards.menus import MenuCB, SettingsCB, back_home, main_menu, settings_menu
from bot.middlewares.auth import ProfileCache
from bot.services.backend import BackendClient
from bot.services.schemas import Profile
from bot.utils.catalog import CatalogCache
from bot.utils.dates import format_date
from bot.utils.render import shorten

INSTRUCTION_PREVIEW = 60  # characters of the custom instruction shown in /settings


def display_name(profile: Profile) -> str:
    return profile.first_name or (f"@{profile.username}" if profile.username else "")


async def start(message: Message, profile: Profile | None, i18n: I18nContext) -> None:
    if profile is None:
        await unavailable(message, i18n)
        return
    key = "welcome" if profile.free_messages_left == profile.free_messages_limit else "welcome-back"
    await message.answer(
        i18n.get(key, name=display_name(profile) or "👋", limit=profile.free_messages_limit),
        reply_markup=main_menu(i18n),
    )


async def home(query: CallbackQuery, profile: Profile | None, i18n: I18nContext) -> None:
    name = display_name(profile) if profile else ""
    await edit_or_answer(query, i18n.get("welcome-back", name=name or "👋"), main_menu(i18n))


async def help_command(
    message: Message, settings: BotSettings, profile: Profile | None, i18n: I18nContext
) -> None:
    await message.answer(help_text(settings, profile, i18n), reply_markup=back_home(i18n))


async def help_button(
    query: CallbackQuery, settings: BotSettings, profile: Profile | None, i18n: I18nContext
) -> None:
    await edit_or_answer(query, help_text(settings, profile, i18n), back_home(i18n))


def help_text(settings: BotSettings, profile: Profile | None, i18n: I18nContext) -> str:
    limit = profile.free_messages_limit if profile else settings.free_messages_limit
    return i18n.get("help", limit=limit)


async def status_text(
    telegram_id: int,
    backend: BackendClient,
    catalogs: CatalogCache,
    cache: ProfileCache,
    i18n: I18nContext,
) -> str:
    profile = await backend.profile(telegram_id)
    await cache.put(profile)
    plan = await plan_lines(profile, backend, i18n)
    provider, model = await catalogs.labels(profile.model)
    return "\n".join([*plan, i18n.get("status-model", provider=provider, model=model)])


async def plan_lines(profile: Profile, backend: BackendClient, i18n: I18nContext) -> list[str]:
    """ "VIP until …" with renewal on/off, or "7 of 10 messages left"."""
    if not (profile.is_vip and profile.vip_expires_at):
        left, limit = profile.free_messages_left, profile.free_messages_limit
        return [i18n.get("status-free", left=left, limit=limit)]
    lines = [i18n.get("status-vip", until=format_date(profile.vip_expires_at, i18n.locale))]
    subscription = await backend.subscription(profile.telegram_id)
    if subscription.telegram_charge_id:
        lines.append(i18n.get("vip-renewal-on" if subscription.auto_renew else "vip-renewal-off"))
    return lines


async def status_command(
    message: Message,
    backend: BackendClient,
    catalogs: CatalogCache,
    profiles: ProfileCache,
    i18n: I18nContext,
) -> None:
    assert message.from_user is not None
    text = await status_text(message.from_user.id, backend, catalogs, profiles, i18n)
    await message.answer(text, reply_markup=main_menu(i18n))


async def status_button(
    query: CallbackQuery,
    backend: BackendClient,
    catalogs: CatalogCache,
    profiles: ProfileCache,
    i18n: I18nContext,
) -> None:
    text = await status_text(query.from_user.id, backend, catalogs, profiles, i18n)
    await edit_or_answer(query, text, main_menu(i18n))


async def settings_view(
    profile: Profile, backend: BackendClient, catalogs: CatalogCache, i18n: I18nContext
) -> tuple[str, InlineKeyboardMarkup]:
    mode = await mode_label(profile, catalogs, i18n)
    if profile.custom_instructions:
        preview = shorten(profile.custom_instructions, INSTRUCTION_PREVIEW)
        instruction = i18n.get("settings-instructions", text=preview)
    else:
        instruction = i18n.get("settings-instructions-none")
    lines = [
        i18n.get("settings-title"),
        i18n.get("settings-profile", name=display_name(profile) or str(profile.telegram_id)),
        i18n.get("settings-language", language=i18n.get("language-name")),
        i18n.get("settings-mode", mode=mode),
        instruction,
        i18n.get("settings-reasoning-on" if profile.show_reasoning else "settings-reasoning-off"),
        *await plan_lines(profile, backend, i18n),
    ]
    return "\n".join(lines), settings_menu(profile, mode, i18n)


async def mode_label(profile: Profile, catalogs: CatalogCache, i18n: I18nContext) -> str:
    """The user's chat mode in their language (the key when the catalog no longer has it)."""
    mode = (await catalogs.get()).mode(profile.mode)
    return mode.label(i18n.locale) if mode else profile.mode


async def settings_command(
    message: Message,
    profile: Profile | None,
    backend: BackendClient,
    catalogs: CatalogCache,
    i18n: I18nContext,
) -> None:
    if profile is None:
        await unavailable(message, i18n)
        return
    text, keyboard = await settings_view(profile, backend, catalogs, i18n)
    await message.answer(text, reply_markup=keyboard)


async def settings_button(
    query: CallbackQuery,
    profile: Profile | None,
    backend: BackendClient,
    catalogs: CatalogCache,
    i18n: I18nContext,
) -> None:
    if profile is None:
        await unavailable(query, i18n)
        return
    text, keyboard = await settings_view(profile, backend, catalogs, i18n)
    await edit_or_answer(query, text, keyboard)


async def change_setting(
    query: CallbackQuery,
    callback_data: SettingsCB,
    backend: BackendClient,
    profiles: ProfileCache,
    catalogs: CatalogCache,
    i18n: I18nContext,
) -> None:
    if callback_data.option == "lang" and callback_data.value in ("ru", "en"):
        changes: dict[str, object] = {"language": callback_data.value}
    elif callback_data.option == "reasoning" and callback_data.value in ("on", "off"):
        changes = {"show_reasoning": callback_data.value == "on"}
    else:
        await query.answer(i18n.get("button-outdated"), show_alert=True)
        return
    profile = await backend.update_user(query.from_user.id, **changes)
    await profiles.put(profile)
    with i18n.use_locale(profile.language):
        text, keyboard = await settings_view(profile, backend, catalogs, i18n)
        await edit_or_answer(query, text, keyboard, notice=i18n.get("settings-saved"))


async def new_chat_text(
    telegram_id: int, backend: BackendClient, catalogs: CatalogCache, i18n: I18nContext
) -> str:
    await backend.reset_conversation(telegram_id)
    profile = await backend.profile(telegram_id)
    provider, model = await catalogs.labels(profile.model)
    return i18n.get("new-chat", provider=provider, model=model)


async def new_command(
    message: Message, backend: BackendClient, catalogs: CatalogCache, i18n: I18nContext
) -> None:
    assert message.from_user is not None
    await message.answer(await new_chat_text(message.from_user.id, backend, catalogs, i18n))


async def new_button(
    query: CallbackQuery, backend: BackendClient, catalogs: CatalogCache, i18n: I18nContext
) -> None:
    text = await new_chat_text(query.from_user.id, backend, catalogs, i18n)
    await query.answer()
    if query.message is not None:
        await query.bot.send_message(query.message.chat.id, text)  # type: ignore[union-attr]


def create_router() -> Router:
    """The menu handlers on a fresh router (one per dispatcher)."""
    router = Router(name="menu")
    router.message.register(start, CommandStart())
    router.callback_query.register(home, MenuCB.filter(F.action == "home"))
    router.message.register(help_command, Command("help"))
    router.callback_query.register(help_button, MenuCB.filter(F.action == "help"))
    router.message.register(status_command, Command("status"))
    router.callback_query.register(status_button, MenuCB.filter(F.action == "status"))
    router.message.register(settings_command, Command("settings"))
    router.callback_query.register(settings_button, MenuCB.filter(F.action == "settings"))
    router.callback_query.register(change_setting, SettingsCB.filter())
    router.message.register(new_command, Command("new"))
    router.callback_query.register(new_button, MenuCB.filter(F.action == "new"))
    return router

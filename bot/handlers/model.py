"""/model: provider, then model; the current choice marked, unavailable ones marked."""

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram_i18n import I18nContext

from bot.handlers.common import choose, edit_or_answer, unavailable
from bot.keyboards.menus import MenuCB, ModelCB, ProviderCB, back_home, models_menu, providers_menu
from bot.middlewares.auth import ProfileCache
from bot.services.backend import BackendClient
from bot.services.schemas import Profile
from bot.utils.catalog import CatalogCache


async def providers_view(profile: Profile, catalogs: CatalogCache, i18n: I18nContext):  # type: ignore[no-untyped-def]
    catalog = await catalogs.get()
    provider, model = await catalogs.labels(profile.model)
    text = i18n.get("model-choose-provider", provider=provider, model=model)
    return text, providers_menu(catalog, profile, i18n)


async def model_command(
    message: Message, profile: Profile | None, catalogs: CatalogCache, i18n: I18nContext
) -> None:
    if profile is None:
        await unavailable(message, i18n)
        return
    text, keyboard = await providers_view(profile, catalogs, i18n)
    await message.answer(text, reply_markup=keyboard)


async def model_button(
    query: CallbackQuery, profile: Profile | None, catalogs: CatalogCache, i18n: I18nContext
) -> None:
    if profile is None:
        await unavailable(query, i18n)
        return
    text, keyboard = await providers_view(profile, catalogs, i18n)
    await edit_or_answer(query, text, keyboard)


async def choose_provider(
    query: CallbackQuery,
    callback_data: ProviderCB,
    profile: Profile | None,
    catalogs: CatalogCache,
    i18n: I18nContext,
) -> None:
    if profile is None:
        await unavailable(query, i18n)
        return
    catalog = await catalogs.get()
    provider = catalog.provider(callback_data.provider)
    if provider is None:
        await query.answer(i18n.get("button-outdated"), show_alert=True)
        return
    if not provider.available:
        await query.answer(i18n.get("model-unavailable", provider=provider.label), show_alert=True)
        return
    text = i18n.get("model-choose-model", provider=provider.label)
    await edit_or_answer(query, text, models_menu(catalog, provider.key, profile, i18n))


async def choose_model(
    query: CallbackQuery,
    callback_data: ModelCB,
    backend: BackendClient,
    catalogs: CatalogCache,
    profiles: ProfileCache,
    i18n: I18nContext,
) -> None:
    found = (await catalogs.get()).find(callback_data.model)
    if found is None:
        await query.answer(i18n.get("button-outdated"), show_alert=True)
        return
    provider, model = found
    if not model.available:
        await query.answer(i18n.get("model-unavailable", provider=provider.label), show_alert=True)
        return
    profile = await choose(query, backend, profiles, i18n, "unknown_model", model=model.key)
    if profile is None:
        return
    text = i18n.get("model-chosen", provider=provider.label, model=model.label)
    if model.long_running:
        text += "\n" + i18n.get("model-long-running")
    await edit_or_answer(query, text, back_home(i18n))


def create_router() -> Router:
    """The model handlers on a fresh router (one per dispatcher)."""
    router = Router(name="model")
    router.message.register(model_command, Command("model"))
    router.callback_query.register(model_button, MenuCB.filter(F.action == "model"))
    router.callback_query.register(choose_provider, ProviderCB.filter())
    router.callback_query.register(choose_model, ModelCB.filter())
    return router

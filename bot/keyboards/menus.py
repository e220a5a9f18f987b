"""Inline keyboards and their callback data (aiogram CallbackData factories)."""

from typing import Literal

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder
from aiogram_i18n import I18nContext

from bot.services.schemas import Catalog, CatalogModel, CatalogProvider, Profile

MenuAction = Literal["home", "new", "model", "image", "status", "settings", "help", "vip"]


class MenuCB(CallbackData, prefix="m"):
    action: MenuAction


class ProviderCB(CallbackData, prefix="p"):
    provider: str


class ModelCB(CallbackData, prefix="md"):
    model: str


class SettingsCB(CallbackData, prefix="s"):
    option: Literal["lang", "reasoning"]
    value: Literal["ru", "en", "on", "off"]


class PrefsCB(CallbackData, prefix="pf"):
    """The chat-mode list and the custom-instruction screen, and what their buttons do."""

    action: Literal["modes", "instructions", "set", "clear"]


class ModeCB(CallbackData, prefix="mo"):
    mode: str


class SwitchModelCB(CallbackData, prefix="sw"):
    """Switch to a model that sees pictures, then answer the photo the offer replies to."""

    model: str


class AskAgainCB(CallbackData, prefix="again"):
    """Ask the question a lost answer's notice replies to once more."""


class ForgetCB(CallbackData, prefix="fg"):
    """/forget from the settings: ask first, then erase or leave everything as it is."""

    action: Literal["ask", "yes", "no"]


def ask_again(label: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=label, callback_data=AskAgainCB())
    return kb.as_markup()


CURRENT = "✅ "
UNAVAILABLE = "⛔ "


def main_menu(i18n: I18nContext) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=i18n.get("btn-new-chat"), callback_data=MenuCB(action="new"))
    kb.button(text=i18n.get("btn-model"), callback_data=MenuCB(action="model"))
    kb.button(text=i18n.get("btn-picture"), callback_data=MenuCB(action="image"))
    kb.button(text=i18n.get("btn-status"), callback_data=MenuCB(action="status"))
    kb.button(text=i18n.get("btn-settings"), callback_data=MenuCB(action="settings"))
    kb.button(text=i18n.get("btn-help"), callback_data=MenuCB(action="help"))
    kb.button(text=i18n.get("btn-vip"), callback_data=MenuCB(action="vip"))
    kb.adjust(2)
    return kb.as_markup()


def back_home(i18n: I18nContext) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=i18n.get("btn-home"), callback_data=MenuCB(action="home"))
    return kb.as_markup()


def after_answer(i18n: I18nContext) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=i18n.get("btn-new-chat"), callback_data=MenuCB(action="new"))
    kb.button(text=i18n.get("btn-model"), callback_data=MenuCB(action="model"))
    return kb.as_markup()


def providers_menu(catalog: Catalog, profile: Profile, i18n: I18nContext) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for provider in catalog.providers:
        mark = CURRENT if provider.key == profile.provider else ""
        if not provider.available:
            mark = UNAVAILABLE
        kb.button(text=f"{mark}{provider.label}", callback_data=ProviderCB(provider=provider.key))
    kb.button(text=i18n.get("btn-home"), callback_data=MenuCB(action="home"))
    kb.adjust(1)
    return kb.as_markup()


def models_menu(
    catalog: Catalog, provider_key: str, profile: Profile, i18n: I18nContext
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    provider = catalog.provider(provider_key)
    for model in provider.models if provider else []:
        mark = CURRENT if model.key == profile.model else ""
        if not model.available:
            mark = UNAVAILABLE
        label = f"{mark}{provider.label if provider else ''} {model.label}".strip()
        kb.button(text=label, callback_data=ModelCB(model=model.key))
    kb.button(text=i18n.get("btn-back"), callback_data=MenuCB(action="model"))
    kb.adjust(1)
    return kb.as_markup()


def settings_menu(profile: Profile, mode_label: str, i18n: I18nContext) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=i18n.get("btn-mode", mode=mode_label), callback_data=PrefsCB(action="modes"))
    kb.button(text=i18n.get("btn-instructions"), callback_data=PrefsCB(action="instructions"))
    other = "en" if profile.language == "ru" else "ru"
    kb.button(
        text=i18n.get(f"btn-language-{other}"), callback_data=SettingsCB(option="lang", value=other)
    )
    if profile.show_reasoning:
        kb.button(
            text=i18n.get("btn-reasoning-hide"),
            callback_data=SettingsCB(option="reasoning", value="off"),
        )
    else:
        kb.button(
            text=i18n.get("btn-reasoning-show"),
            callback_data=SettingsCB(option="reasoning", value="on"),
        )
    kb.button(text=i18n.get("btn-vip"), callback_data=MenuCB(action="vip"))
    kb.button(text=i18n.get("btn-forget"), callback_data=ForgetCB(action="ask"))
    kb.button(text=i18n.get("btn-home"), callback_data=MenuCB(action="home"))
    kb.adjust(1)
    return kb.as_markup()


def forget_menu(i18n: I18nContext) -> InlineKeyboardMarkup:
    """The confirmation: erase, or cancel."""
    kb = InlineKeyboardBuilder()
    kb.button(text=i18n.get("btn-forget-yes"), callback_data=ForgetCB(action="yes"))
    kb.button(text=i18n.get("btn-forget-no"), callback_data=ForgetCB(action="no"))
    kb.adjust(2)
    return kb.as_markup()


def modes_menu(catalog: Catalog, profile: Profile, i18n: I18nContext) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for mode in catalog.modes:
        mark = CURRENT if mode.key == profile.mode else ""
        kb.button(text=f"{mark}{mode.label(i18n.locale)}", callback_data=ModeCB(mode=mode.key))
    kb.button(text=i18n.get("btn-back"), callback_data=MenuCB(action="settings"))
    kb.adjust(1)
    return kb.as_markup()


def instructions_menu(profile: Profile, i18n: I18nContext) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=i18n.get("btn-instructions-set"), callback_data=PrefsCB(action="set"))
    if profile.custom_instructions:
        kb.button(text=i18n.get("btn-instructions-clear"), callback_data=PrefsCB(action="clear"))
    kb.button(text=i18n.get("btn-back"), callback_data=MenuCB(action="settings"))
    kb.adjust(2 if profile.custom_instructions else 1, 1)
    return kb.as_markup()


def switch_model_menu(
    models: list[tuple[CatalogProvider, CatalogModel]], i18n: I18nContext
) -> InlineKeyboardMarkup:
    """One button per model that sees pictures: "Switch to ChatGPT · Instant"."""
    kb = InlineKeyboardBuilder()
    for provider, model in models:
        kb.button(
            text=i18n.get("btn-switch-to", provider=provider.label, model=model.label),
            callback_data=SwitchModelCB(model=model.key),
        )
    kb.adjust(1)
    return kb.as_markup()

"""Inline keyboards and their callback data (aiogram CallbackData factories)."""

from typing import Literal

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder
from aiogram_i18n import I18nContext

from bot.services.schemas import Catalog, Profile

MenuAction = Literal["home", "new", "model", "status", "settings", "help", "vip"]


class MenuCB(CallbackData, prefix="m"):
    action: MenuAction


class ProviderCB(CallbackData, prefix="p"):
    provider: str


class ModelCB(CallbackData, prefix="md"):
    model: str


class SettingsCB(CallbackData, prefix="s"):
    option: Literal["lang", "reasoning"]
    value: Literal["ru", "en", "on", "off"]


CURRENT = "✅ "
UNAVAILABLE = "⛔ "


def main_menu(i18n: I18nContext) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=i18n.get("btn-new-chat"), callback_data=MenuCB(action="new"))
    kb.button(text=i18n.get("btn-model"), callback_data=MenuCB(action="model"))
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


def settings_menu(profile: Profile, i18n: I18nContext) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
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
    kb.button(text=i18n.get("btn-home"), callback_data=MenuCB(action="home"))
    kb.adjust(1)
    return kb.as_markup()

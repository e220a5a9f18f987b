"""The interface language: the one saved in the user's profile, else Telegram's."""

from pathlib import Path
from typing import Any

from aiogram.types import User
from aiogram_i18n import I18nMiddleware
from aiogram_i18n.cores import FluentRuntimeCore
from aiogram_i18n.managers import BaseManager

from bot.services.schemas import Profile

LOCALES = Path(__file__).resolve().parent.parent / "locales"
LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "en"


def language_of(profile: Profile | None, user: User | None) -> str:
    """The saved language; for an unknown user, Russian for Russian speakers, else English."""
    if profile is not None:
        return profile.language
    code = (user.language_code or "").split("-")[0].lower() if user else ""
    return "ru" if code in {"ru", "be", "kk", "ky"} else DEFAULT_LANGUAGE


class ProfileLocaleManager(BaseManager):
    """Reads the locale from `data["profile"]`; saving a new one goes through the backend."""

    async def get_locale(self, event_from_user: User | None = None, **data: Any) -> str:
        return language_of(data.get("profile"), event_from_user)

    async def set_locale(self, *args: Any, **kwargs: Any) -> None:
        # The language is saved by the settings handler through the backend.
        return None


def create_i18n() -> I18nMiddleware:
    return I18nMiddleware(
        core=FluentRuntimeCore(path=LOCALES / "{locale}", default_locale=DEFAULT_LANGUAGE),
        manager=ProfileLocaleManager(default_locale=DEFAULT_LANGUAGE),
        default_locale=DEFAULT_LANGUAGE,
    )

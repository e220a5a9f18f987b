"""The Telegram bot. Its aiogram types are built on first use (`bot.utils.lazy_types`), which
has to happen before anything imports aiogram, so it happens here."""

from bot.utils.lazy_types import defer_aiogram_types

defer_aiogram_types()

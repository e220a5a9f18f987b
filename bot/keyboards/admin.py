"""Keyboards of the operators' menu, user cards and broadcasts."""

from typing import Literal

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder
from aiogram_i18n import I18nContext

from bot.services.schemas import Audience, BroadcastInfo

UserAction = Literal["vip30", "vip365", "revoke", "block", "unblock"]
VIP_DAYS: dict[str, int] = {"vip30": 30, "vip365": 365}


class AdminMenuCB(CallbackData, prefix="adm"):
    action: Literal["stats", "find", "broadcast", "help"]


class AdminUserCB(CallbackData, prefix="admu"):
    action: UserAction
    user_id: int


class BroadcastCB(CallbackData, prefix="admb"):
    """Confirm or drop a previewed broadcast: the admin's message to copy, and to whom."""

    action: Literal["confirm", "drop"]
    audience: Audience
    message_id: int


class BroadcastStopCB(CallbackData, prefix="admbs"):
    broadcast_id: int


def admin_menu(i18n: I18nContext) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for action in ("stats", "find", "broadcast", "help"):
        kb.button(text=i18n.get(f"admin-btn-{action}"), callback_data=AdminMenuCB(action=action))
    kb.adjust(2)
    return kb.as_markup()


def user_card_keyboard(
    i18n: I18nContext, user_id: int, *, blocked: bool, vip: bool
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=i18n.get("admin-btn-vip30"), callback_data=AdminUserCB(action="vip30", user_id=user_id)
    )
    kb.button(
        text=i18n.get("admin-btn-vip365"),
        callback_data=AdminUserCB(action="vip365", user_id=user_id),
    )
    if vip:
        kb.button(
            text=i18n.get("admin-btn-revoke"),
            callback_data=AdminUserCB(action="revoke", user_id=user_id),
        )
    action: UserAction = "unblock" if blocked else "block"
    kb.button(
        text=i18n.get(f"admin-btn-{action}"),
        callback_data=AdminUserCB(action=action, user_id=user_id),
    )
    kb.adjust(2)
    return kb.as_markup()


def broadcast_confirm_keyboard(
    i18n: I18nContext, audience: Audience, message_id: int
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=i18n.get("admin-btn-broadcast-confirm"),
        callback_data=BroadcastCB(action="confirm", audience=audience, message_id=message_id),
    )
    kb.button(
        text=i18n.get("admin-btn-broadcast-drop"),
        callback_data=BroadcastCB(action="drop", audience=audience, message_id=message_id),
    )
    kb.adjust(2)
    return kb.as_markup()


def broadcast_progress_keyboard(label: str, broadcast: BroadcastInfo) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=label, callback_data=BroadcastStopCB(broadcast_id=broadcast.id))
    return kb.as_markup()

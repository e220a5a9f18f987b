"""Keyboards of the VIP offer and the subscription controls."""

from typing import Literal

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder
from aiogram_i18n import I18nContext

from bot.keyboards.menus import MenuCB


class PayCB(CallbackData, prefix="pay"):
    rail: Literal["stars", "fiat"]


class RenewalCB(CallbackData, prefix="rn"):
    enable: bool


def offer_keyboard(
    i18n: I18nContext,
    *,
    stars_price: int,
    invoice_link: str | None,
    fiat: tuple[int, str] | None,
) -> InlineKeyboardMarkup:
    """The pay buttons: a Stars subscription link, or a one-off invoice; fiat if configured."""
    kb = InlineKeyboardBuilder()
    label = i18n.get("btn-pay-stars", price=stars_price)
    if invoice_link:
        kb.button(text=label, url=invoice_link)
    else:
        kb.button(text=label, callback_data=PayCB(rail="stars"))
    if fiat is not None:
        amount, currency = fiat
        kb.button(
            text=i18n.get("btn-pay-fiat", amount=f"{amount / 100:.2f}", currency=currency),
            callback_data=PayCB(rail="fiat"),
        )
    kb.button(text=i18n.get("btn-home"), callback_data=MenuCB(action="home"))
    kb.adjust(1)
    return kb.as_markup()


def vip_keyboard(i18n: I18nContext, *, auto_renew: bool, can_change: bool) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    if can_change:
        if auto_renew:
            kb.button(text=i18n.get("btn-cancel-renewal"), callback_data=RenewalCB(enable=False))
        else:
            kb.button(text=i18n.get("btn-resume-renewal"), callback_data=RenewalCB(enable=True))
    kb.button(text=i18n.get("btn-home"), callback_data=MenuCB(action="home"))
    kb.adjust(1)
    return kb.as_markup()

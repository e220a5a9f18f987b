"""VIP: the offer, pre-checkout, payments, renewals and refunds.

A successful payment is recorded through the backend before the update is acknowledged:
if the backend cannot be reached, `PaymentNotRecorded` propagates, the webhook answers 503
and Telegram delivers the update again (the backend records each charge id once).
"""

import asyncio
from datetime import UTC, datetime
from typing import TypedDict

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    BotSubscriptionUpdated,
    CallbackQuery,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
)
from aiogram_i18n import I18nContext

from bot.config import BotSettings
from bot.handlers.common import edit_or_answer, unavailable
from bot.keyboards.menus import MenuCB
from bot.keyboards.payments import PayCB, RenewalCB, offer_keyboard, vip_keyboard
from bot.middlewares.auth import ProfileCache
from bot.services.backend import BackendClient, BackendError, BackendUnavailable
from bot.services.schemas import Invoice, Profile
from bot.utils.dates import format_date
from bot.utils.logging import get_logger

log = get_logger("bot.payments")

RECORD_ATTEMPTS = 3


class PaymentNotRecorded(Exception):
    """The backend did not confirm a payment: the update must be delivered again."""


async def offer_view(
    telegram_id: int, bot: Bot, backend: BackendClient, settings: BotSettings, i18n: I18nContext
) -> tuple[str, InlineKeyboardMarkup]:
    """VIP status with renewal controls, or the offer with its pay buttons."""
    subscription = await backend.subscription(telegram_id)
    if subscription.is_vip and subscription.vip_expires_at:
        until = format_date(subscription.vip_expires_at, i18n.locale)
        lines = [i18n.get("already-vip", until=until)]
        if subscription.telegram_charge_id:
            lines.append(
                i18n.get("vip-renewal-on" if subscription.auto_renew else "vip-renewal-off")
            )
        keyboard = vip_keyboard(
            i18n,
            auto_renew=subscription.auto_renew,
            can_change=bool(subscription.telegram_charge_id),
        )
        return "\n".join(lines), keyboard
    plan = await backend.plan()
    link = None
    if plan.subscription:
        invoice = await backend.create_offer(telegram_id, "stars")
        link = await bot.create_invoice_link(
            subscription_period=invoice.subscription_period_s,
            **invoice_fields(invoice, i18n),
        )
    fiat = None
    if (
        settings.payment_provider_token.get_secret_value()
        and plan.fiat_amount
        and plan.fiat_currency
    ):
        fiat = (plan.fiat_amount, plan.fiat_currency)
    text = i18n.get("subscribe", price=plan.stars_amount, days=plan.period_days)
    return text, offer_keyboard(i18n, stars_price=plan.stars_amount, invoice_link=link, fiat=fiat)


class InvoiceFields(TypedDict):
    title: str
    description: str
    payload: str
    currency: str
    prices: list[LabeledPrice]


def invoice_fields(invoice: Invoice, i18n: I18nContext) -> InvoiceFields:
    title = i18n.get("invoice-title")
    return {
        "title": title,
        "description": i18n.get("invoice-description", days=invoice.period_days),
        "payload": invoice.payload,
        "currency": invoice.currency,
        "prices": [LabeledPrice(label=title, amount=invoice.amount)],
    }


async def subscribe_command(
    message: Message,
    bot: Bot,
    backend: BackendClient,
    settings: BotSettings,
    profile: Profile | None,
    i18n: I18nContext,
) -> None:
    if profile is None or message.from_user is None:
        await unavailable(message, i18n)
        return
    text, keyboard = await offer_view(message.from_user.id, bot, backend, settings, i18n)
    await message.answer(text, reply_markup=keyboard)


async def vip_button(
    query: CallbackQuery, bot: Bot, backend: BackendClient, settings: BotSettings, i18n: I18nContext
) -> None:
    text, keyboard = await offer_view(query.from_user.id, bot, backend, settings, i18n)
    await edit_or_answer(query, text, keyboard)


async def pay_button(
    query: CallbackQuery,
    callback_data: PayCB,
    bot: Bot,
    backend: BackendClient,
    settings: BotSettings,
    i18n: I18nContext,
) -> None:
    """A one-off invoice: Stars for one period, or the fiat rail through the provider token."""
    token = settings.payment_provider_token.get_secret_value()
    if callback_data.rail == "fiat" and not token:
        await query.answer(i18n.get("button-outdated"), show_alert=True)
        return
    invoice = await backend.create_offer(query.from_user.id, callback_data.rail)
    await query.answer()
    await bot.send_invoice(
        chat_id=query.from_user.id,
        provider_token=token if callback_data.rail == "fiat" else None,
        **invoice_fields(invoice, i18n),
    )


async def pre_checkout(
    query: PreCheckoutQuery, backend: BackendClient, settings: BotSettings, i18n: I18nContext
) -> None:
    """Answer within Telegram's 10 s; never accept what the backend did not confirm."""
    try:
        async with asyncio.timeout(settings.pre_checkout_timeout_s):
            verdict = await backend.pre_checkout(
                query.from_user.id, query.invoice_payload, query.currency, query.total_amount
            )
    except (TimeoutError, BackendError) as exc:
        log.warning("pre_checkout_unanswered", error=type(exc).__name__)
        await query.answer(ok=False, error_message=i18n.get("payment-try-later"))
        return
    if verdict.ok:
        await query.answer(ok=True)
        return
    reason = i18n.get(f"decline-{verdict.error_code}") if verdict.error_code else ""
    await query.answer(ok=False, error_message=i18n.get("payment-declined", reason=reason))


async def successful_payment(
    message: Message, backend: BackendClient, profiles: ProfileCache, i18n: I18nContext
) -> None:
    """Record the charge (retrying briefly), then thank the user with the new expiry."""
    payment = message.successful_payment
    assert payment is not None and message.from_user is not None
    fields = {
        "payload": payment.invoice_payload,
        "currency": payment.currency,
        "total_amount": payment.total_amount,
        "telegram_payment_charge_id": payment.telegram_payment_charge_id,
        "provider_payment_charge_id": payment.provider_payment_charge_id or None,
        "is_recurring": bool(payment.is_recurring),
        "is_first_recurring": bool(payment.is_first_recurring),
        "subscription_expiration_date": (
            datetime.fromtimestamp(payment.subscription_expiration_date, UTC).isoformat()
            if payment.subscription_expiration_date
            else None
        ),
    }
    result = None
    for attempt in range(RECORD_ATTEMPTS):
        try:
            result = await backend.record_payment(message.from_user.id, fields)
            break
        except BackendUnavailable as exc:
            log.warning("payment_record_retry", attempt=attempt + 1, error=str(exc))
            await asyncio.sleep(0.5 * 2**attempt)
    if result is None:
        raise PaymentNotRecorded(payment.telegram_payment_charge_id)
    await profiles.update(
        message.from_user.id,
        is_vip=result.vip_expires_at is not None,
        vip_expires_at=result.vip_expires_at,
    )
    if result.duplicate:
        return  # already thanked when it was first recorded
    if result.vip_extended and result.vip_expires_at:
        await message.answer(
            i18n.get("payment-thanks", until=format_date(result.vip_expires_at, i18n.locale))
        )
    else:
        await message.answer(i18n.get("payment-not-matched"))


async def refunded_payment(
    message: Message, backend: BackendClient, profiles: ProfileCache, i18n: I18nContext
) -> None:
    """Telegram reports a refund (ours or the user's dispute): revoke and tell the user."""
    refund = message.refunded_payment
    assert refund is not None
    try:
        result = await backend.record_refund(refund.telegram_payment_charge_id)
    except BackendUnavailable as exc:
        raise PaymentNotRecorded(refund.telegram_payment_charge_id) from exc
    except BackendError as exc:
        if exc.code != "transaction_not_found":
            raise
        # Telegram refunded a charge we have no record of: an operator must look into it.
        # The user already has Telegram's own notice of the refund.
        log.error("refund_not_matched", charge=refund.telegram_payment_charge_id)
        return
    if message.from_user is not None:
        await profiles.update(message.from_user.id, is_vip=result.vip_expires_at is not None)
    if result.refunded:
        await message.answer(i18n.get("payment-refunded"))


async def subscription_updated(event: BotSubscriptionUpdated, backend: BackendClient) -> None:
    if event.state in ("canceled", "active", "failed"):
        await backend.subscription_state(event.user.id, event.state)


async def renewal_button(
    query: CallbackQuery,
    callback_data: RenewalCB,
    bot: Bot,
    backend: BackendClient,
    i18n: I18nContext,
) -> None:
    """Turn the Stars subscription's renewal off or on (Telegram first, then our record)."""
    subscription = await backend.subscription(query.from_user.id)
    if not subscription.telegram_charge_id or not subscription.is_vip:
        await query.answer(i18n.get("button-outdated"), show_alert=True)
        return
    await bot.edit_user_star_subscription(
        user_id=query.from_user.id,
        telegram_payment_charge_id=subscription.telegram_charge_id,
        is_canceled=not callback_data.enable,
    )
    updated = await backend.set_auto_renew(query.from_user.id, callback_data.enable)
    if callback_data.enable:
        text = i18n.get("renewal-resumed")
    else:
        until = format_date(updated.vip_expires_at, i18n.locale) if updated.vip_expires_at else ""
        text = i18n.get("renewal-cancelled", until=until)
    await edit_or_answer(
        query, text, vip_keyboard(i18n, auto_renew=updated.auto_renew, can_change=True)
    )


async def refund_command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    backend: BackendClient,
    settings: BotSettings,
    i18n: I18nContext,
) -> None:
    """/refund <charge id> (ADMIN_IDS): refundStarPayment, then the backend revokes."""
    admin = message.from_user
    if admin is None or admin.id not in settings.admin_ids:
        await message.answer(i18n.get("admin-only"))
        return
    charge_id = (command.args or "").strip()
    if not charge_id:
        await message.answer(i18n.get("refund-usage"))
        return
    try:
        transaction = await backend.transaction(charge_id)
    except BackendError as exc:
        if exc.code != "transaction_not_found":
            raise
        await message.answer(i18n.get("refund-not-found"))
        return
    if transaction.status == "refunded":
        await message.answer(i18n.get("refund-already"))
        return
    if transaction.currency == "XTR":
        try:
            await bot.refund_star_payment(
                user_id=transaction.telegram_id, telegram_payment_charge_id=charge_id
            )
        except TelegramBadRequest as exc:
            await message.answer(i18n.get("refund-failed", reason=exc.message))
            return
    result = await backend.record_refund(charge_id, admin.id)
    key = "refund-done" if result.refunded else "refund-already"
    await message.answer(
        i18n.get(
            key,
            amount=transaction.amount,
            currency=transaction.currency,
            user=transaction.telegram_id,
        )
    )


def create_router() -> Router:
    """The payment handlers on a fresh router (one per dispatcher)."""
    router = Router(name="payments")
    router.message.register(subscribe_command, Command("subscribe"))
    router.callback_query.register(vip_button, MenuCB.filter(F.action == "vip"))
    router.callback_query.register(pay_button, PayCB.filter())
    router.callback_query.register(renewal_button, RenewalCB.filter())
    router.pre_checkout_query.register(pre_checkout)
    router.message.register(successful_payment, F.successful_payment)
    router.message.register(refunded_payment, F.refunded_payment)
    router.subscription.register(subscription_updated)
    router.message.register(refund_command, Command("refund"))
    return router

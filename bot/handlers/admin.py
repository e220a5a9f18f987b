"""Operators (ADMIN_IDS): figures, user cards, VIP by hand, blocking, broadcasts.

Everyone else gets "this is for operators"; the backend checks X-Admin-Id on every call anyway.
A broadcast is prepared without server-side state: /broadcast asks with a ForceReply prompt
whose first line names the audience, the reply is the message to copy, and the preview's
buttons carry the audience and that message's id.
"""

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    CallbackQuery,
    ForceReply,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
    User,
)
from aiogram_i18n import I18nContext

from bot.config import BotSettings
from bot.handlers.common import edit_or_answer
from bot.keyboards.admin import (
    VIP_DAYS,
    AdminMenuCB,
    AdminUserCB,
    BroadcastCB,
    BroadcastStopCB,
    admin_menu,
    broadcast_confirm_keyboard,
    user_card_keyboard,
)
from bot.middlewares.auth import ProfileCache
from bot.services.backend import BackendClient, BackendError
from bot.services.broadcast import BroadcastRunner
from bot.services.schemas import AUDIENCES, AdminStats, AdminUserCard, Audience
from bot.utils.dates import format_date
from bot.utils.i18n import LANGUAGES
from bot.utils.logging import get_logger

log = get_logger("bot.admin")

MAX_VIP_DAYS = 3650


def is_admin(user: User | int | None, settings: BotSettings) -> bool:
    user_id = user.id if isinstance(user, User) else user
    return user_id is not None and user_id in settings.admin_ids


async def admin_only(
    handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
    event: TelegramObject,
    data: dict[str, Any],
) -> Any:
    """Every handler of this router: operators get `admin_id`; anyone else is refused."""
    user: User | None = data.get("event_from_user")
    if user is None or not is_admin(user, data["settings"]):
        text = data["i18n"].get("admin-only")
        if isinstance(event, CallbackQuery):
            await event.answer(text, show_alert=True)
        elif isinstance(event, Message):
            await event.answer(text)
        return None
    data["admin_id"] = user.id
    return await handler(event, data)


# --- rendering ---


def money(value: Decimal) -> str:
    return f"{value:.2f}"


def stats_text(stats: AdminStats, i18n: I18nContext) -> str:
    revenue = ", ".join(f"{r.amount} {r.currency}" for r in stats.revenue_month)
    lines = [
        i18n.get(
            "admin-stats",
            users=stats.users_total,
            new=stats.users_new_today,
            vip=stats.vip_active,
            paying=stats.paying_users,
            conversion=f"{stats.conversion:.1%}",
            cost_today=money(stats.cost_today_usd),
            cost_month=money(stats.cost_month_usd),
            revenue=revenue or i18n.get("admin-stats-none"),
            refunds=stats.refunds_month,
        ),
        "",
        i18n.get("admin-stats-models"),
    ]
    lines += [
        i18n.get(
            "admin-stats-model", provider=m.provider, model=m.model, count=m.count, failed=m.failed
        )
        for m in stats.messages_today
    ] or [i18n.get("admin-stats-none")]
    lines += ["", i18n.get("admin-stats-errors")]
    lines += [
        i18n.get(
            "admin-stats-error",
            provider=e.provider,
            rate=f"{e.rate:.1%}",
            failed=e.failed,
            total=e.total,
        )
        for e in stats.error_rate
    ] or [i18n.get("admin-stats-none")]
    return "\n".join(lines)


def card_text(card: AdminUserCard, i18n: I18nContext) -> str:
    """Who the user is, their plan and usage, and their payments with charge ids to refund."""
    lines = [i18n.get("admin-card-title", name=card.first_name or "—", id=str(card.telegram_id))]
    if card.username:
        lines.append(i18n.get("admin-card-username", username=card.username))
    lines.append(
        i18n.get(
            "admin-card-since",
            date=format_date(card.created_at, i18n.locale),
            language=card.language,
        )
    )
    if card.vip_until is not None:
        lines.append(
            i18n.get(
                "admin-card-vip",
                until=format_date(card.vip_until, i18n.locale),
                renew="yes" if card.auto_renew else "no",
            )
        )
    elif card.free_messages_left is not None and card.free_messages_limit is not None:
        lines.append(
            i18n.get(
                "admin-card-free", left=card.free_messages_left, limit=card.free_messages_limit
            )
        )
    lines.append(
        i18n.get("admin-card-usage", messages=card.messages_total, cost=money(card.cost_total_usd))
    )
    if card.blocked:
        lines.append(i18n.get("admin-card-blocked"))
    if card.bot_blocked:
        lines.append(i18n.get("admin-card-bot-blocked"))
    if card.payments:
        lines.append(i18n.get("admin-card-payments"))
        lines += [
            i18n.get(
                "admin-card-payment",
                date=format_date(p.paid_at, i18n.locale) if p.paid_at else "—",
                amount=p.amount,
                currency=p.currency,
                status=p.status,
                charge=p.charge_id or "—",
            )
            for p in card.payments
        ]
    else:
        lines.append(i18n.get("admin-card-no-payments"))
    return "\n".join(lines)


def show_card(card: AdminUserCard, i18n: I18nContext) -> tuple[str, InlineKeyboardMarkup]:
    keyboard = user_card_keyboard(
        i18n, card.telegram_id, blocked=card.blocked, vip=card.vip_until is not None
    )
    return card_text(card, i18n), keyboard


# --- menu and stats ---


async def admin_command(message: Message, admin_id: int, i18n: I18nContext) -> None:
    await message.answer(i18n.get("admin-menu"), reply_markup=admin_menu(i18n))


async def menu_button(
    query: CallbackQuery,
    callback_data: AdminMenuCB,
    backend: BackendClient,
    admin_id: int,
    i18n: I18nContext,
) -> None:
    if callback_data.action == "stats":
        stats = await backend.admin_stats(admin_id)
        await edit_or_answer(query, stats_text(stats, i18n), admin_menu(i18n))
        return
    key = {"find": "admin-find-usage", "broadcast": "admin-broadcast-usage"}.get(
        callback_data.action, "admin-help"
    )
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.answer(i18n.get(key))


async def stats_command(
    message: Message, backend: BackendClient, admin_id: int, i18n: I18nContext
) -> None:
    stats = await backend.admin_stats(admin_id)
    await message.answer(stats_text(stats, i18n))


# --- users ---


async def find_card(backend: BackendClient, admin_id: int, query: str) -> AdminUserCard | None:
    """The card of an id or @username; None if nobody matches."""
    try:
        return await backend.admin_lookup(admin_id, query)
    except BackendError as exc:
        if exc.code in {"user_not_found", "validation_error"}:
            return None
        raise


async def find_command(
    message: Message,
    command: CommandObject,
    backend: BackendClient,
    admin_id: int,
    i18n: I18nContext,
) -> None:
    query = (command.args or "").strip()
    if not query:
        await message.answer(i18n.get("admin-find-usage"))
        return
    card = await find_card(backend, admin_id, query)
    if card is None:
        await message.answer(i18n.get("admin-user-not-found", query=query))
        return
    text, keyboard = show_card(card, i18n)
    await message.answer(text, reply_markup=keyboard)


async def revoke(
    admin_id: int, user_id: int, bot: Bot, backend: BackendClient, i18n: I18nContext
) -> tuple[AdminUserCard, str]:
    """End VIP now; stop the user's Stars subscription too, so it is not charged again."""
    card = await backend.admin_revoke_vip(admin_id, user_id)
    if not card.cancel_stars_charge_id:
        return card, i18n.get("admin-vip-revoked")
    try:
        await bot.edit_user_star_subscription(
            user_id=user_id,
            telegram_payment_charge_id=card.cancel_stars_charge_id,
            is_canceled=True,
        )
    except TelegramBadRequest as exc:
        log.warning("stars_cancel_failed", user=user_id, error=exc.message)
        return card, i18n.get("admin-stars-cancel-failed", reason=exc.message)
    return card, i18n.get("admin-vip-revoked-stars")


async def apply(
    action: str,
    admin_id: int,
    user_id: int,
    bot: Bot,
    backend: BackendClient,
    profiles: ProfileCache,
    i18n: I18nContext,
    days: int | None = None,
) -> tuple[AdminUserCard, str]:
    """One operator action on a user; the updated card and what was done."""
    if action in VIP_DAYS or action == "grant":
        card = await backend.admin_grant_vip(admin_id, user_id, days or VIP_DAYS[action])
        assert card.vip_until is not None
        await profiles.update(user_id, is_vip=True, vip_expires_at=card.vip_until)
        return card, i18n.get("admin-vip-granted", until=format_date(card.vip_until, i18n.locale))
    if action == "revoke":
        card, notice = await revoke(admin_id, user_id, bot, backend, i18n)
        await profiles.update(user_id, is_vip=False, vip_expires_at=None)
        return card, notice
    blocked = action == "block"
    card = await backend.admin_set_blocked(admin_id, user_id, blocked)
    await profiles.update(user_id, blocked=blocked)
    return card, i18n.get("admin-user-blocked" if blocked else "admin-user-unblocked")


async def user_button(
    query: CallbackQuery,
    callback_data: AdminUserCB,
    bot: Bot,
    backend: BackendClient,
    profiles: ProfileCache,
    admin_id: int,
    i18n: I18nContext,
) -> None:
    try:
        card, notice = await apply(
            callback_data.action,
            admin_id,
            callback_data.user_id,
            bot,
            backend,
            profiles,
            i18n,
        )
    except BackendError as exc:
        if exc.code != "user_not_found":
            raise
        await query.answer(i18n.get("button-outdated"), show_alert=True)
        return
    text, keyboard = show_card(card, i18n)
    await edit_or_answer(query, text + "\n\n" + notice, keyboard, notice=notice)


async def user_command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    backend: BackendClient,
    profiles: ProfileCache,
    admin_id: int,
    i18n: I18nContext,
) -> None:
    """/grant <user> <days>, /revoke <user>, /block <user>, /unblock <user>."""
    action = command.command.lower()
    args = (command.args or "").split()
    days = None
    if action == "grant":
        if len(args) != 2 or not args[1].isdigit() or not 1 <= int(args[1]) <= MAX_VIP_DAYS:
            await message.answer(i18n.get("admin-grant-usage"))
            return
        days = int(args[1])
    elif len(args) != 1:
        await message.answer(i18n.get("admin-target-usage", command=action))
        return
    card = await find_card(backend, admin_id, args[0])
    if card is None:
        await message.answer(i18n.get("admin-user-not-found", query=args[0]))
        return
    card, notice = await apply(
        action, admin_id, card.telegram_id, bot, backend, profiles, i18n, days
    )
    text, keyboard = show_card(card, i18n)
    await message.answer(notice + "\n\n" + text, reply_markup=keyboard)


# --- broadcasts ---


def prompt_title(audience: Audience, i18n: I18nContext, locale: str | None = None) -> str:
    return i18n.core.get(f"admin-broadcast-prompt-{audience}", locale or i18n.locale)


async def broadcast_command(
    message: Message,
    command: CommandObject,
    admin_id: int,
    i18n: I18nContext,
) -> None:
    """/broadcast all|vip|free: ask for the message to copy."""
    audience = (command.args or "").strip().lower()
    if audience not in AUDIENCES:
        await message.answer(i18n.get("admin-broadcast-usage"))
        return
    await message.answer(
        prompt_title(audience, i18n) + "\n" + i18n.get("admin-broadcast-prompt"),
        reply_markup=ForceReply(force_reply=True),
    )


def broadcast_reply(
    message: Message, bot: Bot, settings: BotSettings, i18n: I18nContext
) -> dict[str, Audience] | bool:
    """An admin's reply to the broadcast prompt: `audience` for the handler."""
    prompt = message.reply_to_message
    if (
        prompt is None
        or prompt.from_user is None
        or prompt.from_user.id != bot.id
        or not is_admin(message.from_user, settings)
    ):
        return False
    first_line = (prompt.text or "").split("\n", 1)[0]
    for audience in AUDIENCES:
        if first_line in {prompt_title(audience, i18n, locale) for locale in LANGUAGES}:
            return {"audience": audience}
    return False


async def broadcast_preview(
    message: Message,
    audience: Audience,
    admin_id: int,
    bot: Bot,
    backend: BackendClient,
    i18n: I18nContext,
) -> None:
    """Show the message as recipients will see it, how many they are, and Send / Cancel."""
    await bot.copy_message(
        chat_id=message.chat.id, from_chat_id=message.chat.id, message_id=message.message_id
    )
    count = await backend.audience_count(admin_id, audience)
    await message.answer(
        i18n.get(
            "admin-broadcast-preview", count=count, audience=i18n.get(f"admin-audience-{audience}")
        ),
        reply_markup=broadcast_confirm_keyboard(i18n, audience, message.message_id),
    )


async def broadcast_button(
    query: CallbackQuery,
    callback_data: BroadcastCB,
    backend: BackendClient,
    broadcasts: BroadcastRunner,
    admin_id: int,
    i18n: I18nContext,
) -> None:
    if callback_data.action == "drop":
        await edit_or_answer(query, i18n.get("admin-broadcast-dropped"), None)
        return
    chat_id = query.message.chat.id if query.message is not None else admin_id
    # A second tap on Send (answered in turn, after the first) starts nothing new.
    for earlier in await backend.broadcasts(admin_id):
        if (earlier.from_chat_id, earlier.message_id) == (chat_id, callback_data.message_id):
            await query.answer()
            return
    broadcast = await backend.create_broadcast(
        admin_id, callback_data.audience, chat_id, callback_data.message_id
    )
    log.info("broadcast_confirmed", broadcast_id=broadcast.id, total=broadcast.total)
    await edit_or_answer(
        query,
        i18n.get("admin-broadcast-started", id=str(broadcast.id), total=broadcast.total),
        None,
    )
    broadcasts.kick()


async def broadcast_stop_button(
    query: CallbackQuery,
    callback_data: BroadcastStopCB,
    backend: BackendClient,
    admin_id: int,
    i18n: I18nContext,
) -> None:
    await backend.cancel_broadcast(admin_id, callback_data.broadcast_id)
    await query.answer(i18n.get("admin-broadcast-stopping", id=str(callback_data.broadcast_id)))


def create_router() -> Router:
    """The operators' handlers on a fresh router (one per dispatcher)."""
    router = Router(name="admin")
    router.message.middleware(admin_only)
    router.callback_query.middleware(admin_only)
    router.message.register(admin_command, Command("admin"))
    router.message.register(stats_command, Command("stats"))
    router.message.register(find_command, Command("find"))
    router.message.register(user_command, Command("grant", "revoke", "block", "unblock"))
    router.message.register(broadcast_command, Command("broadcast"))
    router.message.register(broadcast_preview, F.reply_to_message, broadcast_reply)
    router.callback_query.register(menu_button, AdminMenuCB.filter())
    router.callback_query.register(user_button, AdminUserCB.filter())
    router.callback_query.register(broadcast_button, BroadcastCB.filter())
    router.callback_query.register(broadcast_stop_button, BroadcastStopCB.filter())
    return router

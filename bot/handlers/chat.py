"""Text messages: the answer streams into the chat, then arrives formatted and complete."""

import time

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InlineKeyboardMarkup, Message
from aiogram.utils.chat_action import ChatActionSender
from aiogram.utils.keyboard import InlineKeyboardBuilder
from aiogram_i18n import I18nContext
from aiogram_i18n.exceptions import KeyNotFoundError

from bot.config import BotSettings
from bot.handlers.common import unavailable
from bot.keyboards.menus import MenuCB, after_answer
from bot.middlewares.auth import ProfileCache
from bot.services.backend import BackendClient, BackendError
from bot.services.schemas import DoneEvent, ErrorEvent, Profile
from bot.utils.logging import get_logger
from bot.utils.render import Chunk, draft_text, render_answer, render_plain

log = get_logger("bot.chat")

PROVIDER_FAILURES = {
    "provider_timeout",
    "provider_rate_limited",
    "provider_unavailable",
    "provider_error",
    "content_refused",
}


class LiveAnswer:
    """Shows the answer while it grows: a draft (Bot API 9.5+), else an edited message."""

    def __init__(
        self, bot: Bot, chat_id: int, draft_id: int, interval_s: float, use_drafts: bool
    ) -> None:
        self._bot = bot
        self._chat_id = chat_id
        self._draft_id = draft_id
        self._interval = interval_s
        self._use_drafts = use_drafts
        self._last_shown = 0.0
        self._shown = ""
        self.placeholder: Message | None = None

    async def show(self, text: str, *, force: bool = False) -> None:
        """Update the visible text at most once per interval (Telegram's edit budget)."""
        now = time.monotonic()
        if (
            not text.strip()
            or text == self._shown
            or (not force and now - self._last_shown < self._interval)
        ):
            return
        self._last_shown, self._shown = now, text
        if self._use_drafts:
            try:
                await self._bot.send_message_draft(
                    chat_id=self._chat_id, draft_id=self._draft_id, text=text
                )
                return
            except TelegramBadRequest as exc:
                log.info("drafts_unavailable", error=str(exc))
                self._use_drafts = False
        try:
            if self.placeholder is None:
                self.placeholder = await self._bot.send_message(self._chat_id, text)
            else:
                await self.placeholder.edit_text(text)
        except TelegramBadRequest as exc:
            log.info("live_update_skipped", error=str(exc))


async def answer_message(
    message: Message,
    bot: Bot,
    profile: Profile | None,
    backend: BackendClient,
    profiles: ProfileCache,
    settings: BotSettings,
    i18n: I18nContext,
) -> None:
    """Ask the backend for an answer to the user's message and deliver it."""
    assert message.from_user is not None and message.text is not None
    if profile is None:
        await unavailable(message, i18n)
        return
    chat_id = message.chat.id
    live = LiveAnswer(
        bot,
        chat_id,
        draft_id=message.message_id,
        interval_s=settings.stream_interval_s,
        use_drafts=message.chat.type == "private",
    )
    text: list[str] = []
    # The Telegram message identifies the request: a redelivered update is not charged twice.
    client_message_id = f"{chat_id}:{message.message_id}"
    try:
        async with ChatActionSender.typing(bot=bot, chat_id=chat_id):
            async for event in backend.ask(message.from_user.id, message.text, client_message_id):
                if event.type == "start":
                    await live.show(i18n.get("thinking"), force=True)
                elif event.type == "delta":
                    text.append(event.text)
                    await live.show(draft_text("".join(text)))
                elif event.type == "progress":
                    await live.show(i18n.get("researching", seconds=int(event.elapsed_s)))
                elif event.type == "done":
                    profiles.update(
                        profile.telegram_id, free_messages_left=event.free_messages_left
                    )
                    await deliver(message, live, event, profile, i18n)
                elif event.type == "error":
                    profiles.update(
                        profile.telegram_id, free_messages_left=event.free_messages_left
                    )
                    await report_failure(message, live, event, i18n)
    except BackendError as exc:
        if exc.code == "quota_exhausted":
            profiles.update(profile.telegram_id, free_messages_left=0)
            await message.answer(
                i18n.get(
                    "paywall", limit=profile.free_messages_limit, price=settings.vip_price_stars
                ),
                reply_markup=paywall_keyboard(i18n),
            )
            return
        raise


def paywall_keyboard(i18n: I18nContext) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=i18n.get("btn-vip"), callback_data=MenuCB(action="vip"))
    kb.button(text=i18n.get("btn-home"), callback_data=MenuCB(action="home"))
    return kb.as_markup()


async def deliver(
    message: Message, live: LiveAnswer, done: DoneEvent, profile: Profile, i18n: I18nContext
) -> None:
    """Send the final answer: formatted, split under 4096, with sources and reasoning."""
    answer = done.text
    if done.trimmed:
        answer += "\n\n" + i18n.get("trimmed-note")
    reasoning = done.reasoning if profile.show_reasoning else None
    chunks = render_answer(
        answer,
        reasoning=reasoning,
        reasoning_title=i18n.get("reasoning-title"),
        sources=[(s.title, s.url) for s in done.sources],
        sources_title=i18n.get("sources-title"),
    )
    keyboard = after_answer(i18n)
    for index, chunk in enumerate(chunks):
        markup = keyboard if index == len(chunks) - 1 else None
        try:
            await send_chunk(message, live, chunk, markup, first=index == 0)
        except TelegramBadRequest as exc:
            if "entit" not in str(exc).lower() and "parse" not in str(exc).lower():
                raise
            # Telegram rejected the formatting: the user still gets every word, plain.
            log.warning("formatting_rejected", error=str(exc))
            plain = render_plain("".join(c.text for c in chunks[index:]))
            for number, part in enumerate(plain):
                await send_plain(
                    message,
                    live,
                    part,
                    keyboard if number == len(plain) - 1 else None,
                    first=index == 0 and number == 0,
                )
            return


async def send_chunk(
    message: Message,
    live: LiveAnswer,
    chunk: Chunk,
    markup: InlineKeyboardMarkup | None,
    *,
    first: bool,
) -> None:
    if first and live.placeholder is not None:
        await live.placeholder.edit_text(
            chunk.text, entities=chunk.entities, reply_markup=markup, parse_mode=None
        )
        return
    await message.answer(chunk.text, entities=chunk.entities, reply_markup=markup, parse_mode=None)


async def send_plain(
    message: Message,
    live: LiveAnswer,
    text: str,
    markup: InlineKeyboardMarkup | None,
    *,
    first: bool,
) -> None:
    if first and live.placeholder is not None:
        await live.placeholder.edit_text(text, reply_markup=markup, parse_mode=None)
        return
    await message.answer(text, reply_markup=markup, parse_mode=None)


async def report_failure(
    message: Message, live: LiveAnswer, error: ErrorEvent, i18n: I18nContext
) -> None:
    """A clear apology: what went wrong, that nothing was charged, what to do."""
    lines = [error_sentence(error.code, i18n)]
    if error.refunded:
        lines.append(i18n.get("error-refunded"))
    if error.code in PROVIDER_FAILURES:
        lines.append(i18n.get("error-try-another"))
    text = "\n".join(lines)
    if live.placeholder is not None:
        await live.placeholder.edit_text(text, reply_markup=after_answer(i18n))
    else:
        await message.answer(text, reply_markup=after_answer(i18n))


def error_sentence(code: str, i18n: I18nContext, **values: object) -> str:
    """The localized sentence for a backend error code (a generic apology for unknown ones)."""
    try:
        return i18n.get(f"error-{code}", **values)
    except KeyNotFoundError:
        return i18n.get("error-generic")


def create_router() -> Router:
    """The chat handlers on a fresh router (one per dispatcher)."""
    router = Router(name="chat")
    router.message.register(answer_message, F.text)
    return router

"""The one answer path: the answer streams into the chat, then arrives formatted and complete.

Text messages are answered here; voice, photos, documents and /image (bot/handlers/media.py)
go through the same `answer`.
"""

import base64
import contextlib
import math
import time
from dataclasses import dataclass

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
)
from aiogram.utils.chat_action import ChatActionSender
from aiogram.utils.keyboard import InlineKeyboardBuilder
from aiogram_i18n import I18nContext
from aiogram_i18n.exceptions import FluentMessageError, KeyNotFoundError

from bot.config import BotSettings
from bot.handlers.common import unavailable
from bot.keyboards.menus import AskAgainCB, MenuCB, after_answer, ask_again
from bot.middlewares.auth import ProfileCache
from bot.middlewares.intake import intake_done
from bot.services.backend import BackendClient, BackendError
from bot.services.broadcast import Texts
from bot.services.inflight import Taken
from bot.services.schemas import Attachment, DoneEvent, ErrorEvent, Kind, Profile
from bot.utils.logging import get_logger
from bot.utils.render import (
    Chunk,
    draft_text,
    render_answer,
    render_plain,
    render_quote,
    shorten,
)
from bot.utils.telegram_limits import DraftSkipped

log = get_logger("bot.chat")

PROVIDER_FAILURES = {
    "provider_timeout",
    "provider_rate_limited",
    "provider_unavailable",
    "provider_error",
    "content_refused",
    "transcription_failed",
    "image_generation_failed",
}
# Refused before anything was reserved: the user is told when to come back, or what to pick.
REFUSED_FOR_NOW = {"rate_limited", "fair_use_exceeded", "provider_unavailable"}
CAPTION_TEXT_LIMIT = 900  # of Telegram's 1024, leaving room for the cost line


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

    def detach(self) -> Message:
        """Hand over the placeholder; later updates start a new message."""
        assert self.placeholder is not None
        placeholder, self.placeholder, self._shown = self.placeholder, None, ""
        return placeholder

    async def show(self, text: str, *, force: bool = False) -> None:
        """Update the visible text at most once per interval (Telegram's edit budget)."""
        now = time.monotonic()
        if (
            not text.strip()
            or text == self._shown
            or (not force and now - self._last_shown < self._interval)
        ):
            return
        shown_before = self._last_shown, self._shown
        self._last_shown, self._shown = now, text
        if self._use_drafts:
            try:
                await self._bot.send_message_draft(
                    chat_id=self._chat_id, draft_id=self._draft_id, text=text
                )
                return
            except DraftSkipped:
                # Final messages had the budget; this text was not shown, so the next update
                # tries again (a skipped "thinking" is covered by the typing action).
                self._last_shown, self._shown = shown_before
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


@dataclass(frozen=True, slots=True)
class Question:
    """What the backend is asked: the text and, for voice/photo/document, the file."""

    text: str
    kind: Kind = "text"
    attachment: Attachment | None = None


async def answer_message(
    message: Message,
    bot: Bot,
    profile: Profile | None,
    backend: BackendClient,
    profiles: ProfileCache,
    settings: BotSettings,
    i18n: I18nContext,
) -> None:
    """A typed question: answered by the user's model."""
    assert message.text is not None
    if profile is None:
        await unavailable(message, i18n)
        return
    if not message.text.strip():  # Telegram trims messages; a forwarded oddity, then
        await message.answer(i18n.get("empty-question"))
        return
    await answer(message, Question(message.text), bot, profile, backend, profiles, settings, i18n)


async def answer(
    message: Message,
    question: Question,
    bot: Bot,
    profile: Profile,
    backend: BackendClient,
    profiles: ProfileCache,
    settings: BotSettings,
    i18n: I18nContext,
) -> None:
    """Ask the backend about the user's message and deliver the answer as it streams.

    The one answer path of every kind of message. Refusals the user can act on (quota, VIP)
    are shown here; other backend errors propagate to the caller, then the error handler.
    """
    assert message.from_user is not None
    chat_id = message.chat.id
    picture = question.kind == "image"
    live = LiveAnswer(
        bot,
        chat_id,
        draft_id=message.message_id,
        interval_s=settings.stream_interval_s,
        use_drafts=message.chat.type == "private",
    )
    text: list[str] = []
    transcript_shown = False
    # The Telegram message identifies the request: a redelivered update is not charged twice.
    client_message_id = f"{chat_id}:{message.message_id}"
    action = ChatActionSender.upload_photo if picture else ChatActionSender.typing
    events = backend.ask(
        message.from_user.id,
        question.text,
        client_message_id,
        kind=question.kind,
        attachment=question.attachment,
    )
    try:
        async with action(bot=bot, chat_id=chat_id):
            async for event in events:
                if event.type == "start":
                    intake_done()
                    if not picture:
                        waiting = "listening" if question.kind == "voice" else "thinking"
                        await live.show(i18n.get(waiting), force=True)
                elif event.type == "transcript":
                    await show_transcript(message, live, event.text, i18n)
                    transcript_shown = True
                    await live.show(i18n.get("thinking"), force=True)
                elif event.type == "delta":
                    text.append(event.text)
                    if not picture:
                        await live.show(draft_text("".join(text)))
                elif event.type == "progress":
                    await live.show(i18n.get("researching", seconds=int(event.elapsed_s)))
                elif event.type == "done":
                    await profiles.update(
                        profile.telegram_id,
                        free_messages_left=event.free_messages_left,
                        is_vip=event.is_vip,
                    )
                    if event.transcript and not transcript_shown:
                        await show_transcript(message, live, event.transcript, i18n)
                    if event.image is not None:
                        await deliver_picture(message, live, event, i18n)
                    else:
                        await deliver(message, live, event, profile, i18n)
                elif event.type == "error":
                    await profiles.update(
                        profile.telegram_id, free_messages_left=event.free_messages_left
                    )
                    await report_failure(message, live, event, i18n)
    except BackendError as exc:
        if exc.code == "duplicate_request":
            # This very Telegram message again (a redelivery that got past the update claim,
            # a second tap): it was or is being answered once; a second reply would only
            # confuse.
            log.info("duplicate_not_answered", status=exc.details.get("status"))
            return
        if exc.code == "quota_exhausted":
            await paywall(message, question, exc, profile, profiles, settings, i18n)
            return
        if exc.code == "vip_required":
            await message.answer(i18n.get("picture-vip-only"), reply_markup=paywall_keyboard(i18n))
            return
        if exc.code in REFUSED_FOR_NOW:
            log.info("answer_refused", code=exc.code)
            # The model button: another provider may well be answering.
            keyboard = after_answer(i18n) if exc.code == "provider_unavailable" else None
            refusal = error_sentence(exc.code, i18n, **exc.details)
            await message.answer(refusal, reply_markup=keyboard)
            return
        raise


async def paywall(
    message: Message,
    question: Question,
    refusal: BackendError,
    profile: Profile,
    profiles: ProfileCache,
    settings: BotSettings,
    i18n: I18nContext,
) -> None:
    """No free messages left (or too few for a picture): the VIP offer."""
    if question.kind == "image":
        credits = int(refusal.details.get("credits_needed") or 1)
        left = int(refusal.details.get("free_messages_left", profile.free_messages_left))
        text = i18n.get(
            "paywall-picture", credits=credits, left=left, price=settings.vip_price_stars
        )
    else:
        await profiles.update(profile.telegram_id, free_messages_left=0)
        text = i18n.get(
            "paywall", limit=profile.free_messages_limit, price=settings.vip_price_stars
        )
    await message.answer(text, reply_markup=paywall_keyboard(i18n))


async def show_transcript(message: Message, live: LiveAnswer, text: str, i18n: I18nContext) -> None:
    """What the voice note said, as a collapsed quote above the answer."""
    chunk = render_quote(i18n.get("transcript-title"), text)
    if live.placeholder is not None:
        # The placeholder becomes the transcript; the answer grows in a new message below.
        placeholder = live.detach()
        await placeholder.edit_text(chunk.text, entities=chunk.entities, parse_mode=None)
        return
    await message.answer(chunk.text, entities=chunk.entities, parse_mode=None)


async def deliver_picture(
    message: Message, live: LiveAnswer, done: DoneEvent, i18n: I18nContext
) -> None:
    """The generated picture as a photo, its description as the caption."""
    assert done.image is not None
    lines = [f"🎨 {shorten(done.text, CAPTION_TEXT_LIMIT)}" if done.text.strip() else "🎨"]
    if not done.is_vip and done.credits_charged:
        lines.append(
            i18n.get("picture-cost", credits=done.credits_charged, left=done.free_messages_left)
        )
    extension = done.image.media_type.rsplit("/", 1)[-1] or "png"
    picture = BufferedInputFile(
        base64.b64decode(done.image.data), filename=f"pomogator.{extension}"
    )
    await message.answer_photo(
        picture, caption="\n".join(lines), parse_mode=None, reply_markup=after_answer(i18n)
    )
    if live.placeholder is not None:
        await live.placeholder.delete()


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
    if done.document_truncated:
        answer += "\n\n" + i18n.get("document-truncated-note")
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
    key = f"error-{code}"
    shown = readable(values)
    retry_after = values.get("retry_after_s")
    if (
        isinstance(retry_after, int | float)
        and not isinstance(retry_after, bool)
        and math.isfinite(retry_after)
    ):
        shown["wait"] = wait_text(retry_after, i18n)
    if code == "provider_unavailable" and values.get("breaker_open") is True:
        # The backend stopped asking this provider for a while.
        key = "error-breaker-open" if "wait" in shown else "error-breaker-open-soon"
    try:
        return i18n.get(key, **shown)
    except KeyNotFoundError:
        return i18n.get("error-generic")
    except FluentMessageError as exc:  # the backend sent fewer details than the sentence uses
        log.warning("error_sentence_incomplete", code=code, error=str(exc))
        return i18n.get("error-generic")


def readable(values: dict[str, object]) -> dict[str, object]:
    """Error details as a sentence can show them: lists joined, byte counts also in MB."""
    shown: dict[str, object] = {}
    for key, value in values.items():
        if isinstance(value, list | tuple):
            shown[key] = ", ".join(str(item) for item in value)
        elif isinstance(value, int | float | str) and not isinstance(value, bool):
            shown[key] = value
            if key.endswith("_bytes") and isinstance(value, int):
                shown[key.removesuffix("_bytes") + "_mb"] = megabytes(value)
    return shown


def wait_text(seconds: float, i18n: I18nContext) -> str:
    """45 -> "45 s", 150 -> "3 min", 5400 -> "1 h 30 min" (rounded up, never "0 s")."""
    total = max(1, math.ceil(seconds))
    if total < 60:
        return i18n.get("wait-seconds", seconds=total)
    minutes = math.ceil(total / 60)
    if minutes < 60:
        return i18n.get("wait-minutes", minutes=minutes)
    hours, minutes = divmod(minutes, 60)
    if minutes == 0:
        return i18n.get("wait-whole-hours", hours=hours)
    return i18n.get("wait-hours", hours=hours, minutes=minutes)


def megabytes(size: int) -> str:
    """1572864 -> "1.5" (MB as Telegram counts them, 1024 x 1024 bytes)."""
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0")


async def tell_lost(bot: Bot, texts: Texts, taken: Taken) -> None:
    """A message whose answer was lost with its replica: say so, replying to it; a typed
    question gets a button to ask it again."""
    language = taken.language or "en"
    try:
        if taken.question:
            text = texts.get("answer-lost", language)
            markup = ask_again(texts.get("btn-ask-again", language))
        else:
            text, markup = texts.get("answer-lost-send-again", language), None
        await bot.send_message(
            taken.chat_id,
            text,
            reply_parameters=ReplyParameters(
                message_id=taken.message_id, allow_sending_without_reply=True
            ),
            reply_markup=markup,
        )
    except TelegramAPIError as exc:  # blocked the bot meanwhile, chat gone
        log.info("answer_lost_not_told", chat_id=taken.chat_id, error=type(exc).__name__)


async def ask_again_pressed(
    query: CallbackQuery,
    bot: Bot,
    profile: Profile | None,
    backend: BackendClient,
    profiles: ProfileCache,
    settings: BotSettings,
    i18n: I18nContext,
) -> None:
    """The question the notice replies to, asked once more (as a new message: the lost one
    was refunded, and pressing twice asks once)."""
    notice = query.message if isinstance(query.message, Message) else None
    question = notice.reply_to_message if notice is not None else None
    if (
        notice is None
        or question is None
        or question.from_user is None
        or question.from_user.id != query.from_user.id
        or not (question.text or "").strip()
    ):
        await query.answer(i18n.get("button-outdated"), show_alert=True)
        return
    await query.answer()
    await edit_markup_away(notice)
    # Under the notice's id: the backend answers each client message id once.
    again = question.model_copy(update={"message_id": notice.message_id}).as_(bot)
    await answer_message(again, bot, profile, backend, profiles, settings, i18n)


async def edit_markup_away(message: Message) -> None:
    """The button goes once pressed (a notice older than 48 hours keeps it: no harm)."""
    with contextlib.suppress(TelegramAPIError):
        await message.edit_reply_markup(reply_markup=None)


def create_router() -> Router:
    """The chat handlers on a fresh router (one per dispatcher)."""
    router = Router(name="chat")
    router.message.register(answer_message, F.text)
    router.callback_query.register(ask_again_pressed, AskAgainCB.filter())
    return router

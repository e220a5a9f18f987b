"""Sending broadcasts: copies of an admin's message to an audience, paced and resumable.

The backend keeps each broadcast's cursor (the last recipient handled, recipients in Telegram id
order) and leases its next batch to one runner, so a restarted bot, or another replica, goes on
from the cursor and nobody is sent the message twice. A batch is reported as soon as it is sent;
a clean stop finishes the batch in hand first, so only a crash can repeat a message (at most the
one in flight), after the lease runs out.
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.types import InlineKeyboardMarkup, Message
from aiolimiter import AsyncLimiter

from bot.keyboards.admin import broadcast_progress_keyboard
from bot.services.backend import BackendClient, BackendError
from bot.services.schemas import BroadcastInfo
from bot.utils.logging import get_logger

log = get_logger("bot.broadcast")

BATCH_SIZE = 25  # recipients leased, sent and reported at a time
LEASE_S = 120  # how long a crashed runner's batch stays out of others' reach
POLL_INTERVAL_S = 60.0  # how often running broadcasts are looked for (other replicas' too)


class Limiter(Protocol):
    async def acquire(self, amount: float = 1) -> None: ...


class Texts(Protocol):
    def get(self, key: str, locale: str | None = None, /, **kwargs: Any) -> str: ...


def pacing(per_second: float) -> Limiter:
    """One copy every 1/per_second seconds: no burst, so the answers' share stays free."""
    return AsyncLimiter(1, 1 / per_second)


@dataclass
class Tally:
    """What one batch did, until it is reported."""

    cursor: int = 0
    delivered: int = 0
    blocked: int = 0
    failed: int = 0
    blocked_ids: list[int] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.delivered + self.blocked + self.failed


class BroadcastRunner:
    """Sends the running broadcasts one after another, in the background of the bot."""

    def __init__(
        self,
        backend: BackendClient,
        admin_ids: frozenset[int],
        *,
        per_second: float = 20.0,
        batch_size: int = BATCH_SIZE,
        lease_s: int = LEASE_S,
        poll_interval_s: float = POLL_INTERVAL_S,
        progress_interval_s: float = 3.0,
        limiter: Limiter | None = None,
        on_outcome: Callable[[str], None] | None = None,
    ) -> None:
        self._backend = backend
        self._admins = admin_ids
        self._batch_size = batch_size
        self._lease_s = lease_s
        self._poll_interval = poll_interval_s
        self._progress_interval = progress_interval_s
        self._limiter: Limiter = limiter or pacing(per_second)
        self._on_outcome = on_outcome
        self._bot: Bot | None = None
        self._texts: Texts | None = None
        self._languages: dict[int, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self, bot: Bot, dispatcher: Any = None) -> None:
        """Begin (or resume) sending in the background; a dispatcher start-up handler."""
        if not self._admins or self.running:
            return
        self._bot = bot
        if dispatcher is not None:
            i18n = dispatcher.get("i18n_middleware")
            self._texts = i18n.core if i18n is not None else None
            metrics = dispatcher.get("metrics")
            counter = getattr(metrics, "broadcast_messages", None)
            if self._on_outcome is None and counter is not None:
                self._on_outcome = lambda outcome: counter.labels(outcome=outcome).inc()
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="broadcasts")

    def kick(self) -> None:
        """Look for running broadcasts now (one was just confirmed)."""
        self._wake.set()

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the batch in hand, report it, and stop (cancelled after `timeout_s`)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        self._wake.set()
        try:
            await asyncio.wait_for(task, timeout_s)
        except TimeoutError:
            log.warning("broadcast_stop_timeout")
        except Exception as exc:  # already logged by the loop; stopping must not fail shutdown
            log.warning("broadcast_stop_failed", error=type(exc).__name__)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            delay = self._poll_interval
            try:
                delay = min(delay, await self.resume_all())
            except BackendError as exc:
                log.warning("broadcast_poll_failed", code=exc.code)
            if self._stopping.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def resume_all(self) -> float:
        """Send every running broadcast from its cursor; seconds until a leased one is free."""
        retry = self._poll_interval
        for broadcast in await self._backend.broadcasts(self._any_admin(), status="running"):
            if self._stopping.is_set():
                break
            leased = await self.run_broadcast(broadcast)
            if leased is not None:
                retry = min(retry, leased)
        return retry

    async def run_broadcast(self, broadcast: BroadcastInfo) -> float | None:
        """Send one broadcast until done, canceled or stopping; None, or seconds until its
        lease (another runner's, or a crashed one's) runs out."""
        admin = self._acting_admin(broadcast)
        progress = await self._progress(broadcast)
        while not self._stopping.is_set():
            try:
                batch = await self._backend.broadcast_batch(
                    admin, broadcast.id, self._batch_size, self._lease_s
                )
            except BackendError as exc:
                if exc.code != "broadcast_leased":
                    raise
                wait = exc.details.get("retry_after_s")
                log.info("broadcast_leased", broadcast_id=broadcast.id, retry_after_s=wait)
                return float(wait) if isinstance(wait, int | float) else float(self._lease_s)
            broadcast = batch.broadcast
            if broadcast.status == "running" and not batch.recipients:
                broadcast = await self._backend.finish_broadcast(admin, broadcast.id)
            if broadcast.status != "running":
                await progress.final(broadcast)
                return None
            broadcast = await self._send(admin, broadcast, batch.recipients)
            await progress.show(broadcast)
        return None

    async def _send(
        self, admin: int, broadcast: BroadcastInfo, recipients: list[int]
    ) -> BroadcastInfo:
        """Copy the message to a batch of recipients, then report what happened to each."""
        bot = self._require_bot()
        tally = Tally()
        try:
            for chat_id in recipients:
                await self._limiter.acquire()
                outcome = await self._copy(bot, broadcast, chat_id)
                if outcome == "delivered":
                    tally.delivered += 1
                elif outcome == "blocked":
                    tally.blocked += 1
                    tally.blocked_ids.append(chat_id)
                else:
                    tally.failed += 1
                tally.cursor = chat_id
                if self._on_outcome is not None:
                    self._on_outcome(outcome)
        except asyncio.CancelledError:
            # Stopped hard: keep what was sent, so a resumed run repeats at most the copy
            # that was in flight.
            if tally.handled:
                await asyncio.shield(self._report(admin, broadcast, tally))
            raise
        return await self._report(admin, broadcast, tally)

    async def _copy(self, bot: Bot, broadcast: BroadcastInfo, chat_id: int) -> str:
        try:
            await bot.copy_message(
                chat_id=chat_id,
                from_chat_id=broadcast.from_chat_id,
                message_id=broadcast.message_id,
            )
        except TelegramForbiddenError:
            return "blocked"  # they blocked the bot, or deleted their account
        except TelegramAPIError as exc:
            # Flood control beyond the session's retries, a network failure, a bad request.
            log.warning(
                "broadcast_copy_failed", broadcast_id=broadcast.id, error=type(exc).__name__
            )
            return "failed"
        return "delivered"

    async def _report(self, admin: int, broadcast: BroadcastInfo, tally: Tally) -> BroadcastInfo:
        return await self._backend.broadcast_progress(
            admin,
            broadcast.id,
            cursor=tally.cursor,
            delivered=tally.delivered,
            blocked=tally.blocked,
            failed=tally.failed,
            blocked_ids=tally.blocked_ids,
        )

    def _any_admin(self) -> int:
        return min(self._admins)

    def _acting_admin(self, broadcast: BroadcastInfo) -> int:
        # The backend accepts only current admins; its author may have left ADMIN_IDS since.
        if broadcast.admin_telegram_id in self._admins:
            return broadcast.admin_telegram_id
        return self._any_admin()

    def _require_bot(self) -> Bot:
        if self._bot is None:
            raise RuntimeError("the broadcast runner was not started")
        return self._bot

    def bind(self, bot: Bot, texts: Texts) -> None:
        """Use this bot and these translations (start() takes them from the dispatcher)."""
        self._bot = bot
        self._texts = texts

    async def _progress(self, broadcast: BroadcastInfo) -> "Progress":
        admin = broadcast.admin_telegram_id
        if admin not in self._languages:
            try:
                self._languages[admin] = (await self._backend.profile(admin)).language
            except BackendError:
                self._languages[admin] = "en"
        if self._texts is None:
            raise RuntimeError("the broadcast runner has no translations")
        return Progress(
            self._require_bot(), self._texts, admin, self._languages[admin], self._progress_interval
        )


class Progress:
    """The message in the admin's chat that follows a broadcast (sent, then edited)."""

    def __init__(
        self, bot: Bot, texts: Texts, chat_id: int, locale: str, interval_s: float
    ) -> None:
        self._bot = bot
        self._texts = texts
        self._chat_id = chat_id
        self._locale = locale
        self._interval = interval_s
        self._message_id: int | None = None
        self._shown_at: float | None = None

    def _text(self, key: str, broadcast: BroadcastInfo | None = None) -> str:
        return self._texts.get(key, self._locale, **(figures(broadcast) if broadcast else {}))

    async def show(self, broadcast: BroadcastInfo) -> None:
        """The figures so far, at most every `interval_s` (Telegram limits edits too)."""
        if self._shown_at is not None and time.monotonic() - self._shown_at < self._interval:
            return
        keyboard = broadcast_progress_keyboard(self._text("admin-btn-broadcast-stop"), broadcast)
        await self._put(self._text("admin-broadcast-progress", broadcast), keyboard)

    async def final(self, broadcast: BroadcastInfo) -> None:
        """The last figures in place (without the stop button), and the report below."""
        if self._message_id is not None:
            await self._put(self._text("admin-broadcast-progress", broadcast), None)
        key = "admin-broadcast-done" if broadcast.status == "done" else "admin-broadcast-canceled"
        await self._guarded(self._bot.send_message(self._chat_id, self._text(key, broadcast)))
        log.info(
            "broadcast_reported",
            broadcast_id=broadcast.id,
            status=broadcast.status,
            delivered=broadcast.delivered,
            blocked=broadcast.blocked,
            failed=broadcast.failed,
        )

    async def _put(self, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
        self._shown_at = time.monotonic()
        if self._message_id is None:
            sent = await self._guarded(
                self._bot.send_message(self._chat_id, text, reply_markup=keyboard)
            )
            self._message_id = sent.message_id if isinstance(sent, Message) else None
        else:
            await self._guarded(
                self._bot.edit_message_text(
                    text=text,
                    chat_id=self._chat_id,
                    message_id=self._message_id,
                    reply_markup=keyboard,
                )
            )

    @staticmethod
    async def _guarded(call: Awaitable[Any]) -> Any:
        # The admin's view of it must never stop the broadcast itself.
        try:
            return await call
        except TelegramBadRequest as exc:
            if "not modified" not in exc.message:
                log.warning("broadcast_progress_failed", error=exc.message)
        except TelegramAPIError as exc:
            log.warning("broadcast_progress_failed", error=type(exc).__name__)
        return None


def figures(broadcast: BroadcastInfo) -> dict[str, object]:
    """The numbers the progress and final texts show."""
    return {
        "id": str(broadcast.id),
        "handled": broadcast.delivered + broadcast.blocked + broadcast.failed,
        "total": broadcast.total,
        "delivered": broadcast.delivered,
        "blocked": broadcast.blocked,
        "failed": broadcast.failed,
    }

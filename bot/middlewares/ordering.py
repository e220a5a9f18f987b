"""One answer at a time per user; later messages wait their turn, in order, up to a bound.

Within a replica, a user's updates queue in arrival order (an asyncio.Lock per user). Across
replicas, the one at the head of that queue also takes the user's turn in Redis (`SharedTurns`)
before its work starts, so two replicas never answer one user at once.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject, Update
from redis.asyncio import Redis
from redis.exceptions import LockError

from bot.services.inflight import InFlightAnswers, Taken
from bot.services.redis_health import REDIS_ERRORS, RedisCircuit
from bot.utils.i18n import language_of
from bot.utils.logging import get_logger

log = get_logger("bot.ordering")


class SharedTurns:
    """A user's turn across every replica: redis-py's `Lock` (a key holding this holder's
    random token, set with NX and an expiry; only the token's holder extends or frees it).

    The key expires `lease_s` after it was last renewed; the holder renews it every third of
    that while its work runs, so a replica that dies (SIGKILL) blocks the user's next message
    for at most `lease_s`. While Redis cannot be reached, each replica keeps only its own
    order (logged once, `redis_unavailable`): the backend still charges each message once.
    """

    def __init__(
        self, redis: Redis, prefix: str = "pomogator:", lease_s: float = 30.0, poll_s: float = 0.05
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}turn:"
        self._lease = lease_s
        self._poll = poll_s
        self._circuit = RedisCircuit("user turns")

    @contextlib.asynccontextmanager
    async def hold(self, user_id: int) -> AsyncIterator[None]:
        if not self._circuit.usable():
            yield
            return
        lock = self._redis.lock(
            f"{self._prefix}{user_id}", timeout=self._lease, sleep=self._poll, thread_local=False
        )
        try:
            await lock.acquire()
        except REDIS_ERRORS as exc:
            self._circuit.failed(exc)
            yield
            return
        self._circuit.succeeded()
        keeper = asyncio.create_task(self._renew(lock, user_id))
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            try:
                await lock.release()
            except LockError:  # it expired (this process stalled past the lease)
                log.warning("user_turn_lost", user_id=user_id)
            except REDIS_ERRORS as exc:  # it expires by itself within the lease
                self._circuit.failed(exc)

    async def _renew(self, lock: Any, user_id: int) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                await lock.reacquire()
            except LockError:
                log.warning("user_turn_lost", user_id=user_id)
                return
            except REDIS_ERRORS as exc:
                self._circuit.failed(exc)


class UserQueue:
    """Per-user FIFO locks (asyncio.Lock wakes waiters in arrival order), and with `shared`
    the user's turn across replicas."""

    def __init__(self, max_waiting: int = 5, shared: SharedTurns | None = None) -> None:
        self.max_waiting = max_waiting
        self._shared = shared
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    def busy_beyond_bound(self, user_id: int) -> bool:
        return self._waiting.get(user_id, 0) > self.max_waiting

    async def run(self, user_id: int, work: Callable[[], Awaitable[Any]]) -> Any:
        lock = self._locks.setdefault(user_id, asyncio.Lock())
        self._waiting[user_id] = self._waiting.get(user_id, 0) + 1
        try:
            async with lock:
                if self._shared is None:
                    return await work()
                async with self._shared.hold(user_id):
                    return await work()
        finally:
            self._waiting[user_id] -= 1
            if self._waiting[user_id] == 0:
                # Nobody holds or waits for it: forget it so memory stays bounded.
                del self._waiting[user_id]
                self._locks.pop(user_id, None)

    def in_flight(self) -> int:
        return sum(1 for lock in self._locks.values() if lock.locked())


def taken(message: Message) -> Taken:
    text = message.text or ""
    return Taken(
        chat_id=message.chat.id,
        message_id=message.message_id,
        language=language_of(None, message.from_user),
        question=bool(text.strip()) and not text.startswith("/"),
    )


class OrderingMiddleware(BaseMiddleware):
    """Serialise a user's messages; past the bound the user is asked to wait.

    Registered as the first update middleware: the place in the queue is taken before any
    await, so messages are answered in the order Telegram delivered them. Button presses whose
    callback data starts with one of `answering_prefixes` start an answer too (switch model
    and answer this photo), so they queue like messages; other buttons never wait.
    """

    def __init__(
        self,
        queue: UserQueue,
        on_busy: Callable[[Message], Awaitable[Any]],
        answering_prefixes: tuple[str, ...] = (),
        inflight: InFlightAnswers | None = None,
    ) -> None:
        self._queue = queue
        self._on_busy = on_busy
        self._answering = answering_prefixes
        self._inflight = inflight

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        query = event.callback_query if isinstance(event, Update) else None
        if query is not None and (query.data or "").split(":")[0] in self._answering:
            return await self._queue.run(query.from_user.id, lambda: handler(event, data))
        message = event.message if isinstance(event, Update) else None
        if message is None or message.from_user is None:
            return await handler(event, data)
        if message.successful_payment is not None or message.refunded_payment is not None:
            # Money is never turned away or kept waiting behind a long answer: it is
            # recorded at once (and acknowledged to Telegram only then).
            return await handler(event, data)
        user_id = message.from_user.id
        if self._queue.busy_beyond_bound(user_id):
            log.info("user_busy", user_id=user_id)
            return await self._on_busy(message)
        if self._inflight is None:
            return await self._queue.run(user_id, lambda: handler(event, data))
        # From now until it is answered: if this replica dies meanwhile, another tells the user.
        async with self._inflight.track(taken(message)):
            return await self._queue.run(user_id, lambda: handler(event, data))

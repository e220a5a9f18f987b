"""Messages a replica has taken and not yet answered, kept in Redis so that none is forgotten.

A replica killed outright (SIGKILL, a lost node) answers nothing more, and Telegram will not
deliver the message again: it got its 200 long ago. So each message a user sends is recorded
from the moment it is taken until its reply is sent: a member of one sorted set, scored by a
lease that its replica renews while it works. Every replica looks for leases that ran out and
tells those users, replying to their message, that the answer was lost, with a button to ask
again. Removing a member (ZREM) succeeds for one caller only, so each user is told once.

The credit the lost answer took comes back by itself: the backend refunds an answer whose bot
went away mid-stream, and its sweeper one that was left pending (STALE_RESERVATION_S).

Without Redis (one replica) nothing is recorded; while Redis is down, neither.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import cast

from redis.asyncio import Redis

from bot.services.redis_health import REDIS_ERRORS, RedisCircuit
from bot.utils.logging import get_logger

log = get_logger("bot.inflight")


@dataclass(frozen=True)
class Taken:
    """A user's message, as much as it takes to tell them it was lost."""

    chat_id: int
    message_id: int
    language: str | None
    question: bool  # typed text, not a command: it can be asked again with one tap

    def member(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)


class InFlightAnswers:
    def __init__(
        self,
        redis: Redis,
        prefix: str = "pomogator:",
        lease_s: float = 30.0,
        on_lost: Callable[[Taken], Awaitable[object]] | None = None,
    ) -> None:
        self._redis = redis
        self._key = f"{prefix}inflight"
        self._lease = lease_s
        self._on_lost = on_lost
        self._held: dict[str, int] = {}  # member -> how many holds (the same message twice)
        self._circuit = RedisCircuit("answers in flight")
        self._renewer: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None

    @property
    def lease_s(self) -> float:
        return self._lease

    @contextlib.asynccontextmanager
    async def track(self, taken: Taken) -> AsyncIterator[None]:
        """Recorded while the block runs; entering never waits (the write goes in the
        background), so a user's place in the queue is taken before any await."""
        member = taken.member()
        self._held[member] = self._held.get(member, 0) + 1
        written = asyncio.create_task(self._write({member: time.time() + self._lease}))
        handed_over = False
        try:
            yield
        except asyncio.CancelledError:
            # Stopped before it was done (a drain that ran out of time): the lease is ended
            # at once rather than removed, so the next look for lost answers tells the user.
            handed_over = True
            raise
        finally:
            self._held[member] -= 1
            if not self._held[member]:
                del self._held[member]
                await written
                if handed_over:
                    await self._write({member: 0.0})
                else:
                    await self._remove(member)

    async def _write(self, leases: dict[str, float], *, only_present: bool = False) -> None:
        if not leases or not self._circuit.usable():
            return
        try:
            await self._redis.zadd(self._key, leases, xx=only_present)
        except REDIS_ERRORS as exc:
            self._circuit.failed(exc)
        else:
            self._circuit.succeeded()

    async def _remove(self, member: str) -> None:
        if not self._circuit.usable():
            return
        try:
            await self._redis.zrem(self._key, member)
        except REDIS_ERRORS as exc:
            self._circuit.failed(exc)

    async def renew(self) -> None:
        """Push the lease of every message this replica holds forward."""
        deadline = time.time() + self._lease
        # Only members still held, and only where Redis still has them: an answer that
        # finishes while this write waits for a connection has its ZREM sent first, and a
        # plain ZADD would bring it back for another replica to report as lost.
        await self._write(dict.fromkeys(self._held, deadline), only_present=True)

    async def lost(self, limit: int = 100) -> list[Taken]:
        """Messages whose replica stopped renewing them, each returned to one caller only."""
        if not self._circuit.usable():
            return []
        try:
            members = cast(
                list[bytes],
                await self._redis.zrangebyscore(self._key, "-inf", time.time(), start=0, num=limit),
            )
            if not members:
                return []
            async with self._redis.pipeline(transaction=False) as pipe:
                for member in members:
                    pipe.zrem(self._key, member)
                removed = await pipe.execute()
        except REDIS_ERRORS as exc:
            self._circuit.failed(exc)
            return []
        self._circuit.succeeded()
        return [
            Taken(**json.loads(member))
            for member, mine in zip(members, removed, strict=True)
            if mine
        ]

    async def start(self, on_lost: Callable[[Taken], Awaitable[object]] | None = None) -> None:
        """Renew this replica's leases and look for lost ones, every third of the lease."""
        if on_lost is not None:
            self._on_lost = on_lost
        self._renewer = asyncio.create_task(self._every(self.renew))
        self._watcher = asyncio.create_task(self._every(self._tell_lost))

    async def stop(self) -> None:
        for task in (self._renewer, self._watcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _every(self, step: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                await step()
            except Exception:  # one bad round must not stop the next
                log.exception("inflight_step_failed")

    async def _tell_lost(self) -> None:
        for taken in await self.lost():
            log.warning("answer_lost", chat_id=taken.chat_id, message_id=taken.message_id)
            if self._on_lost is not None:
                await self._on_lost(taken)

"""At most so many updates in their first steps at once; the rest wait their turn, idle.

An update's first steps (the claim, the profile, the backend's reservation) are all CPU and
short waits. Let every update that arrives in an overload start them at once and the event
loop shares itself between thousands of half-done updates: each step waits behind all of
them, claims and lookups time out, and answers per second fell to a fifth of what the bot
could do (`make bench`, ceiling past saturation). With a bound, later updates wait in
arrival order without costing anything and those admitted finish at full speed. The slot is
given back once the backend has started the answer (`intake_done`), so answers that take
minutes never hold one, or when the update ends.
"""

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject

_release: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "intake_release", default=None
)


def intake_done() -> None:
    """This update's first steps are over: its slot goes to the next one waiting."""
    release = _release.get()
    if release is not None:
        release()


class IntakeGate(BaseMiddleware):
    """Bounds the updates in their first steps to `slots` at once."""

    def __init__(self, slots: int) -> None:
        self._slots = asyncio.Semaphore(slots)
        self.limit = slots

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        await self._slots.acquire()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self._slots.release()

        token = _release.set(release)
        try:
            return await handler(event, data)
        finally:
            _release.reset(token)
            release()

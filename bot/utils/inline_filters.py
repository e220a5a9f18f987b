"""Runs the routers' synchronous filters on the event loop instead of a worker thread.

aiogram awaits a filter that is not a coroutine function through `asyncio.to_thread`, and
magic filters (`F.text`, `F.data.startswith(...)`) are such filters: every check of every
handler on the way to the one that matches paid a hop to the thread pool and back. Ours are
attribute and string tests that take microseconds, far less than the hop (under load the
thread pool and its wake-ups were about a sixth of the bot's CPU: `make bench`, py-spy).
"""

import functools
from collections.abc import Callable, Iterator
from typing import Any

from aiogram import Router
from aiogram.dispatcher.event.handler import FilterObject


def _inline(check: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(check)
    async def run(*args: Any, **kwargs: Any) -> Any:
        return check(*args, **kwargs)

    return run


def filters_of(router: Router) -> Iterator[FilterObject]:
    """Every filter of the router's observers and handlers (not its sub-routers')."""
    for observer in router.observers.values():
        yield from observer._handler.filters or ()
        for handler in observer.handlers:
            yield from handler.filters or ()


def run_filters_inline(root: Router) -> int:
    """Make every synchronous filter of `root` and its sub-routers run inline; how many."""
    changed = 0
    for router in root.chain_tail:
        for event_filter in filters_of(router):
            if not event_filter.awaitable:
                # The accepted parameters were read from the original callback: kept as they are.
                event_filter.callback = _inline(event_filter.callback)
                event_filter.awaitable = True
                changed += 1
    return changed

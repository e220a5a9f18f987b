"""Keeps aiogram's parsed-response models alive for the life of the process.

aiogram parses every Bot API reply as `Response[method.__returning__]`. pydantic caches a
parametrized generic model only weakly, so once nothing else holds it the garbage collector
drops it and the next call builds the model class again: under load that was about a sixth
of the bot's CPU (`make bench`, py-spy). Holding one of each makes every lookup a cache hit.
"""

import functools
from typing import Any

from aiogram import methods
from aiogram.methods.base import Response, TelegramMethod


@functools.cache
def pin_response_models() -> dict[type[TelegramMethod[Any]], type[Response[Any]]]:
    """The response model of every Bot API method, built once and held."""
    pinned: dict[type[TelegramMethod[Any]], type[Response[Any]]] = {}
    for name in methods.__all__:
        method = getattr(methods, name)
        if (
            isinstance(method, type)
            and issubclass(method, TelegramMethod)
            and method is not TelegramMethod
            and hasattr(method, "__returning__")
        ):
            pinned[method] = Response[method.__returning__]  # type: ignore[name-defined]
    return pinned

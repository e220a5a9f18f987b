"""Keeps aiogram's parsed-response models alive for the life of the process.

aiogram parses every Bot API reply as `Response[method.__returning__]`. pydantic caches a
parametrized generic model only weakly, so once nothing else holds it the garbage collector
drops it and the next call builds the model class again: under load that was about a sixth
of the bot's CPU (`make bench`, py-spy). Holding each one makes every later lookup a cache
hit. Each compiles the schemas of the types it returns (see `bot.utils.lazy_types`), so only
the methods the bot calls are built: those below at start-up (about 60 ms for the first
returning a `Message`, nothing much after), any other on its first call.
"""

from collections.abc import Iterable
from typing import Any

from aiogram import Bot, methods
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods.base import Response, TelegramMethod, TelegramType

# What the bot's code calls (`bot.tests.test_response_models` keeps this list complete).
CALLED_METHODS: tuple[type[TelegramMethod[Any]], ...] = (
    methods.AnswerCallbackQuery,
    methods.AnswerPreCheckoutQuery,
    methods.CopyMessage,
    methods.CreateInvoiceLink,
    methods.DeleteWebhook,
    methods.EditMessageReplyMarkup,
    methods.EditMessageText,
    methods.EditUserStarSubscription,
    methods.GetMe,
    methods.RefundStarPayment,
    methods.SendChatAction,
    methods.SendInvoice,
    methods.SendMessage,
    methods.SendMessageDraft,
    methods.SendPhoto,
    methods.SetMyCommands,
    methods.SetWebhook,
)


class HoldResponseModels(BaseRequestMiddleware):
    """A session middleware holding the response model of every method called through it."""

    def __init__(self, warm: Iterable[type[TelegramMethod[Any]]] = CALLED_METHODS) -> None:
        self.held: dict[type[TelegramMethod[Any]], type[Response[Any]]] = {}
        for kind in warm:
            self._hold(kind)

    def _hold(self, kind: type[TelegramMethod[Any]]) -> None:
        if kind not in self.held:
            kind.model_rebuild()  # the method's own model, built on first use too
            self.held[kind] = Response[kind.__returning__]  # type: ignore[name-defined]

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        self._hold(type(method))
        return await make_request(bot, method)

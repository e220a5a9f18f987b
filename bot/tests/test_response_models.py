"""aiogram's response models survive garbage collection instead of being rebuilt per call."""

import gc
import re
import weakref
from pathlib import Path
from typing import Any

from aiogram import Bot, methods
from aiogram.methods.base import Response, TelegramMethod

from bot.main import create_bot
from bot.tests.conftest import bot_settings
from bot.utils.response_models import CALLED_METHODS, HoldResponseModels

ROOT = Path(__file__).resolve().parents[2]


async def _answered(_bot: Bot, _method: TelegramMethod[Any]) -> Response[Any]:
    return Response[bool](ok=True, result=True)


async def test_a_called_method_keeps_its_response_model() -> None:
    hold = HoldResponseModels(warm=())
    await hold(_answered, None, methods.SendChatAction(chat_id=1, action="typing"))  # type: ignore[arg-type]
    assert hold.held == {methods.SendChatAction: Response[methods.SendChatAction.__returning__]}


async def test_response_model_outlives_a_garbage_collection() -> None:
    hold = HoldResponseModels(warm=())
    await hold(_answered, None, methods.EditMessageText(text="x", chat_id=1, message_id=2))  # type: ignore[arg-type]
    model = weakref.ref(Response[methods.EditMessageText.__returning__])
    gc.collect()
    assert model() is not None


async def test_the_bot_holds_response_models_in_its_session() -> None:
    bot = create_bot(bot_settings())
    try:
        assert any(isinstance(m, HoldResponseModels) for m in bot.session.middleware[:])
    finally:
        await bot.session.close()


SHORTCUTS = {
    "message.answer": methods.SendMessage,
    "message.answer_photo": methods.SendPhoto,
    "message.edit_text": methods.EditMessageText,
    "message.edit_reply_markup": methods.EditMessageReplyMarkup,
    "query.answer": methods.AnswerCallbackQuery,
    "ChatActionSender": methods.SendChatAction,
}


def test_every_method_the_bot_calls_is_built_at_start_up() -> None:
    called: set[type[TelegramMethod[Any]]] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        if "tests" in path.parts:
            continue
        source = path.read_text()
        for name in re.findall(r"\b_?bot\.([a-z_]+)\(", source):
            kind = getattr(methods, "".join(part.title() for part in name.split("_")), None)
            if isinstance(kind, type) and issubclass(kind, TelegramMethod):
                called.add(kind)
        called.update(kind for call, kind in SHORTCUTS.items() if call in source)
    assert methods.SendMessageDraft in called  # the scan finds calls
    assert sorted(k.__name__ for k in called - set(CALLED_METHODS)) == []

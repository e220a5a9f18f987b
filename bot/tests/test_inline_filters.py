"""The routers' synchronous filters run on the event loop, not through a worker thread."""

import threading

from aiogram import Dispatcher, F, Router
from aiogram.types import Message, Update

from bot.main import create_bot, create_dispatcher
from bot.tests.conftest import bot_settings
from bot.tests.telegram import RecordingSession
from bot.utils.inline_filters import filters_of, run_filters_inline


def test_no_filter_of_the_bot_is_left_to_a_worker_thread():
    dp = create_dispatcher(bot_settings(), backend=None)  # type: ignore[arg-type]
    filters = [f for router in dp.chain_tail for f in filters_of(router)]
    assert any(f.magic is not None for f in filters)  # F.text and friends are there
    assert all(f.awaitable for f in filters)


async def test_a_synchronous_filter_still_filters_and_runs_on_the_loop_thread():
    seen_on: list[int] = []
    answered: list[str] = []

    def short(message: Message) -> bool:
        seen_on.append(threading.get_ident())
        return len(message.text or "") < 5

    router = Router()

    @router.message(F.text, short)
    async def reply(message: Message) -> None:
        answered.append(message.text or "")

    dp = Dispatcher()
    dp.include_router(router)
    assert run_filters_inline(dp) == 2

    bot = create_bot(bot_settings(), session=RecordingSession())  # type: ignore[arg-type]
    for update_id, text in enumerate(["hi", "a long one"]):
        update = Update.model_validate(
            {
                "update_id": update_id,
                "message": {
                    "message_id": update_id,
                    "date": 0,
                    "chat": {"id": 1, "type": "private"},
                    "from": {"id": 1, "is_bot": False, "first_name": "A"},
                    "text": text,
                },
            }
        )
        await dp.feed_update(bot, update)
    assert answered == ["hi"]
    assert seen_on == [threading.get_ident()] * 2

"""aiogram's types are built on first use, and every one of them still builds."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip()


def test_importing_the_bot_builds_no_aiogram_type() -> None:
    out = _run(
        """
        import bot.main
        from aiogram import types
        kinds = [getattr(types, name) for name in types.__all__]
        print(sum(getattr(kind, "__pydantic_complete__", False) for kind in kinds))
        """
    )
    assert out == "0"


def test_plain_aiogram_builds_its_types_at_import() -> None:
    # What the deferral saves: without it, importing aiogram compiles every type.
    out = _run(
        """
        from aiogram import types
        print(types.Message.__pydantic_complete__, types.ChatFullInfo.__pydantic_complete__)
        """
    )
    assert out == "True True"


def test_every_type_and_every_response_builds_on_first_use() -> None:
    out = _run(
        """
        import bot.main
        from aiogram import methods, types
        from aiogram.methods.base import Response, TelegramMethod
        from pydantic import BaseModel
        built = 0
        for name in types.__all__:
            kind = getattr(types, name)
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                kind.model_rebuild(raise_errors=True)
                assert kind.__pydantic_complete__, name
                built += 1
        for name in methods.__all__:
            kind = getattr(methods, name)
            if (
                isinstance(kind, type)
                and issubclass(kind, TelegramMethod)
                and kind is not TelegramMethod
                and hasattr(kind, "__returning__")
            ):
                assert Response[kind.__returning__].__pydantic_complete__, name
                built += 1
        print(built)
        """
    )
    assert int(out) > 500


def test_an_update_with_nested_types_validates_after_deferral() -> None:
    out = _run(
        """
        import bot.main
        from aiogram.types import Update
        update = Update.model_validate({
            "update_id": 1,
            "message": {
                "message_id": 7, "date": 1700000000, "text": "hi /start",
                "chat": {"id": 5, "type": "private"},
                "from": {"id": 5, "is_bot": False, "first_name": "A", "language_code": "ru"},
                "entities": [{"type": "bot_command", "offset": 3, "length": 6}],
                "reply_to_message": {
                    "message_id": 6, "date": 1700000000, "chat": {"id": 5, "type": "private"},
                    "photo": [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}],
                },
            },
        })
        m = update.message
        print(m.entities[0].type, m.reply_to_message.photo[0].file_id, m.from_user.language_code)
        """
    )
    assert out == "bot_command f ru"

"""A recording stand-in for the Bot API session, and real update JSON for the dispatcher."""

import itertools
import secrets
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.methods import (
    EditMessageText,
    SendMessage,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import Chat, Message, User

BOT_USER = User(id=4242, is_bot=True, first_name="Pomogator", username="pomogator_bot")
TOKEN = "4242:TEST-token-for-the-recording-session"


@dataclass
class Call:
    method: str
    params: dict[str, Any]

    @property
    def text(self) -> str:
        return str(self.params.get("text") or "")

    def buttons(self) -> list[tuple[str, str]]:
        """(text, callback_data) of every inline button, row by row."""
        markup = self.params.get("reply_markup")
        if markup is None:
            return []
        return [(b.text, b.callback_data) for row in markup.inline_keyboard for b in row]


@dataclass
class RecordingSession(BaseSession):
    """Records every Bot API call; answers like Telegram would, or fails as scripted."""

    calls: list[Call] = field(default_factory=list)
    # method name -> callables deciding a failure for a call (None: succeed)
    failures: dict[str, list[Callable[[TelegramMethod[Any]], Exception | None]]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1000)

    async def close(self) -> None:
        return None

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        name = type(method).__name__
        for decide in self.failures.get(name, []):
            error = decide(method)
            if error is not None:
                self.failures[name].remove(decide)
                raise error
        self.calls.append(Call(name, method.model_dump(exclude_none=True)))
        self.calls[-1].params["reply_markup"] = getattr(method, "reply_markup", None)
        if name == "GetMe":
            return BOT_USER  # type: ignore[return-value]
        if name == "CreateInvoiceLink":
            return f"https://t.me/$invoice-{len(self.calls)}"  # type: ignore[return-value]
        if name == "SendInvoice":
            invoice = Message(
                message_id=next(self._ids),
                date=int(time.time()),
                chat=Chat(id=int(method.chat_id), type="private"),  # type: ignore[attr-defined]
                from_user=BOT_USER,
            )
            return invoice.as_(bot)  # type: ignore[return-value]
        if isinstance(method, SendMessage | EditMessageText):
            chat_id = int(method.chat_id) if method.chat_id is not None else 0
            message = Message(
                message_id=getattr(method, "message_id", None) or next(self._ids),
                date=int(time.time()),
                chat=Chat(id=chat_id, type="private"),
                from_user=BOT_USER,
                text=method.text,
            )
            return message.as_(bot)  # type: ignore[return-value]
        return True  # type: ignore[return-value]

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield b""

    def named(self, *methods: str) -> list[Call]:
        return [c for c in self.calls if c.method in methods]

    def sent_texts(self) -> list[str]:
        return [c.text for c in self.named("SendMessage", "EditMessageText")]

    def fail_next(self, method: str, error: Exception) -> None:
        self.failures.setdefault(method, []).append(lambda _m: error)


def entities_rejected(method: TelegramMethod[Any]) -> TelegramBadRequest:
    return TelegramBadRequest(
        method=method, message="Bad Request: can't parse entities: unsupported"
    )


def retry_after(seconds: int) -> Callable[[TelegramMethod[Any]], Exception]:
    return lambda method: TelegramRetryAfter(
        method=method, message="Too Many Requests", retry_after=seconds
    )


# Update ids are claimed for good (in PostgreSQL or Redis): start where no other test run's
# or the fake Telegram's (10**8 ...) ids are.
_update_ids = itertools.count(secrets.randbelow(10**8) + 3 * 10**8)
_message_ids = itertools.count(1)


def user_json(user_id: int, language: str = "en") -> dict[str, Any]:
    return {
        "id": user_id,
        "is_bot": False,
        "first_name": "Anna",
        "username": f"anna{user_id}",
        "language_code": language,
    }


def message_update(
    user_id: int, text: str | None = None, language: str = "en", **content: Any
) -> dict[str, Any]:
    """A private-chat message update as Telegram sends it."""
    message: dict[str, Any] = {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "chat": {"id": user_id, "type": "private", "first_name": "Anna"},
        "from": user_json(user_id, language),
        **content,
    }
    if text is not None:
        message["text"] = text
        if text.startswith("/"):
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}
            ]
    return {"update_id": next(_update_ids), "message": message}


def callback_update(user_id: int, data: str, language: str = "en") -> dict[str, Any]:
    """A button press on a message the bot sent earlier."""
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": str(next(_update_ids)),
            "from": user_json(user_id, language),
            "chat_instance": "ci",
            "data": data,
            "message": {
                "message_id": next(_message_ids),
                "date": int(time.time()),
                "chat": {"id": user_id, "type": "private", "first_name": "Anna"},
                "from": BOT_USER.model_dump(exclude_none=True),
                "text": "menu",
            },
        },
    }

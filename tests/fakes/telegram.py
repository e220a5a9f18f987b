"""A fake Telegram Bot API server on loopback, speaking the real wire format.

Requests are `GET|POST {base_url}/bot{token}/{method}` with query, JSON, urlencoded or multipart
parameters (aiogram sends multipart, with JSON values such as `reply_markup` as JSON strings);
answers are `{"ok": true, "result": ...}` or `{"ok": false, "error_code": N, "description": ...}`
with the same HTTP status, plus `parameters.retry_after` on 429 — what Telegram sends.

It enforces what a bot most often gets wrong: 4096 UTF-16 units per text, entities inside the
text, callback data of 1-64 bytes, the webhook secret's alphabet, "message is not modified",
answering a callback query twice, and (switchable) flood control per chat and overall.

In-process:

    async with start_fake_telegram(token="123:ABC") as tg:
        ...  # point the bot at tg.base_url (TELEGRAM_API_BASE)
        await tg.deliver(tg.message_update(tg.user(42), "/start"), via="http://127.0.0.1:8080")
        [welcome] = await tg.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == 42)

A bot run elsewhere is steered over HTTP (no token needed on these routes):

    GET  /_control/calls        [?method=sendMessage&chat_id=42] -> {"calls": [...]}
    POST /_control/reset
    POST /_control/fail_next    {"method", "error_code", "description", "retry_after",
                                 "chat_id", "times"}
    POST /_control/rate_limits  {"enabled": true, "per_chat_per_s": 1, "global_per_s": 30}
    POST /_control/updates      an Update, queued for getUpdates -> {"update_id": N}
    POST /_control/files        {"data": base64, "file_id"?, "file_path"?} -> {"file": File}
    GET  /_control/state        webhook, commands, pending updates

Files: `add_file(data)` puts a file "on Telegram" (as if a user had sent it) and gives its File
object; `getFile` answers for it and `GET {base_url}/file/bot{token}/{file_path}` serves its
bytes, recorded as a Call of method "downloadFile". Uploads (`sendPhoto`, `sendDocument` as
multipart) are kept: `call.files["photo"]` is the bytes, `call.params["photo"]` their summary.

Standalone: `python -m tests.fakes.telegram --port 9200 --token 123:ABC`.
"""

import argparse
import asyncio
import base64
import binascii
import contextlib
import hashlib
import itertools
import json
import math
import mimetypes
import re
import secrets
import signal
import ssl
import struct
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

DEFAULT_TOKEN = "123456:TEST-fake-telegram-token"
TEXT_LIMIT = 4096
CALLBACK_TEXT_LIMIT = 200
CAPTION_LIMIT = 1024
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # what getFile lets a bot download
PHOTO_UPLOAD_LIMIT = 10 * 1024 * 1024
DOCUMENT_UPLOAD_LIMIT = 50 * 1024 * 1024
CALLBACK_DATA_BYTES = 64
LONG_POLL_CAP_S = 2.0  # getUpdates waits at most this long, whatever `timeout` asks


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


METHODS = (
    "getMe",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "getUpdates",
    "setMyCommands",
    "getMyCommands",
    "sendMessage",
    "sendPhoto",
    "sendDocument",
    "getFile",
    "editMessageText",
    "editMessageReplyMarkup",
    "sendMessageDraft",
    "sendChatAction",
    "answerCallbackQuery",
    "sendInvoice",
    "createInvoiceLink",
    "answerPreCheckoutQuery",
    "refundStarPayment",
    "editUserStarSubscription",
)
# "downloadFile" is no Bot API method: it names file downloads in the calls and in fail_next.
DOWNLOAD = "downloadFile"
_CANONICAL = {name.lower(): name for name in (*METHODS, DOWNLOAD)}
# Methods that put a new message in a chat: what flood control counts.
MESSAGE_CREATING = frozenset({"sendMessage", "sendPhoto", "sendDocument", "sendInvoice"})
# Parameters that take a file; an upload sent as "attach://<part>" is filed under their name.
_FILE_PARAMS = _words("photo document audio voice video animation video_note sticker thumbnail")

UPDATE_TYPES = _words(
    """
    message edited_message channel_post edited_channel_post business_connection
    business_message edited_business_message deleted_business_messages guest_message
    message_reaction message_reaction_count inline_query chosen_inline_result callback_query
    shipping_query pre_checkout_query purchased_paid_media poll poll_answer my_chat_member
    chat_member chat_join_request chat_boost removed_chat_boost managed_bot subscription
    stopped_message_generation
    """
)
# Telegram delivers these only when asked for by name in allowed_updates.
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

ENTITY_TYPES = _words(
    """
    mention hashtag cashtag bot_command url email phone_number bold italic underline
    strikethrough spoiler blockquote expandable_blockquote code pre text_link text_mention
    custom_emoji date_time
    """
)
CHAT_ACTIONS = _words(
    """
    typing upload_photo record_video upload_video record_voice upload_voice upload_document
    choose_sticker find_location record_video_note upload_video_note
    """
)
BUTTON_KINDS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_LINK_SCHEMES = ("http://", "https://", "tg://", "ton://")
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
# Form fields that are strings even when they look like JSON ("123", "true").
_STRING_FIELDS = _words(
    """
    text caption url secret_token parse_mode title description payload provider_token
    currency callback_query_id pre_checkout_query_id shipping_query_id language_code action
    error_message telegram_payment_charge_id start_parameter photo_url ip_address
    message_effect_id business_connection_id inline_message_id short_description name emoji
    file_id photo document
    """
)
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram counts text and offsets in."""
    return len(text.encode("utf-16-le")) // 2


class BotAPIError(Exception):
    """An error answer of the Bot API."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None):
        super().__init__(f"{error_code} {description}")
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad(description: str) -> BotAPIError:
    return BotAPIError(400, f"Bad Request: {description}")


def _flood(retry_after: int) -> BotAPIError:
    return BotAPIError(429, f"Too Many Requests: retry after {retry_after}", retry_after)


@dataclass
class Call:
    """One request the fake received, and what it answered."""

    seq: int  # 0, 1, 2... in the order the calls were answered
    method: str  # canonical spelling ("sendMessage") when known, else as requested
    params: dict[str, Any]  # decoded: reply_markup, entities... are objects, not JSON strings
    time: float  # time.time() on arrival
    ok: bool = True
    result: Any = None
    error_code: int | None = None
    description: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)  # uploaded bytes, by parameter name

    @property
    def chat_id(self) -> int | str | None:
        return _normalise_chat_id(self.params.get("chat_id"))

    @property
    def text(self) -> str:
        return str(self.params.get("text") or "")

    @property
    def caption(self) -> str:
        return str(self.params.get("caption") or "")

    def buttons(self) -> list[tuple[str, str | None]]:
        """(label, callback_data or url) of every inline button, row by row."""
        markup = self.params.get("reply_markup")
        if not isinstance(markup, dict):
            return []
        return [
            (str(button.get("text")), button.get("callback_data") or button.get("url"))
            for row in markup.get("inline_keyboard") or []
            for button in row
        ]

    def button_labels(self) -> list[str]:
        return [label for label, _data in self.buttons()]

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "method": self.method,
            "params": self.params,
            "time": self.time,
            "ok": self.ok,
            "result": self.result,
            "error_code": self.error_code,
            "description": self.description,
            "files": {name: base64.b64encode(data).decode() for name, data in self.files.items()},
        }


@dataclass
class _Fault:
    method: str  # compared case-insensitively, as Telegram does
    error_code: int
    description: str
    retry_after: int | None
    chat_id: int | str | None
    times: int

    def matches(self, method: str, params: dict[str, Any]) -> bool:
        if self.method.lower() != method.lower():
            return False
        return self.chat_id is None or _normalise_chat_id(params.get("chat_id")) == self.chat_id


@dataclass
class RateLimits:
    """Telegram's flood control on new messages: per chat and overall, per second."""

    enabled: bool = False
    per_chat_per_s: int = 1
    global_per_s: int = 30


@dataclass
class _StoredMessage:
    message: dict[str, Any]
    from_bot: bool


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes

    def file_object(self) -> dict[str, Any]:
        """The File object getFile answers with."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    allowed_updates: list[str] | None
    max_connections: int = 40
    ip_address: str | None = None


@dataclass
class _Commands:
    scope: dict[str, Any]
    language_code: str | None
    commands: list[dict[str, Any]] = field(default_factory=list)


def _normalise_chat_id(value: Any) -> int | str | None:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return value if isinstance(value, str) else None


def _decode(name: str, raw: str) -> Any:
    """A form value as Telegram reads it: JSON for objects, numbers and booleans."""
    if name in _STRING_FIELDS:
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_link(url: Any) -> bool:
    return isinstance(url, str) and url.startswith(_LINK_SCHEMES) and len(url) > 8


def check_entities(text: str, entities: Any) -> list[dict[str, Any]]:
    """The entities if Telegram would accept them for `text`, else the error it gives."""
    if entities is None:
        return []
    if not isinstance(entities, list):
        raise _bad("can't parse entities JSON object")
    size = utf16_len(text)
    for number, entity in enumerate(entities):
        where = f"entity {number}"
        if not isinstance(entity, dict):
            raise _bad(f"can't parse entities: {where} is not an object")
        kind, offset, length = entity.get("type"), entity.get("offset"), entity.get("length")
        if kind not in ENTITY_TYPES:
            raise _bad(f"can't parse entities: unsupported entity type {kind!r}")
        if not _is_int(offset) or offset < 0:
            raise _bad(f"can't parse entities: {where} has a wrong offset {offset!r}")
        if not _is_int(length) or length <= 0:
            raise _bad(f"can't parse entities: {where} has a wrong length {length!r}")
        if offset + length > size:
            raise _bad(
                f"can't parse entities: entity beginning at UTF-16 offset {offset} ends after "
                f"the end of the text at UTF-16 offset {size}"
            )
        if kind == "text_link" and not _is_link(entity.get("url")):
            raise _bad(f"can't parse entities: wrong HTTP URL {entity.get('url')!r}")
        if kind == "text_mention" and not (
            isinstance(entity.get("user"), dict) and _is_int(entity["user"].get("id"))
        ):
            raise _bad("can't parse entities: text_mention needs a user with an id")
        if kind == "custom_emoji" and not isinstance(entity.get("custom_emoji_id"), str):
            raise _bad("can't parse entities: custom_emoji needs custom_emoji_id")
        if kind == "pre" and not isinstance(entity.get("language", ""), str):
            raise _bad("can't parse entities: pre language must be a string")
    return entities


class _TelegramHTML(HTMLParser):
    """Telegram's HTML parse mode: the tags it knows, balanced, turned into text + entities."""

    TAGS: ClassVar[dict[str, str]] = {
        "b": "bold",
        "strong": "bold",
        "i": "italic",
        "em": "italic",
        "u": "underline",
        "ins": "underline",
        "s": "strikethrough",
        "strike": "strikethrough",
        "del": "strikethrough",
        "tg-spoiler": "spoiler",
        "a": "text_link",
        "code": "code",
        "pre": "pre",
        "blockquote": "blockquote",
        "tg-emoji": "custom_emoji",
        "span": "spoiler",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self.entities: list[dict[str, Any]] = []
        self._open: list[tuple[str, dict[str, Any]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag not in self.TAGS or (tag == "span" and values.get("class") != "tg-spoiler"):
            raise _bad(f'can\'t parse entities: Unsupported start tag "{tag}"')
        kind = self.TAGS[tag]
        entity: dict[str, Any] = {"type": kind, "offset": utf16_len(self.text)}
        if tag == "a":
            entity["url"] = values.get("href") or ""
        if tag == "blockquote" and "expandable" in values:
            entity["type"] = "expandable_blockquote"
        if tag == "tg-emoji":
            entity["custom_emoji_id"] = values.get("emoji-id") or ""
        self._open.append((tag, entity))

    def handle_endtag(self, tag: str) -> None:
        if not self._open or self._open[-1][0] != tag:
            expected = f'"</{self._open[-1][0]}>"' if self._open else "no end tag"
            raise _bad(f'can\'t parse entities: Unmatched end tag "{tag}", expected {expected}')
        _tag, entity = self._open.pop()
        entity["length"] = utf16_len(self.text) - entity["offset"]
        if entity["length"]:
            self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self.text += data

    def finish(self) -> None:
        self.close()
        if self._open:
            tag = self._open[-1][0]
            raise _bad(
                f"can't parse entities: Can't find end tag corresponding to start tag \"{tag}\""
            )


_MARKDOWN_V2_RESERVED = set("_*[]()~`>#+-=|{}.!")


def _parse_markdown_v2(text: str) -> str:
    """Telegram's MarkdownV2 strictness on reserved characters; the text without markup."""
    plain: list[str] = []
    code = False
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            plain.append(text[index + 1])
            index += 2
            continue
        if char == "`":
            code = not code
        elif code:
            plain.append(char)
        elif char in "*_~|[]()":
            pass  # markup (entity parsing itself is not modelled)
        elif char in _MARKDOWN_V2_RESERVED and not (
            char == ">" and (index == 0 or text[index - 1] == "\n")
        ):
            raise _bad(
                f"can't parse entities: Character '{char}' is reserved and must be escaped "
                "with the preceding '\\'"
            )
        else:
            plain.append(char)
        index += 1
    return "".join(plain)


def parse_text(
    text: Any,
    parse_mode: Any,
    entities: Any,
    *,
    allow_empty: bool = False,
    limit: int = TEXT_LIMIT,
    too_long: str = "message is too long",
) -> tuple[str, list[dict[str, Any]]]:
    """Text and entities as Telegram would store them, or the error it would give."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        text = json.dumps(text)
    if parse_mode:
        mode = str(parse_mode).lower()
        if mode == "html":
            parser = _TelegramHTML()
            parser.feed(text)
            parser.finish()
            text, entities = parser.text, parser.entities
        elif mode == "markdownv2":
            text, entities = _parse_markdown_v2(text), []
        elif mode != "markdown":
            raise _bad(f"unsupported parse_mode {parse_mode!r}")
    checked = check_entities(text, entities)
    if not text.strip() and not allow_empty:
        raise _bad("message text is empty")
    if utf16_len(text) > limit:
        raise _bad(too_long)
    return text, checked


def parse_caption(params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """A media message's caption and its entities, checked as text is ("" for none)."""
    return parse_text(
        params.get("caption"),
        params.get("parse_mode"),
        params.get("caption_entities"),
        allow_empty=True,
        limit=CAPTION_LIMIT,
        too_long="message caption is too long",
    )


_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOFn markers


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a JPEG, PNG, GIF or WebP picture; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(
                data[27:30], "little"
            )
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return width & 0x3FFF, height & 0x3FFF
        return None
    if data.startswith(b"\xff\xd8"):
        index = 2
        while index + 9 <= len(data) and data[index] == 0xFF:
            marker = data[index + 1]
            if marker == 0xFF:  # fill byte
                index += 1
            elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
                index += 2
            elif marker in _JPEG_FRAMES:
                height, width = struct.unpack(">HH", data[index + 5 : index + 9])
                return width, height
            else:
                index += 2 + struct.unpack(">H", data[index + 2 : index + 4])[0]
    return None


def _scaled_sizes(width: int, height: int, boxes: tuple[int, ...]) -> list[tuple[int, int]]:
    """The sizes Telegram keeps of a picture: one per box smaller than it, then itself.

    The picture itself is cut down to fit 2560 px, as Telegram does.
    """
    longest = max(width, height)
    sizes = []
    for box in (*(b for b in boxes if b < longest), min(longest, 2560)):
        factor = box / longest
        sizes.append((max(1, round(width * factor)), max(1, round(height * factor))))
    return sizes


def unique_file_id(file_id: str) -> str:
    """The file_unique_id the fake gives the file `file_id` (the same for every bot)."""
    return "AgAD" + hashlib.sha256(file_id.encode()).hexdigest()[:12]


def _new_file_id(prefix: str = "BQACAgIAAxkBAAI") -> str:
    return prefix + secrets.token_urlsafe(24)


def _folder_and_suffix(data: bytes) -> tuple[str, str]:
    """Where Telegram would file these bytes, guessed from their first bytes."""
    if data.startswith(b"OggS"):
        return "voice", ".oga"
    if data.startswith(b"%PDF-"):
        return "documents", ".pdf"
    if data.startswith(b"ID3") or data[:2] == b"\xff\xfb":
        return "music", ".mp3"
    if data.startswith(b"\x89PNG"):
        return "photos", ".png"
    if data.startswith(b"\xff\xd8"):
        return "photos", ".jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "photos", ".webp"
    return "documents", ""


def check_reply_markup(markup: Any) -> dict[str, Any] | None:
    """The markup if Telegram would accept it, else the error it gives."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        if not any(k in markup for k in ("keyboard", "remove_keyboard", "force_reply")):
            raise _bad("can't parse reply keyboard markup JSON object")
        return markup
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise _bad('can\'t parse inline keyboard button: Field "text" must be a String')
            if not button["text"].strip():
                raise _bad("can't parse inline keyboard button: Text must be non-empty")
            kinds = [kind for kind in BUTTON_KINDS if kind in button]
            if len(kinds) != 1:
                raise _bad(
                    "can't parse inline keyboard button: Text buttons are unallowed in the "
                    "inline keyboard"
                )
            data = button.get("callback_data")
            if "callback_data" in button and not (
                isinstance(data, str) and 1 <= len(data.encode()) <= CALLBACK_DATA_BYTES
            ):
                raise _bad("BUTTON_DATA_INVALID")
            if "url" in button and not _is_link(button["url"]):
                raise _bad("BUTTON_URL_INVALID")
    return markup


class FakeTelegram:
    """The fake's state: the bot, its chats and messages, the webhook, recorded calls."""

    def __init__(
        self, token: str, bot_username: str = "pomogator_test_bot", bot_name: str = "Pomogator"
    ) -> None:
        self.token = token
        prefix = token.split(":", 1)[0]
        self.bot_user: dict[str, Any] = {
            "id": int(prefix) if prefix.isdigit() else 1,
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
        }
        self.base_url = ""
        self.webhook: _Webhook | None = None
        self.commands: dict[tuple[str, str | None], _Commands] = {}
        self.limits = RateLimits()
        self._calls: list[Call] = []
        self._seq = itertools.count()
        # Replaced and set on every change: waiters re-check what they wait for.
        self._changed = asyncio.Event()
        self._faults: list[_Fault] = []
        self._messages: dict[tuple[int | str, int], _StoredMessage] = {}
        self._message_ids: dict[int | str, itertools.count[int]] = {}
        self._chats: dict[int | str, dict[str, Any]] = {}
        self._update_ids = itertools.count(secrets.randbelow(10**8) + 10**8)
        self._updates: deque[dict[str, Any]] = deque()
        self._polling_allowed: list[str] | None = None
        self._answered_queries: set[str] = set()
        self._refunded: set[str] = set()
        self._sent_in_chat: dict[int | str, deque[float]] = {}
        self._sent: deque[float] = deque()
        self._files: dict[str, _StoredFile] = {}  # by file_id
        self._file_paths: dict[str, _StoredFile] = {}
        self._file_numbers = itertools.count(1)
        self._client: aiohttp.ClientSession | None = None
        # Upload methods also get the uploaded bytes, by parameter name.
        self._uploading: dict[str, Callable[[dict[str, Any], dict[str, bytes]], Any]] = {
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
        }
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getMe": self._get_me,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getUpdates": self._get_updates,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "sendMessage": self._send_message,
            "getFile": self._get_file,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "sendMessageDraft": self._send_message_draft,
            "sendChatAction": self._send_chat_action,
            "answerCallbackQuery": self._answer_callback_query,
            "sendInvoice": self._send_invoice,
            "createInvoiceLink": self._create_invoice_link,
            "answerPreCheckoutQuery": self._answer_pre_checkout_query,
            "refundStarPayment": self._refund_star_payment,
            "editUserStarSubscription": self._edit_user_star_subscription,
        }

    # --- what tests use -------------------------------------------------------------------

    def calls(self, method: str | None = None, *, chat_id: int | str | None = None) -> list[Call]:
        """Every call so far (of one method and/or chat if given), oldest first."""
        return [
            c
            for c in self._calls
            if (method is None or c.method.lower() == method.lower())
            and (chat_id is None or c.chat_id == chat_id)
        ]

    async def wait_for(
        self, what: str | Callable[[Call], bool], count: int = 1, timeout: float = 10.0
    ) -> list[Call]:
        """The matching calls once there are `count` of them; AssertionError after timeout."""
        if isinstance(what, str):
            name = what.lower()

            def match(call: Call) -> bool:
                return call.method.lower() == name
        else:
            match = what

        def matching() -> list[Call]:
            return [c for c in self._calls if match(c)]

        try:
            async with asyncio.timeout(timeout):
                await self._until(lambda: len(matching()) >= count)
        except TimeoutError:
            recent = "\n".join(
                f"  {c.method} ok={c.ok} chat={c.chat_id} text={c.text[:80]!r}"
                for c in self._calls[-15:]
            )
            raise AssertionError(
                f"{len(matching())} of {count} expected Bot API calls within {timeout} s; "
                f"the last calls:\n{recent}"
            ) from None
        return matching()

    def reset(self) -> None:
        """Forget calls, faults, flood counters and queued updates; limits off.

        The bot's webhook, commands, messages and files stay, as they would on Telegram.
        """
        self._calls.clear()
        self._faults.clear()
        self._updates.clear()
        self._answered_queries.clear()
        self._sent.clear()
        self._sent_in_chat.clear()
        self.limits = RateLimits()

    def rate_limits(
        self,
        enabled: bool,
        per_chat_per_s: int | None = None,
        global_per_s: int | None = None,
    ) -> RateLimits:
        """Switch flood control on new messages on or off (off at start)."""
        self.limits = RateLimits(
            enabled=enabled,
            per_chat_per_s=per_chat_per_s or self.limits.per_chat_per_s,
            global_per_s=global_per_s or self.limits.global_per_s,
        )
        return self.limits

    def fail_next(
        self,
        method: str,
        error_code: int = 400,
        description: str | None = None,
        retry_after: int | None = None,
        *,
        chat_id: int | str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` (in `chat_id` if given) with this error."""
        if error_code == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if error_code == 429
                else _DEFAULT_DESCRIPTIONS.get(error_code, "Error")
            )
        self._faults.append(
            _Fault(
                _CANONICAL.get(method.lower(), method),
                error_code,
                description,
                retry_after,
                _normalise_chat_id(chat_id),
                times,
            )
        )

    def user(
        self,
        user_id: int,
        first_name: str = "Anna",
        *,
        language_code: str | None = "en",
        username: str | None = None,
    ) -> dict[str, Any]:
        """A User object for a person writing to the bot."""
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        return user

    def add_file(
        self, data: bytes, *, file_id: str | None = None, file_path: str | None = None
    ) -> dict[str, Any]:
        """Put a file on the fake Telegram, as if a user had sent it; its File object.

        Ids and a path (with the folder and extension Telegram would give, guessed from the
        bytes: voice/file_1.oga, documents/file_2.pdf...) are made up unless given. getFile
        refuses a file over 20 MB ("file is too big"), as Telegram does for bots.
        """
        number = next(self._file_numbers)
        if file_path is None:
            folder, suffix = _folder_and_suffix(data)
            file_path = f"{folder}/file_{number}{suffix}"
        file_id = file_id or _new_file_id()
        stored = _StoredFile(file_id, unique_file_id(file_id), file_path, bytes(data))
        self._files[file_id] = stored
        self._file_paths[file_path] = stored
        return stored.file_object()

    def downloads(self, file_path: str | None = None) -> list[Call]:
        """The file downloads so far (of one path if given), answered or refused."""
        return [
            c
            for c in self.calls(DOWNLOAD)
            if file_path is None or c.params.get("file_path") == file_path
        ]

    def _user_message(self, user: dict[str, Any], **content: Any) -> dict[str, Any]:
        """An Update with a private-chat message from `user` with this content."""
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        if user.get("username"):
            chat["username"] = user["username"]
        self._chats[user["id"]] = chat
        message: dict[str, Any] = {
            "message_id": self._next_message_id(user["id"]),
            "from": user,
            "chat": chat,
            "date": int(time.time()),
            **{k: v for k, v in content.items() if v not in (None, [])},
        }
        self._messages[(user["id"], message["message_id"])] = _StoredMessage(message, False)
        return {"update_id": next(self._update_ids), "message": message}

    def message_update(
        self, user: dict[str, Any], text: str, *, entities: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """An Update with a private-chat text message from `user`, as Telegram sends it.

        The message id comes from the chat's counter, shared with the bot's messages.
        A leading /command gets its bot_command entity.
        """
        if entities is None and text.startswith("/"):
            entities = [{"type": "bot_command", "offset": 0, "length": utf16_len(text.split()[0])}]
        return self._user_message(user, text=text, entities=entities)

    def _media(self, file_id: str, file_size: int | None) -> dict[str, Any]:
        """file_id, file_unique_id and file_size (the added file's, unless given)."""
        stored = self._files.get(file_id)
        if file_size is None and stored is not None:
            file_size = len(stored.data)
        media: dict[str, Any] = {"file_id": file_id, "file_unique_id": unique_file_id(file_id)}
        if file_size is not None:
            media["file_size"] = file_size
        return media

    def voice_update(
        self,
        user: dict[str, Any],
        *,
        file_id: str,
        duration: int,
        file_size: int | None = None,
        mime_type: str = "audio/ogg",
        caption: str | None = None,
    ) -> dict[str, Any]:
        """An Update with a voice message (a Voice object; file_size: the added file's)."""
        media = self._media(file_id, file_size)
        voice = {
            "file_id": media["file_id"],
            "file_unique_id": media["file_unique_id"],
            "duration": duration,
            "mime_type": mime_type,
            "file_size": media.get("file_size"),
        }
        return self._user_message(user, voice=_drop_none(voice), caption=caption)

    def audio_update(
        self,
        user: dict[str, Any],
        *,
        file_id: str,
        duration: int,
        file_size: int | None = None,
        file_name: str | None = "audio.mp3",
        mime_type: str = "audio/mpeg",
        title: str | None = None,
        performer: str | None = None,
        caption: str | None = None,
    ) -> dict[str, Any]:
        """An Update with a music file (an Audio object), as sent from the attachment menu."""
        media = self._media(file_id, file_size)
        audio = {
            "file_id": media["file_id"],
            "file_unique_id": media["file_unique_id"],
            "duration": duration,
            "performer": performer,
            "title": title,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": media.get("file_size"),
        }
        return self._user_message(user, audio=_drop_none(audio), caption=caption)

    def video_note_update(
        self,
        user: dict[str, Any],
        *,
        file_id: str,
        duration: int,
        file_size: int | None = None,
        length: int = 384,
    ) -> dict[str, Any]:
        """An Update with a round video message (a VideoNote object; it has no caption)."""
        media = self._media(file_id, file_size)
        note = {
            "file_id": media["file_id"],
            "file_unique_id": media["file_unique_id"],
            "length": length,
            "duration": duration,
            "file_size": media.get("file_size"),
        }
        return self._user_message(user, video_note=_drop_none(note))

    def photo_update(
        self,
        user: dict[str, Any],
        *,
        file_id: str,
        file_size: int | None = None,
        caption: str | None = None,
        caption_entities: list[dict[str, Any]] | None = None,
        width: int = 1280,
        height: int = 960,
    ) -> dict[str, Any]:
        """An Update with a photo: PhotoSize objects (90 px, 320 px, full), the largest last.

        `file_id` (and `file_size`) is the full size's; the smaller ones get ids of their
        own that are not added as files, so only the largest can be downloaded.
        """
        full = self._media(file_id, file_size)
        sizes = _scaled_sizes(width, height, (90, 320))
        photo = []
        for size_width, size_height in sizes[:-1]:
            small_id = f"{file_id}_{size_width}x{size_height}"
            size: dict[str, Any] = {
                "file_id": small_id,
                "file_unique_id": unique_file_id(small_id),
                "width": size_width,
                "height": size_height,
            }
            if "file_size" in full:
                ratio = size_width * size_height / (width * height)
                size["file_size"] = max(1, int(full["file_size"] * ratio))
            photo.append(size)
        photo.append(
            _drop_none(
                {
                    "file_id": file_id,
                    "file_unique_id": full["file_unique_id"],
                    "width": width,
                    "height": height,
                    "file_size": full.get("file_size"),
                }
            )
        )
        return self._user_message(
            user, photo=photo, caption=caption, caption_entities=caption_entities
        )

    def document_update(
        self,
        user: dict[str, Any],
        *,
        file_id: str,
        file_name: str | None,
        mime_type: str | None,
        file_size: int | None = None,
        caption: str | None = None,
        caption_entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """An Update with a file sent as a document (a Document object)."""
        media = self._media(file_id, file_size)
        document = {
            "file_id": media["file_id"],
            "file_unique_id": media["file_unique_id"],
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": media.get("file_size"),
        }
        return self._user_message(
            user, document=_drop_none(document), caption=caption, caption_entities=caption_entities
        )

    def callback_update(
        self,
        user: dict[str, Any],
        message: dict[str, Any] | Call,
        *,
        button: str | None = None,
        data: str | None = None,
    ) -> dict[str, Any]:
        """An Update for pressing a button (by label, or raw `data`) under a bot message.

        The message is sent as it stands now (after any edits), as Telegram does.
        """
        if isinstance(message, Call):
            message = message.result
        stored = self._messages.get((message["chat"]["id"], message["message_id"]))
        current = stored.message if stored else message
        if button is not None:
            rows = (current.get("reply_markup") or {}).get("inline_keyboard") or []
            found = [b for row in rows for b in row if b.get("text") == button]
            labels = [b.get("text") for row in rows for b in row]
            if not found or "callback_data" not in found[0]:
                raise AssertionError(f"no callback button {button!r} under the message: {labels}")
            data = found[0]["callback_data"]
        if data is None:
            raise ValueError("give the button's label or its callback data")
        query_id = str(secrets.randbits(63))
        return {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": query_id,
                "from": user,
                "message": current,
                "chat_instance": str(abs(hash(("chat", current["chat"]["id"])))),
                "data": data,
            },
        }

    def queue_update(self, update: dict[str, Any]) -> int:
        """Queue an Update for getUpdates (an update_id is given if missing)."""
        update.setdefault("update_id", next(self._update_ids))
        self._updates.append(update)
        self._notify()
        return int(update["update_id"])

    async def deliver(
        self,
        update: dict[str, Any],
        *,
        via: str | None = None,
        secret_token: str | None = None,
    ) -> int:
        """POST an Update to the bot's webhook as Telegram does; the HTTP status it got.

        `via` ("http://127.0.0.1:8080") replaces the scheme and host of the webhook URL the bot
        registered, which is public and unreachable from a test. The secret header is the one
        the bot registered, unless `secret_token` is given.
        """
        if self.webhook is None:
            raise RuntimeError("the bot has not set a webhook: Telegram would deliver nothing")
        kind = next((k for k in update if k != "update_id"), None)
        allowed = self.webhook.allowed_updates or sorted(UPDATE_TYPES - NOT_BY_DEFAULT)
        if kind not in allowed:
            raise ValueError(
                f"Telegram would not deliver a {kind!r} update: the bot's allowed_updates are "
                f"{allowed}"
            )
        parts = urlsplit(self.webhook.url)
        target = self.webhook.url
        if via is not None:
            target = via.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Content-Type": "application/json"}
        secret = secret_token if secret_token is not None else self.webhook.secret_token
        if secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        if self._client is None:
            self._client = self._webhook_client()
        async with self._client.post(target, data=json.dumps(update), headers=headers) as response:
            await response.read()
            return response.status

    def _webhook_client(self, context: ssl.SSLContext | None = None) -> aiohttp.ClientSession:
        """Like Telegram: at most the webhook's max_connections open at once (40 by default)."""
        limit = self.webhook.max_connections if self.webhook is not None else 40
        connector = aiohttp.TCPConnector(limit=limit, ssl=context if context is not None else True)
        return aiohttp.ClientSession(connector=connector)

    async def trust(self, context: ssl.SSLContext) -> None:
        """Deliver webhooks over HTTPS trusting `context` (the bot's uploaded certificate)."""
        if self._client is not None:
            await self._client.close()
        self._client = self._webhook_client(context)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    # --- the server -----------------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application serving the Bot API and the control routes."""
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_get("/_control/calls", self._control_calls)
        app.router.add_post("/_control/reset", self._control_reset)
        app.router.add_post("/_control/fail_next", self._control_fail_next)
        app.router.add_post("/_control/rate_limits", self._control_rate_limits)
        app.router.add_post("/_control/updates", self._control_updates)
        app.router.add_post("/_control/files", self._control_files)
        app.router.add_get("/_control/state", self._control_state)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._download)
        return app

    async def _api(self, request: web.Request) -> web.Response:
        requested = request.match_info["method"]
        method = _CANONICAL.get(requested.lower(), requested)
        call = Call(seq=-1, method=method, params={}, time=time.time())
        try:
            call.params, call.files = await _read_params(request)
            params = call.params
            if request.match_info["token"] != self.token:
                raise BotAPIError(401, "Unauthorized")
            uploading = self._uploading.get(method)
            handler = self._handlers.get(method)
            if handler is None and uploading is None:
                raise BotAPIError(404, "Not Found: method not found")
            self._inject_fault(method, params)
            if uploading is not None:
                result = await uploading(params, call.files)
            else:
                assert handler is not None
                result = await handler(params)
        except BotAPIError as error:
            return self._answer(call, error=error)
        return self._answer(call, result=result)

    async def _download(self, request: web.Request) -> web.Response:
        """A file's bytes, as api.telegram.org/file/bot<token>/<file_path> serves them."""
        path = request.match_info["file_path"]
        call = Call(seq=-1, method=DOWNLOAD, params={"file_path": path}, time=time.time())
        try:
            if request.match_info["token"] != self.token:
                raise BotAPIError(401, "Unauthorized")
            self._inject_fault(DOWNLOAD, call.params)
            stored = self._file_paths.get(path)
            if stored is None:
                raise BotAPIError(404, "Not Found")
            if len(stored.data) > DOWNLOAD_LIMIT:
                raise _bad("file is too big")
        except BotAPIError as error:
            return self._answer(call, error=error)
        call.result = stored.file_object()
        self._record(call)
        return web.Response(body=stored.data, content_type="application/octet-stream")

    def _answer(
        self, call: Call, *, result: Any = None, error: BotAPIError | None = None
    ) -> web.Response:
        if error is not None:
            call.ok, call.error_code, call.description = False, error.error_code, error.description
            body = error.body()
            status = error.error_code
        else:
            call.result = result
            body = {"ok": True, "result": result}
            if call.method == "setWebhook":
                body["description"] = "Webhook was set"
            status = 200
        self._record(call)
        return web.json_response(body, status=status)

    def _record(self, call: Call) -> None:
        # Recorded once answered, so a waiter never sees a call without its outcome.
        call.seq = next(self._seq)
        self._calls.append(call)
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _until(self, ready: Callable[[], bool]) -> None:
        while not ready():
            await self._changed.wait()

    def _inject_fault(self, method: str, params: dict[str, Any]) -> None:
        for fault in self._faults:
            if fault.matches(method, params):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                raise BotAPIError(fault.error_code, fault.description, fault.retry_after)

    def _next_message_id(self, chat_id: int | str) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)

    def _chat(self, params: dict[str, Any], name: str = "chat_id") -> dict[str, Any]:
        chat_id = _normalise_chat_id(params.get(name))
        if chat_id is None or chat_id == "":
            raise _bad(f"{name} is empty")
        if isinstance(chat_id, str) and not chat_id.startswith("@"):
            raise _bad("chat not found")
        if chat_id in self._chats:
            return self._chats[chat_id]
        if isinstance(chat_id, str):
            raise _bad("chat not found")
        if chat_id == 0:
            raise _bad("chat not found")
        kind = "private" if chat_id > 0 else "supergroup" if chat_id < -(10**12) else "group"
        return {"id": chat_id, "type": kind}

    def _check_flood(self, chat_id: int | str) -> None:
        if not self.limits.enabled:
            return
        now = time.monotonic()
        in_chat = self._sent_in_chat.setdefault(chat_id, deque())
        for window in (in_chat, self._sent):
            while window and now - window[0] >= 1.0:
                window.popleft()
        for window, limit in (
            (in_chat, self.limits.per_chat_per_s),
            (self._sent, self.limits.global_per_s),
        ):
            if len(window) >= limit:
                raise _flood(max(1, math.ceil(window[0] + 1.0 - now)))

    def _note_sent(self, chat_id: int | str) -> None:
        now = time.monotonic()
        self._sent.append(now)
        self._sent_in_chat.setdefault(chat_id, deque()).append(now)

    def _new_message(self, chat: dict[str, Any], **content: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat["id"]),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
            **{k: v for k, v in content.items() if v not in (None, [])},
        }
        self._messages[(chat["id"], message["message_id"])] = _StoredMessage(message, True)
        return message

    def _check_reply(self, chat: dict[str, Any], params: dict[str, Any]) -> dict[str, Any] | None:
        """The message replied to (None for no reply, or a missing one allowed to be)."""
        reply = params.get("reply_parameters")
        if reply is None and _is_int(params.get("reply_to_message_id")):
            reply = {"message_id": params["reply_to_message_id"]}
        if not isinstance(reply, dict):
            return None
        stored = self._messages.get((chat["id"], reply.get("message_id")))
        if stored is None and not reply.get("allow_sending_without_reply"):
            raise _bad("message to be replied not found")
        # Telegram nests the replied-to message one level deep, without its own reply.
        return (
            {k: v for k, v in stored.message.items() if k != "reply_to_message"} if stored else None
        )

    # --- the Bot API methods --------------------------------------------------------------

    async def _get_me(self, _params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = params.get("url")
        if url is None:
            raise _bad('parameter "url" is required')
        if url == "":
            self.webhook = None
            return True
        if not isinstance(url, str) or not url.startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not (isinstance(secret, str) and _SECRET_TOKEN.match(secret)):
            raise _bad("secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        # Unknown names are ignored, as Telegram does; the list itself must be one of strings.
        if allowed is not None and (
            not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed)
        ):
            raise _bad(f"can't parse allowed_updates: {allowed!r}")
        connections = params.get("max_connections", 40)
        if not _is_int(connections) or not 1 <= connections <= 100:
            raise _bad("max_connections must be 1-100")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = _Webhook(url, secret, allowed, connections, params.get("ip_address"))
        return True

    async def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _get_webhook_info(self, _params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook.url if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook is not None:
            info["max_connections"] = self.webhook.max_connections
            if self.webhook.allowed_updates is not None:
                info["allowed_updates"] = self.webhook.allowed_updates
            if self.webhook.ip_address:
                info["ip_address"] = self.webhook.ip_address
        return info

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise BotAPIError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        offset, limit = params.get("offset"), params.get("limit", 100)
        timeout = params.get("timeout", 0)
        if not _is_int(limit) or not 1 <= limit <= 100:
            limit = 100
        if params.get("allowed_updates") is not None:
            self._polling_allowed = params["allowed_updates"] or None
        if _is_int(offset):
            if offset < 0:
                while len(self._updates) > -offset:
                    self._updates.popleft()
            else:
                while self._updates and self._updates[0]["update_id"] < offset:
                    self._updates.popleft()
        allowed = self._polling_allowed or sorted(UPDATE_TYPES - NOT_BY_DEFAULT)

        def ready() -> list[dict[str, Any]]:
            kept = [u for u in self._updates if next(k for k in u if k != "update_id") in allowed]
            return kept[:limit]

        if not ready() and isinstance(timeout, int | float) and timeout > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(float(timeout), LONG_POLL_CAP_S)):
                    await self._until(lambda: bool(ready()))
        return ready()

    async def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse commands JSON object")
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or not _COMMAND.match(name):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        scope = params.get("scope") or {"type": "default"}
        language = params.get("language_code") or None
        if language is not None and not re.fullmatch(r"[a-z]{2}", str(language)):
            raise _bad("invalid language code specified")
        key = (json.dumps(scope, sort_keys=True), language)
        self.commands[key] = _Commands(scope, language, commands)
        return True

    async def _get_my_commands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        scope = params.get("scope") or {"type": "default"}
        key = (json.dumps(scope, sort_keys=True), params.get("language_code") or None)
        found = self.commands.get(key)
        return found.commands if found else []

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        text, entities = parse_text(
            params.get("text"), params.get("parse_mode"), params.get("entities")
        )
        markup = check_reply_markup(params.get("reply_markup"))
        replied = self._check_reply(chat, params)
        self._check_flood(chat["id"])
        self._note_sent(chat["id"])
        inline = markup if markup and "inline_keyboard" in markup else None
        return self._new_message(
            chat, text=text, entities=entities, reply_markup=inline, reply_to_message=replied
        )

    async def _get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = params.get("file_id")
        if not file_id:
            raise _bad('parameter "file_id" is required')
        stored = self._files.get(str(file_id))
        if stored is None:
            raise _bad("invalid file_id")
        if len(stored.data) > DOWNLOAD_LIMIT:
            raise _bad("file is too big")
        return stored.file_object()

    def _input_file(self, params: dict[str, Any], files: dict[str, bytes], name: str) -> bytes:
        """The bytes given for the file parameter `name`: uploaded, or a known file_id."""
        if name in files:
            data = files[name]
            if not data:
                raise _bad("file must be non-empty")
            return data
        value = params.get(name)
        if not value:
            raise _bad(f"there is no {name} in the request")
        value = str(value)
        stored = self._files.get(value)
        if stored is not None:
            return stored.data
        if value.startswith(("http://", "https://")):
            raise _bad("failed to get HTTP URL content")  # the fake reaches no web
        raise _bad("wrong file identifier/HTTP URL specified")

    def _media_message(self, params: dict[str, Any], **media: Any) -> dict[str, Any]:
        """Checks shared by the media methods, then the message sent."""
        chat = self._chat(params)
        caption, entities = parse_caption(params)
        markup = check_reply_markup(params.get("reply_markup"))
        replied = self._check_reply(chat, params)
        self._check_flood(chat["id"])
        self._note_sent(chat["id"])
        inline = markup if markup and "inline_keyboard" in markup else None
        return self._new_message(
            chat,
            **media,
            caption=caption or None,
            caption_entities=entities,
            reply_markup=inline,
            reply_to_message=replied,
        )

    async def _send_photo(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        self._chat(params)
        data = self._input_file(params, files, "photo")
        if len(data) > PHOTO_UPLOAD_LIMIT:
            raise BotAPIError(413, "Request Entity Too Large")
        size = image_size(data)
        if size is None:
            raise _bad("IMAGE_PROCESS_FAILED")
        width, height = size
        if not width or not height or width + height > 10_000 or max(size) > 20 * min(size):
            raise _bad("PHOTO_INVALID_DIMENSIONS")
        photo = []
        sizes = _scaled_sizes(width, height, (90, 320, 800, 1280))
        for size_width, size_height in sizes:
            ratio = size_width * size_height / (width * height)
            file_id = _new_file_id("AgACAgIAAxkDAAI")
            if (size_width, size_height) == sizes[-1]:
                # Only the largest is kept (the fake does not resize): it can be downloaded.
                self.add_file(data, file_id=file_id)
            photo.append(
                {
                    "file_id": file_id,
                    "file_unique_id": unique_file_id(file_id),
                    "width": size_width,
                    "height": size_height,
                    "file_size": max(1, int(len(data) * ratio)),
                }
            )
        return self._media_message(params, photo=photo)

    async def _send_document(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        self._chat(params)
        data = self._input_file(params, files, "document")
        if len(data) > DOCUMENT_UPLOAD_LIMIT:
            raise BotAPIError(413, "Request Entity Too Large")
        upload = params.get("document")
        file_name = upload.get("file_name") if isinstance(upload, dict) else None
        mime_type = mimetypes.guess_type(file_name)[0] if file_name else None
        suffix = "." + file_name.rsplit(".", 1)[1] if file_name and "." in file_name else ""
        file_id = _new_file_id()
        self.add_file(data, file_id=file_id, file_path=f"documents/{secrets.token_hex(6)}{suffix}")
        document = {
            "file_id": file_id,
            "file_unique_id": unique_file_id(file_id),
            "file_name": file_name,
            "mime_type": mime_type or "application/octet-stream",
            "file_size": len(data),
        }
        return self._media_message(params, document=_drop_none(document))

    def _to_edit(self, params: dict[str, Any]) -> _StoredMessage:
        """The bot's own message that `params` (chat_id, message_id) name, as Telegram checks."""
        chat = self._chat(params)
        message_id = params.get("message_id")
        if not _is_int(message_id):
            raise _bad("message identifier is not specified")
        stored = self._messages.get((chat["id"], message_id))
        if stored is None:
            raise _bad("message to edit not found")
        if not stored.from_bot:
            raise _bad("message can't be edited")
        return stored

    @staticmethod
    def _edited(
        stored: _StoredMessage, inline: dict[str, Any] | None, **content: Any
    ) -> dict[str, Any]:
        """The message with new content and inline keyboard; 400 if nothing changes."""
        old = stored.message
        if all(old.get(k) == v for k, v in content.items()) and old.get("reply_markup") == inline:
            raise _bad(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        edited = {k: v for k, v in old.items() if k not in {*content, "reply_markup"}}
        edited.update({k: v for k, v in content.items() if v}, edit_date=int(time.time()))
        if inline:
            edited["reply_markup"] = inline
        stored.message = edited
        return edited

    async def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        text, entities = parse_text(
            params.get("text"), params.get("parse_mode"), params.get("entities")
        )
        markup = check_reply_markup(params.get("reply_markup"))
        if params.get("inline_message_id"):
            return True
        stored = self._to_edit(params)
        inline = markup if markup and "inline_keyboard" in markup else None
        return self._edited(stored, inline, text=text, entities=entities or None)

    async def _edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        markup = check_reply_markup(params.get("reply_markup"))
        if params.get("inline_message_id"):
            return True
        inline = markup if markup and "inline_keyboard" in markup else None
        return self._edited(self._to_edit(params), inline)

    async def _send_message_draft(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params)
        if chat["type"] != "private":
            raise _bad("message drafts can be sent only to private chats")
        draft_id = params.get("draft_id")
        if not _is_int(draft_id) or draft_id == 0:
            raise _bad("draft_id must be a non-zero integer")
        parse_text(
            params.get("text"), params.get("parse_mode"), params.get("entities"), allow_empty=True
        )
        return True

    async def _send_chat_action(self, params: dict[str, Any]) -> bool:
        self._chat(params)
        if params.get("action") not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return True

    async def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        query_id = params.get("callback_query_id")
        if not query_id:
            raise _bad("callback_query_id is empty")
        if query_id in self._answered_queries:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        text = params.get("text")
        if text is not None and utf16_len(str(text)) > CALLBACK_TEXT_LIMIT:
            raise _bad("MESSAGE_TOO_LONG")
        self._answered_queries.add(str(query_id))
        return True

    def _check_invoice(self, params: dict[str, Any]) -> int:
        title, description = params.get("title"), params.get("description")
        if not isinstance(title, str) or not 1 <= len(title) <= 32:
            raise _bad("invoice title must be 1-32 characters")
        if not isinstance(description, str) or not 1 <= len(description) <= 255:
            raise _bad("invoice description must be 1-255 characters")
        payload = params.get("payload")
        if not isinstance(payload, str) or not 1 <= len(payload.encode()) <= 128:
            raise _bad("invoice payload must be 1-128 bytes")
        prices = params.get("prices")
        if not isinstance(prices, list) or not prices:
            raise _bad("can't parse prices JSON object")
        for price in prices:
            if not isinstance(price, dict) or not _is_int(price.get("amount")):
                raise _bad("can't parse prices JSON object")
        if params.get("currency") == "XTR":
            if params.get("provider_token"):
                raise _bad("provider_token must be empty for payments in Telegram Stars")
            if len(prices) != 1:
                raise _bad("invoices in Telegram Stars must have exactly one price")
        elif not isinstance(params.get("currency"), str):
            raise _bad("currency is empty")
        total = sum(int(p["amount"]) for p in prices)
        if total <= 0:
            raise _bad("CURRENCY_TOTAL_AMOUNT_INVALID")
        return total

    async def _send_invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        total = self._check_invoice(params)
        markup = check_reply_markup(params.get("reply_markup"))
        self._check_flood(chat["id"])
        self._note_sent(chat["id"])
        invoice = {
            "title": params["title"],
            "description": params["description"],
            "start_parameter": params.get("start_parameter") or "",
            "currency": params["currency"],
            "total_amount": total,
        }
        inline = markup if markup and "inline_keyboard" in markup else None
        return self._new_message(chat, invoice=invoice, reply_markup=inline)

    async def _create_invoice_link(self, params: dict[str, Any]) -> str:
        self._check_invoice(params)
        period = params.get("subscription_period")
        if period is not None:
            if period != 2592000:
                raise _bad("SUBSCRIPTION_PERIOD_INVALID")
            if params.get("currency") != "XTR":
                raise _bad("subscriptions are paid in Telegram Stars only")
        return "https://t.me/$" + secrets.token_urlsafe(16)

    async def _answer_pre_checkout_query(self, params: dict[str, Any]) -> bool:
        query_id = params.get("pre_checkout_query_id")
        if not query_id:
            raise _bad("pre_checkout_query_id is empty")
        if not isinstance(params.get("ok"), bool):
            raise _bad('parameter "ok" is required')
        if not params["ok"] and not params.get("error_message"):
            raise _bad("error_message is empty")
        if query_id in self._answered_queries:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        self._answered_queries.add(str(query_id))
        return True

    async def _refund_star_payment(self, params: dict[str, Any]) -> bool:
        if not _is_int(params.get("user_id")):
            raise _bad("user_id is empty")
        charge = params.get("telegram_payment_charge_id")
        if not charge:
            raise _bad("telegram_payment_charge_id is empty")
        if charge in self._refunded:
            raise _bad("CHARGE_ALREADY_REFUNDED")
        self._refunded.add(str(charge))
        return True

    async def _edit_user_star_subscription(self, params: dict[str, Any]) -> bool:
        if not _is_int(params.get("user_id")):
            raise _bad("user_id is empty")
        if not params.get("telegram_payment_charge_id"):
            raise _bad("telegram_payment_charge_id is empty")
        if not isinstance(params.get("is_canceled"), bool):
            raise _bad('parameter "is_canceled" is required')
        return True

    # --- control routes -------------------------------------------------------------------

    async def _control_calls(self, request: web.Request) -> web.Response:
        chat_id = _normalise_chat_id(request.query.get("chat_id"))
        calls = self.calls(request.query.get("method"), chat_id=chat_id)
        return web.json_response({"calls": [c.to_json() for c in calls]})

    async def _control_reset(self, _request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _control_fail_next(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            self.fail_next(
                str(body["method"]),
                int(body.get("error_code", 400)),
                body.get("description"),
                body.get("retry_after"),
                chat_id=body.get("chat_id"),
                times=int(body.get("times", 1)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            return web.json_response({"ok": False, "error": repr(exc)}, status=400)
        return web.json_response({"ok": True})

    async def _control_rate_limits(self, request: web.Request) -> web.Response:
        body = await request.json()
        limits = self.rate_limits(
            bool(body.get("enabled")), body.get("per_chat_per_s"), body.get("global_per_s")
        )
        return web.json_response({"ok": True, "rate_limits": limits.__dict__})

    async def _control_updates(self, request: web.Request) -> web.Response:
        update = await request.json()
        if not isinstance(update, dict):
            return web.json_response({"ok": False, "error": "an Update object"}, status=400)
        return web.json_response({"ok": True, "update_id": self.queue_update(update)})

    async def _control_files(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            data = base64.b64decode(body["data"], validate=True)
            file = self.add_file(data, file_id=body.get("file_id"), file_path=body.get("file_path"))
        except (KeyError, TypeError, binascii.Error) as exc:
            return web.json_response({"ok": False, "error": repr(exc)}, status=400)
        return web.json_response({"ok": True, "file": file})

    async def _control_state(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "webhook": self.webhook.__dict__ if self.webhook else None,
                "commands": [c.__dict__ for c in self.commands.values()],
                "pending_updates": len(self._updates),
                "rate_limits": self.limits.__dict__,
            }
        )


def _drop_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The method's parameters from the query string and a JSON or form body, and uploads.

    An uploaded part is summarised in the parameters as {"file_name", "size"} and its bytes
    returned by name. aiogram names a part at random and sends `photo=attach://<part>`: for a
    file parameter (photo, document...) the summary and the bytes are filed under "photo";
    other references (setWebhook's certificate) stay as sent, the summary under the part's name.
    """
    params: dict[str, Any] = {k: _decode(k, v) for k, v in request.query.items()}
    files: dict[str, bytes] = {}
    if not request.body_exists:
        return params, files
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise _bad("can't parse JSON object") from None
        if not isinstance(body, dict):
            raise _bad("can't parse JSON object")
        params.update(body)
    elif request.content_type in {"multipart/form-data", "application/x-www-form-urlencoded"}:
        form = await request.post()
        uploads: dict[str, tuple[str, bytes]] = {}
        for key, value in form.items():
            if isinstance(value, web.FileField):
                uploads[key] = (value.filename, value.file.read())
            else:
                params[key] = _decode(key, str(value))
        for part, (file_name, data) in uploads.items():
            name = next(
                (k for k in _FILE_PARAMS if params.get(k) == f"attach://{part}"),
                part,
            )
            params[name] = {"file_name": file_name, "size": len(data)}
            files[name] = data
    return params, files


@contextlib.asynccontextmanager
async def start_fake_telegram(
    token: str = DEFAULT_TOKEN, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[FakeTelegram]:
    """Serve the fake on host:port (a free port by default) for the duration of the block."""
    fake = FakeTelegram(token)
    runner = web.AppRunner(
        fake.app(), handler_cancellation=True, shutdown_timeout=0.5, access_log=None
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        fake.base_url = f"http://{host}:{runner.addresses[0][1]}"
        yield fake
    finally:
        await fake.aclose()
        await runner.cleanup()


async def _serve(host: str, port: int, token: str) -> None:
    async with start_fake_telegram(token, host, port) as fake:
        print(f"TELEGRAM_API_BASE={fake.base_url}", flush=True)
        print(f"BOT_TOKEN={token}", flush=True)
        print(f"control: {fake.base_url}/_control", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Run the fake until Ctrl-C (or SIGTERM)."""
    parser = argparse.ArgumentParser(description="Fake Telegram Bot API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port, args.token))


if __name__ == "__main__":
    main()

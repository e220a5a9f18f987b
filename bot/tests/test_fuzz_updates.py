"""Generated Telegram updates through the real dispatcher: nothing escapes unhandled.

Messages of every kind (text of any size and script, commands with random arguments, files
with random fields, payments, service messages), edited messages, channel posts, button
presses with valid, half-valid and forged callback data, pre-checkout queries, membership and
subscription changes, from chats of every type, with or without a sender. The real backend
answers over ASGI; the Bot talks to a recording session that also serves files.

The error handler (bot/handlers/errors.py) swallows what handlers raise, so a spy on the
dispatcher's own error observer records every exception that reached it: only refusals the
backend decided (a BackendError with a code the user is told about) may get there.
"""

import itertools
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.methods import GetFile, TelegramMethod
from aiogram.types import ChatMemberRestricted, ErrorEvent, File, Update
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from bot.main import COMMANDS
from bot.services.backend import BackendError, BackendUnavailable
from bot.tests.conftest import BotEnv, backend_client, replica
from bot.tests.telegram import BOT_USER, Call, RecordingSession
from tests.fakes.files import png_bytes

NOW = int(time.time())  # fixed: strategies must draw the same way when replayed
EXAMPLES = 800  # about 25 s here; CI-friendly, and new seeds every run
PICTURE = png_bytes(2, 2)


class FilesSession(RecordingSession):
    """The recording session, also answering getFile and serving files (a tiny PNG, or nothing)."""

    async def make_request(self, bot, method: TelegramMethod[Any], timeout: int | None = None):  # type: ignore[override]
        if isinstance(method, GetFile):
            self.calls.append(Call("GetFile", {"file_id": method.file_id}))
            return File(file_id=method.file_id, file_unique_id="u", file_path=f"f/{method.file_id}")
        return await super().make_request(bot, method, timeout)

    async def stream_content(self, url: str, *args: Any, **kwargs: Any) -> AsyncIterator[bytes]:  # type: ignore[override]
        # Now and then an empty file (ids ending in "0"), which Telegram can serve too.
        yield b"" if url.endswith("0") else PICTURE


# --- strategies -------------------------------------------------------------------------------

ODD_TEXT = [
    "",
    " ",
    "\n\n\n",
    "\u200b\u200d\u2060",  # zero-width
    "\u202eevil\u202c",  # right-to-left override
    "e\u0301\u0301\u0301\u0301",  # stacked combining marks
    "👨‍👩‍👧‍👦" * 50,
    "\U0010ffff\ufffd\ufeff",
    "\x00\x01\x7f",
    "**unclosed _markdown `code",
    "<b>html</b> &amp; <i>",
    "[link](javascript:alert(1))",
    "/",
    "/@",
    "//start",
]
PLAIN_TEXT = st.one_of(
    st.sampled_from(ODD_TEXT),
    st.text(max_size=300),
    st.builds(lambda c, n: c * n, st.characters(), st.integers(3_000, 12_000)),
)
SHORT = st.text(max_size=40)
FILE_ID = st.text(min_size=1, max_size=60)
SIZE = st.one_of(st.none(), st.integers(0, 2**40))
SMALL = st.integers(0, 10_000)
MAYBE = st.none
MIME = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "image/jpeg",
            "image/png",
            "image/webp",
            "application/pdf",
            "text/plain",
            "audio/ogg",
            "audio/mpeg",
            "video/mp4",
            "application/octet-stream",
            "IMAGE/PNG",
            "",
        ]
    ),
    SHORT,
)
FILE_NAME = st.one_of(
    st.none(),
    st.sampled_from(["a.pdf", "notes.TXT", "x.py", ".pdf", "pdf", "a.b.c.md", "../../etc/passwd"]),
    SHORT,
)
CALLBACK_PREFIXES = ["m", "p", "md", "s", "pf", "mo", "sw", "pay", "rn", "fg"]
VALID_CALLBACKS = [
    *(f"m:{a}" for a in ("home", "new", "model", "image", "status", "settings", "help", "vip")),
    "s:lang:ru",
    "s:lang:en",
    "s:reasoning:on",
    "s:reasoning:off",
    *(f"pf:{a}" for a in ("modes", "instructions", "set", "clear")),
    *(f"fg:{a}" for a in ("ask", "yes", "no")),
    "pay:stars",
    "pay:fiat",
    "rn:1",
    "rn:0",
    "p:chatgpt",
    "p:deepseek",
    "md:chatgpt-instant",
    "md:deepseek-thinking",
    "mo:general",
    "mo:translator",
    "sw:chatgpt-instant",
    "sw:deepseek-standard",
]
CALLBACK_DATA = st.one_of(
    st.sampled_from(VALID_CALLBACKS),
    st.builds(
        lambda prefix, parts: ":".join([prefix, *parts]),
        st.sampled_from(CALLBACK_PREFIXES),
        st.lists(st.text(max_size=20), max_size=4),
    ),
    st.text(max_size=64),
)
CHAT_TYPES = ["private", "group", "supergroup", "channel"]
LANGUAGES = st.one_of(
    st.none(), st.sampled_from(["ru", "en", "de", "uk", "kk", "", "zh-hans"]), SHORT
)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def without_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


@st.composite
def users(draw: st.DrawFn) -> dict[str, Any]:
    return without_none(
        # A few people who keep writing (the quota, the rate limit), and strangers.
        id=draw(st.one_of(st.sampled_from(POOL), st.integers(1, 2**52))),
        is_bot=draw(st.booleans()) if draw(st.integers(0, 9)) == 0 else False,
        first_name=draw(st.one_of(st.just("Anna"), st.text(max_size=64))),
        last_name=draw(optional(SHORT)),
        username=draw(optional(st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,31}", fullmatch=True))),
        language_code=draw(LANGUAGES),
        is_premium=draw(optional(st.booleans())),
    )


@st.composite
def chats(draw: st.DrawFn, user: dict[str, Any] | None = None) -> dict[str, Any]:
    kind = draw(st.sampled_from(CHAT_TYPES))
    if kind == "private" and user is not None and draw(st.booleans()):
        return {"id": user["id"], "type": "private", "first_name": user["first_name"]}
    return without_none(
        id=draw(st.integers(-(10**13), 10**13)),
        type=kind,
        title=draw(optional(SHORT)),
        username=draw(optional(st.from_regex(r"[a-z]{5,12}", fullmatch=True))),
        is_forum=draw(optional(st.booleans())),
    )


def photo_sizes() -> st.SearchStrategy[list[dict[str, Any]]]:
    size = st.fixed_dictionaries(
        {"file_id": FILE_ID, "file_unique_id": FILE_ID, "width": SMALL, "height": SMALL},
        optional={"file_size": st.integers(0, 2**40)},
    )
    return st.lists(size, min_size=1, max_size=4)


def entities() -> st.SearchStrategy[list[dict[str, Any]]]:
    entity = st.fixed_dictionaries(
        {
            "type": st.sampled_from(["bold", "italic", "code", "url", "mention", "bot_command"]),
            "offset": st.integers(0, 500),
            "length": st.integers(0, 500),
        }
    )
    return st.lists(entity, max_size=3)


@st.composite
def commands(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.one_of(st.sampled_from([*COMMANDS, "refund", "image", "nope"]), SHORT))
    mention = draw(st.sampled_from(["", "@pomogator_bot", "@other_bot", "@"]))
    args = draw(st.one_of(st.just(""), st.builds(" {}".format, PLAIN_TEXT)))
    head = f"/{name}{mention}"
    return {
        "text": head + args,
        "entities": [
            {"type": "bot_command", "offset": 0, "length": len(head.encode("utf-16-le")) // 2}
        ],
    }


def contents() -> st.SearchStrategy[dict[str, Any]]:
    """What a message carries: one kind of content, with random fields."""
    caption = optional(PLAIN_TEXT)
    file_fields = {"file_id": FILE_ID, "file_unique_id": FILE_ID}
    return st.one_of(
        st.builds(
            lambda text, ents: without_none(text=text, entities=ents or None),
            PLAIN_TEXT,
            entities(),
        ),
        commands(),
        st.builds(lambda p, c: without_none(photo=p, caption=c), photo_sizes(), caption),
        st.fixed_dictionaries(
            {
                "voice": st.fixed_dictionaries(
                    {**file_fields, "duration": st.integers(0, 10**6)},
                    optional={"mime_type": MIME, "file_size": st.integers(0, 2**40)},
                )
            },
            optional={"caption": PLAIN_TEXT},
        ),
        st.fixed_dictionaries(
            {
                "audio": st.fixed_dictionaries(
                    {**file_fields, "duration": st.integers(0, 10**6)},
                    optional={
                        "mime_type": MIME,
                        "file_size": st.integers(0, 2**40),
                        "file_name": FILE_NAME,
                    },
                )
            }
        ),
        st.fixed_dictionaries(
            {
                "video_note": st.fixed_dictionaries(
                    {**file_fields, "length": SMALL, "duration": st.integers(0, 10**6)},
                    optional={"file_size": st.integers(0, 2**40)},
                )
            }
        ),
        st.fixed_dictionaries(
            {
                "document": st.fixed_dictionaries(
                    file_fields,
                    optional={
                        "mime_type": MIME,
                        "file_size": st.integers(0, 2**40),
                        "file_name": FILE_NAME,
                    },
                )
            },
            optional={"caption": PLAIN_TEXT},
        ),
        st.builds(
            lambda doc: {
                "animation": {**doc, "width": 1, "height": 1, "duration": 1},
                "document": doc,
            },
            st.fixed_dictionaries(file_fields, optional={"mime_type": MIME}),
        ),
        st.fixed_dictionaries(
            {
                "sticker": st.fixed_dictionaries(
                    {
                        **file_fields,
                        "type": st.sampled_from(["regular", "mask", "custom_emoji"]),
                        "width": SMALL,
                        "height": SMALL,
                        "is_animated": st.booleans(),
                        "is_video": st.booleans(),
                    },
                    optional={"emoji": SHORT},
                )
            }
        ),
        st.fixed_dictionaries(
            {
                "location": st.fixed_dictionaries(
                    {"latitude": st.floats(-90, 90), "longitude": st.floats(-180, 180)}
                )
            }
        ),
        st.fixed_dictionaries(
            {
                "contact": st.fixed_dictionaries(
                    {"phone_number": SHORT, "first_name": SHORT},
                    optional={"user_id": st.integers(1, 2**52), "vcard": SHORT},
                )
            }
        ),
        st.fixed_dictionaries(
            {
                "video": st.fixed_dictionaries(
                    {**file_fields, "width": SMALL, "height": SMALL, "duration": SMALL}
                )
            }
        ),
        st.fixed_dictionaries(
            {"dice": st.fixed_dictionaries({"emoji": st.just("🎲"), "value": st.integers(1, 6)})}
        ),
        st.builds(
            lambda users_: {"new_chat_members": users_}, st.lists(users(), min_size=1, max_size=2)
        ),
        st.fixed_dictionaries({"new_chat_title": SHORT}),
        # Payments as Telegram reports them (amounts, ids and currencies within its rules),
        # for payloads and charges nobody issued.
        st.fixed_dictionaries(
            {
                "successful_payment": st.fixed_dictionaries(
                    {
                        "currency": st.sampled_from(["XTR", "USD", "EUR", "RUB"]),
                        "total_amount": st.integers(1, 10**9),
                        "invoice_payload": st.text(min_size=1, max_size=128),
                        "telegram_payment_charge_id": st.text(min_size=1, max_size=64),
                        "provider_payment_charge_id": st.text(max_size=64),
                    },
                    optional={
                        "subscription_expiration_date": st.integers(NOW, 2**32 - 1),
                        "is_recurring": st.booleans(),
                        "is_first_recurring": st.booleans(),
                    },
                )
            }
        ),
        st.fixed_dictionaries(
            {
                "refunded_payment": st.fixed_dictionaries(
                    {
                        "currency": st.just("XTR"),
                        "total_amount": st.integers(1, 10**9),
                        "invoice_payload": st.text(min_size=1, max_size=128),
                        "telegram_payment_charge_id": st.text(min_size=1, max_size=64),
                    }
                )
            }
        ),
        st.just({}),  # a service message the bot knows nothing about
    )


@st.composite
def messages(draw: st.DrawFn, *, nested: bool = True) -> dict[str, Any]:
    sender = draw(optional(users())) if draw(st.integers(0, 5)) == 0 else draw(users())
    chat = draw(chats(sender))
    message: dict[str, Any] = {
        "message_id": draw(st.integers(1, 2**31 - 1)),
        "date": NOW - draw(st.integers(0, 10**7)),
        "chat": chat,
        **draw(contents()),
    }
    if sender is not None:
        message["from"] = sender
    else:
        message["sender_chat"] = {"id": chat["id"], "type": chat["type"], "title": "chat"}
    if nested and draw(st.integers(0, 3)) == 0:
        reply = draw(messages(nested=False))
        if draw(st.booleans()):
            # A reply to something the bot sent: the instruction prompt, a photo offer...
            reply["from"] = BOT_USER.model_dump(exclude_none=True)
            reply["text"] = draw(
                st.sampled_from(["✏️ Custom instruction\nReply…", "✏️ Своя инструкция", "menu"])
            )
        message["reply_to_message"] = reply
    if draw(st.integers(0, 9)) == 0:
        message["edit_date"] = message["date"] + 1
    return message


@st.composite
def callback_queries(draw: st.DrawFn) -> dict[str, Any]:
    sender = draw(users())
    query: dict[str, Any] = {
        "id": draw(st.text(min_size=1, max_size=20)),
        "from": sender,
        "chat_instance": draw(SHORT),
    }
    data = draw(optional(CALLBACK_DATA))
    if data is not None:
        query["data"] = data
    where = draw(st.sampled_from(["message", "inaccessible", "inline"]))
    if where == "message":
        shown = draw(messages(nested=True))
        shown["from"] = BOT_USER.model_dump(exclude_none=True)
        query["message"] = shown
    elif where == "inaccessible":
        query["message"] = {
            "chat": draw(chats(sender)),
            "message_id": draw(st.integers(1, 2**31 - 1)),
            "date": 0,
        }
    else:
        query["inline_message_id"] = draw(st.text(min_size=1, max_size=20))
    if draw(st.integers(0, 9)) == 0:
        query["game_short_name"] = draw(SHORT)
    return query


def member(status: str, user: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"status": status, "user": user}
    if status == "kicked":
        fields["until_date"] = 0
    if status == "restricted":
        # Every permission Telegram lists for a restricted member (aiogram knows the set).
        required = [
            name
            for name, field in ChatMemberRestricted.model_fields.items()
            if field.is_required() and name not in ("status", "user")
        ]
        fields |= {name: False for name in required} | {"until_date": 0}
    return fields


@st.composite
def updates(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            ["message"] * 6
            + ["edited_message", "channel_post", "edited_channel_post"]
            + ["callback_query"] * 4
            + ["pre_checkout_query", "my_chat_member", "subscription"]
        )
    )
    update: dict[str, Any] = {"update_id": 0}
    if kind in ("message", "edited_message", "channel_post", "edited_channel_post"):
        message = draw(messages())
        if kind.startswith("edited"):
            message["edit_date"] = message["date"] + 1
        if "channel" in kind:
            message["chat"] = {"id": -(10**12) - 1, "type": "channel", "title": "News"}
            message.pop("from", None)
            message["sender_chat"] = message["chat"]
        update[kind] = message
    elif kind == "callback_query":
        update[kind] = draw(callback_queries())
    elif kind == "pre_checkout_query":
        update[kind] = {
            "id": draw(st.text(min_size=1, max_size=20)),
            "from": draw(users()),
            "currency": draw(st.sampled_from(["XTR", "USD", "", "EUR"])),
            "total_amount": draw(st.integers(-(2**31), 2**31)),
            "invoice_payload": draw(st.text(max_size=128)),
        }
    elif kind == "my_chat_member":
        user = draw(users())
        statuses = st.sampled_from(["member", "left", "kicked", "restricted"])
        update[kind] = {
            "chat": draw(chats(user)),
            "from": user,
            "date": NOW,
            "old_chat_member": member(draw(statuses), BOT_USER.model_dump(exclude_none=True)),
            "new_chat_member": member(draw(statuses), BOT_USER.model_dump(exclude_none=True)),
        }
    else:
        update[kind] = {
            "user": draw(users()),
            "invoice_payload": draw(st.text(max_size=128)),
            "state": draw(st.one_of(st.sampled_from(["canceled", "active", "failed"]), SHORT)),
        }
    return update


POOL = [8_800_000_000 + n for n in range(6)]  # replaced per run below, see `fuzz_env`


# --- the test ---------------------------------------------------------------------------------


@pytest.fixture
async def fuzz_env(settings, catalog, engine, fake_providers) -> AsyncIterator[tuple[BotEnv, list]]:
    """A bot whose error observer records every exception that reached it."""
    base = secrets.randbelow(10**9) * 1000 + 10**12
    POOL[:] = [base + n for n in range(6)]
    admin = POOL[-1]  # tries /refund with random arguments too
    async with (
        backend_client(settings, catalog, engine, fake_providers) as backend,
        replica(backend, session=FilesSession(), admin_ids=str(admin)) as bot,
    ):
        reached: list[tuple[dict[str, Any], BaseException]] = []

        async def spy(event: ErrorEvent) -> None:
            reached.append((event.update.model_dump(exclude_none=True), event.exception))
            raise SkipHandler  # on to the real error handler

        bot.dp.errors.register(spy)
        fake_providers.script("openai", text="Fuzzed **answer**.")
        yield bot, reached


def told_to_the_user(exc: BaseException, sentence: Callable[[str], bool]) -> bool:
    """A refusal the backend decided, with a sentence of its own."""
    return (
        isinstance(exc, BackendError)
        and not isinstance(exc, BackendUnavailable)
        and sentence(exc.code)
    )


_update_ids = itertools.count(secrets.randbelow(10**8) + 5 * 10**8)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the repository
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@given(update=updates())
async def test_no_generated_update_escapes_unhandled(fuzz_env, update):
    bot, reached = fuzz_env
    update["update_id"] = next(_update_ids)
    Update.model_validate(update)  # the strategy itself must make updates Telegram could send
    reached.clear()
    # Captured, not rendered: a failing example's traceback would be drawn at every shrink.
    with capture_logs() as logs:
        await bot.dp.feed_raw_update(bot.bot, update)  # raises if the error handler gave up
    english = bot.dp["i18n_middleware"].core.get_translator(locale="en")
    unexpected = [
        (type(exc).__name__, str(exc)[:200])
        for _, exc in reached
        if not told_to_the_user(exc, lambda code: english.has_message(f"error-{code}"))
    ]
    assert not unexpected, unexpected
    failures = {"update_failed", "apology_failed", "register_refused"}
    assert not [e for e in logs if e["event"] in failures], logs

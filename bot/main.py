"""The bot process: build the Bot and Dispatcher, then serve a webhook or poll."""

import asyncio
import functools
import gc
import signal

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.methods import TelegramMethod
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    FSInputFile,
    LinkPreviewOptions,
    Message,
    Update,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from pydantic import ValidationError
from redis.asyncio import Redis

from bot.config import BotMode, BotSettings
from bot.handlers import (
    admin,
    chat,
    common,
    errors,
    media,
    menu,
    model,
    payments,
    preferences,
    privacy,
)
from bot.handlers.chat import tell_lost
from bot.keyboards.menus import AskAgainCB, SwitchModelCB
from bot.middlewares.auth import ProfileCache, UserMiddleware
from bot.middlewares.blocked import BlockedMiddleware
from bot.middlewares.dedup import (
    MONEY_FIELDS,
    DeduplicationMiddleware,
    SeenUpdates,
    SharedClaimMiddleware,
)
from bot.middlewares.intake import IntakeGate
from bot.middlewares.ordering import OrderingMiddleware, SharedTurns, UserQueue
from bot.middlewares.subscription import AllowanceMiddleware
from bot.services.backend import BackendClient
from bot.services.broadcast import BroadcastRunner
from bot.services.claims import UpdateClaims, connect_redis
from bot.services.inflight import InFlightAnswers
from bot.utils.catalog import CatalogCache
from bot.utils.i18n import LANGUAGES, create_i18n, language_of
from bot.utils.inline_filters import run_filters_inline
from bot.utils.logging import get_logger
from bot.utils.metrics import BotMetrics, TelegramApiMetrics, UpdateMetricsMiddleware
from bot.utils.response_models import HoldResponseModels
from bot.utils.telegram_limits import TelegramLimits

log = get_logger("bot.main")

COMMANDS = (
    "start",
    "model",
    "new",
    "image",
    "status",
    "settings",
    "instructions",
    "forget",
    "subscribe",
    "help",
)
# Shown, after the others, only in operators' (ADMIN_IDS) own chats with the bot.
ADMIN_COMMANDS = (
    "admin",
    "stats",
    "find",
    "grant",
    "revoke",
    "block",
    "unblock",
    "refund",
    "broadcast",
)
ALLOWED_UPDATES = [
    "message",
    "callback_query",
    "pre_checkout_query",
    "subscription",
    "my_chat_member",
]


def create_bot(
    settings: BotSettings,
    session: AiohttpSession | None = None,
    limits: TelegramLimits | None = None,
    metrics: BotMetrics | None = None,
    redis: Redis | None = None,
) -> Bot:
    """A Bot pointed at Telegram or at TELEGRAM_API_BASE, with the outbound limiter (its
    budgets shared by every replica through `redis`)."""
    api = (
        TelegramAPIServer.from_base(settings.telegram_api_base)
        if settings.telegram_api_base
        else PRODUCTION
    )
    bot = Bot(
        token=settings.bot_token.get_secret_value(),
        session=session or AiohttpSession(api=api),
        default=DefaultBotProperties(link_preview=LinkPreviewOptions(is_disabled=True)),
    )
    bot.session.middleware(HoldResponseModels())
    bot.session.middleware(limits or create_limits(settings, redis))
    if metrics is not None:  # inside the limiter: every attempt of a retried call counts
        bot.session.middleware(TelegramApiMetrics(metrics))
    return bot


def create_limits(settings: BotSettings, redis: Redis | None = None) -> TelegramLimits:
    """The outbound limiter at the configured global and per-chat rates."""
    return TelegramLimits(
        global_rate=settings.telegram_global_rate,
        global_burst=settings.telegram_global_burst,
        per_chat_rate=settings.telegram_per_chat_rate,
        redis=redis,
        redis_prefix=settings.redis_key_prefix,
    )


def create_backend(settings: BotSettings) -> BackendClient:
    """The backend client, with room for BACKEND_MAX_STREAMS answers streaming at once."""
    return BackendClient(
        settings.backend_url,
        settings.internal_api_token.get_secret_value(),
        call_timeout_s=settings.backend_timeout_s,
        max_streams=settings.backend_max_streams,
    )


def create_dispatcher(
    settings: BotSettings,
    backend: BackendClient,
    redis: Redis | None = None,
    metrics: BotMetrics | None = None,
) -> Dispatcher:
    """Routers, middlewares and collaborators; handlers receive these as parameters."""
    Update.model_rebuild()  # built now, not by the first webhook request (bot.utils.lazy_types)
    profiles = ProfileCache(redis, settings.redis_key_prefix)
    lease = settings.replica_lease_s
    turns = inflight = None
    if redis is not None:
        turns = SharedTurns(redis, settings.redis_key_prefix, lease_s=lease)
        inflight = InFlightAnswers(redis, settings.redis_key_prefix, lease_s=lease)
    queue = UserQueue(max_waiting=settings.max_waiting_per_user, shared=turns)
    claims = UpdateClaims(backend, redis, prefix=settings.redis_key_prefix)
    broadcasts = BroadcastRunner(
        backend, settings.admin_ids, per_second=settings.broadcast_per_second
    )
    # No FSM: the bot keeps no per-chat state (the backend does). aiogram's default FSM would
    # run a middleware for every update and keep a record per user in memory for good.
    dp = Dispatcher(
        disable_fsm=True,
        settings=settings,
        backend=backend,
        profiles=profiles,
        catalogs=CatalogCache(backend),
        queue=queue,
        claims=claims,
        broadcasts=broadcasts,
        metrics=metrics or BotMetrics(),
    )
    i18n = create_i18n()

    async def busy(message: Message) -> None:
        language = language_of(
            await profiles.get(message.from_user.id) if message.from_user else None,
            message.from_user,
        )
        await message.answer(i18n.core.get("busy", language))

    # Order matters: copies this replica already has dropped first, then the place in the
    # user's queue (both before any await), then the claim shared by all replicas, then the
    # profile, then the language read from it.
    # First of all: every update is timed and its log lines carry its request id.
    dp.update.outer_middleware(UpdateMetricsMiddleware(dp["metrics"]))
    dp.update.outer_middleware(DeduplicationMiddleware(SeenUpdates()))
    dp.update.outer_middleware(
        OrderingMiddleware(
            queue,
            busy,
            answering_prefixes=(SwitchModelCB.__prefix__, AskAgainCB.__prefix__),
            inflight=inflight,
        )
    )
    dp.update.outer_middleware(IntakeGate(settings.intake_limit))
    dp.update.outer_middleware(SharedClaimMiddleware(claims))
    dp.update.outer_middleware(UserMiddleware(backend, profiles))
    i18n.setup(dispatcher=dp)
    dp.update.outer_middleware(BlockedMiddleware(settings.admin_ids))
    dp.update.outer_middleware(AllowanceMiddleware())
    dp.include_routers(
        errors.create_router(),
        admin.create_router(),  # before chat: a reply to the broadcast prompt
        menu.create_router(),
        model.create_router(),
        payments.create_router(),
        preferences.create_router(),  # before chat: a reply to the instruction prompt
        privacy.create_router(),
        media.create_router(),  # before chat: /image is text too
        chat.create_router(),
        common.create_router(),
    )
    run_filters_inline(dp)
    dp.startup.register(set_commands)
    # Running broadcasts resume from their cursor at start-up.
    dp.startup.register(broadcasts.start)
    dp.shutdown.register(broadcasts.stop)
    if inflight is not None:

        async def watch_lost_answers(bot: Bot) -> None:
            await inflight.start(functools.partial(tell_lost, bot, i18n.core))

        dp.startup.register(watch_lost_answers)
        dp.shutdown.register(inflight.stop)
    return dp


async def set_commands(bot: Bot, dispatcher: Dispatcher) -> None:
    """The command menu in Russian and English (and English for everyone else); operators see
    theirs too, in their own chats with the bot."""
    i18n = dispatcher["i18n_middleware"]

    def menu(names: tuple[str, ...], language: str | None) -> list[BotCommand]:
        locale = language or "en"
        return [BotCommand(command=c, description=i18n.core.get(f"cmd-{c}", locale)) for c in names]

    languages = (None, *LANGUAGES)
    for language in languages:
        await bot.set_my_commands(menu(COMMANDS, language), language_code=language)
    for admin_id in sorted(dispatcher["settings"].admin_ids):
        scope = BotCommandScopeChat(chat_id=admin_id)
        try:
            for language in languages:
                commands = menu(COMMANDS + ADMIN_COMMANDS, language)
                await bot.set_my_commands(commands, scope=scope, language_code=language)
        except (TelegramBadRequest, TelegramForbiddenError) as exc:
            # Telegram knows no chat with an operator who never started the bot: the commands
            # work all the same, only the menu lacks them until the next start.
            log.warning("admin_menu_not_set", admin_id=admin_id, error=exc.message)


def create_redis(settings: BotSettings) -> Redis | None:
    """The shared claim store, when REDIS_URL is set (connected lazily, on first use)."""
    return connect_redis(settings.redis_url) if settings.redis_url else None


async def serve_metrics(metrics: BotMetrics, host: str, port: int) -> web.AppRunner:
    """A small HTTP server with /metrics and /health; the caller cleans the runner up."""
    app = web.Application()
    app.router.add_get("/metrics", metrics.page())

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def freeze_startup_heap() -> None:
    """Keep what startup built (aiogram's types and validators, the app) out of the collector.

    It lives as long as the process; a full collection walking it paused every update for
    ~170 ms.
    """
    gc.freeze()


async def run_polling(settings: BotSettings) -> None:
    backend = create_backend(settings)
    redis = create_redis(settings)
    metrics = BotMetrics()
    bot = create_bot(settings, metrics=metrics, redis=redis)
    dp = create_dispatcher(settings, backend, redis, metrics)
    # Polling needs no webhook port, so /metrics (and /health) are served there instead.
    scrape = await serve_metrics(metrics, settings.bot_host, settings.bot_port)
    freeze_startup_heap()
    try:
        await bot.delete_webhook(drop_pending_updates=False)
        log.info("bot_polling")
        await dp.start_polling(bot, allowed_updates=ALLOWED_UPDATES, handle_signals=True)
    finally:
        await scrape.cleanup()
        await backend.aclose()
        if redis is not None:
            await redis.aclose()
        await bot.session.close()


# Money moves in these updates: they are processed before Telegram gets its 200, so a failure
# makes Telegram deliver them again (the backend records each charge id once). Everything else
# is acknowledged at once and handled in the background: a chat answer can take minutes, longer
# than Telegram waits; a redelivery is dropped by the update claim, and the backend charges
# each (chat id, message id) once.
ACK_AFTER_PROCESSING = MONEY_FIELDS

# How long updates cancelled at the end of a drain get to record that they were given up.
CANCELLED_GRACE_S = 2.0


class WebhookHandler(SimpleRequestHandler):
    """aiogram's webhook handler, with payments acknowledged only once recorded, and nothing
    taken once the process is stopping."""

    draining = False

    async def handle(self, request: web.Request) -> web.Response:
        bot = await self.resolve_bot(request)
        if not self.verify_secret(request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""), bot):
            return web.Response(body="Unauthorized", status=401)
        try:
            update = await request.json(loads=bot.session.json_loads)
        except ValueError:
            return web.Response(body="Bad Request", status=400)
        if self.draining:
            # A request that was arriving as the drain began: taken now, it could not be
            # answered. Telegram sends it again, to this bot's next process or another replica.
            return web.Response(body="Stopping", status=503, headers={"Retry-After": "1"})
        message = update.get("message") if isinstance(update, dict) else None
        if isinstance(message, dict) and any(key in message for key in ACK_AFTER_PROCESSING):
            try:
                await self.dispatcher.feed_raw_update(bot=bot, update=update, **self.data)
            except Exception as exc:  # not recorded: Telegram must retry
                log.error(
                    "update_not_acknowledged",
                    update_id=update.get("update_id"),
                    error=type(exc).__name__,
                )
                return web.json_response({"ok": False}, status=503)
            return web.json_response({})
        return self._handle_in_background(bot, update)

    __call__ = handle

    def _handle_in_background(self, bot: Bot, update: object) -> web.Response:
        """Acknowledge at once and handle the update in a task, as aiogram's background mode
        does, but from the body already read (aiogram reads it again) and holding only the
        Update while the answer takes its time, not the decoded JSON as well."""
        try:
            parsed = Update.model_validate(update, context={"bot": bot})
        except ValidationError as exc:
            # Telegram would only send it again; aiogram would have failed on it the same way.
            log.error("update_invalid", errors=exc.error_count())
            return web.json_response({})
        task = asyncio.create_task(self._feed(bot, parsed))
        self._background_feed_update_tasks.add(task)
        task.add_done_callback(self._background_feed_update_tasks.discard)
        return web.json_response({})

    async def _feed(self, bot: Bot, update: Update) -> None:
        try:
            result = await self.dispatcher.feed_update(bot, update, **self.data)
        except Exception:
            log.exception("update_unhandled", update_id=update.update_id)
            return
        if isinstance(result, TelegramMethod):
            await self.dispatcher.silent_call_request(bot=bot, result=result)


WEBHOOK_HANDLER = web.AppKey("webhook_handler", WebhookHandler)


def create_webhook_app(
    settings: BotSettings,
    bot: Bot,
    dp: Dispatcher,
    backend: BackendClient,
    redis: Redis | None = None,
) -> web.Application:
    """The aiohttp app Telegram posts to; requests with a wrong secret get 401."""
    app = web.Application()
    handler = WebhookHandler(
        dispatcher=dp, bot=bot, secret_token=settings.webhook_secret.get_secret_value()
    )
    handler.register(app, path=settings.webhook_path)
    app[WEBHOOK_HANDLER] = handler
    setup_application(app, dp, bot=bot)

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/health", health)
    # Not routed by nginx: only a scraper on the services' network reaches it.
    app.router.add_get("/metrics", dp["metrics"].page())

    async def on_startup(_app: web.Application) -> None:
        await bot.set_webhook(
            url=settings.webhook_base_url.rstrip("/") + settings.webhook_path,
            secret_token=settings.webhook_secret.get_secret_value(),
            allowed_updates=ALLOWED_UPDATES,
            # A self-signed certificate must be uploaded, or Telegram cannot verify nginx.
            certificate=FSInputFile(settings.webhook_cert) if settings.webhook_cert else None,
        )
        log.info("webhook_set", path=settings.webhook_path)
        freeze_startup_heap()

    async def on_shutdown(_app: web.Application) -> None:
        # Finish answers in flight (bounded) before the sessions close.
        handler.draining = True
        pending = list(handler._background_feed_update_tasks)
        if pending:
            log.info("draining", in_flight=len(pending))
            _done, still = await asyncio.wait(pending, timeout=settings.shutdown_grace_s)
            for task in still:
                task.cancel()
            if still:  # cancelled, they hand their messages over (bot.services.inflight)
                await asyncio.wait(still, timeout=CANCELLED_GRACE_S)
        await dp["broadcasts"].stop()  # reports its last batch: the backend must be open
        await backend.aclose()
        if redis is not None:
            await redis.aclose()

    app.on_startup.append(on_startup)
    # First of the shutdown callbacks: the dispatcher's own (which unload the translations)
    # and the bot session's close must wait until the answers in flight are delivered.
    app.on_shutdown.insert(0, on_shutdown)
    return app


async def run_webhook(settings: BotSettings) -> None:
    backend = create_backend(settings)
    redis = create_redis(settings)
    metrics = BotMetrics()
    bot = create_bot(settings, metrics=metrics, redis=redis)
    dp = create_dispatcher(settings, backend, redis, metrics)
    app = create_webhook_app(settings, bot, dp, backend, redis)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.bot_host, settings.bot_port)
    await site.start()
    log.info("bot_webhook_listening", host=settings.bot_host, port=settings.bot_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("bot_stopping")
    await runner.cleanup()
    log.info("bot_stopped")


async def run(settings: BotSettings) -> None:
    if settings.bot_mode is BotMode.POLLING:
        await run_polling(settings)
    else:
        await run_webhook(settings)

"""Prometheus metrics of the bot, on a registry of its own per process (tests stay isolated).

`create_dispatcher` puts one `BotMetrics` in the dispatcher's workflow data under the key
`metrics`, so handlers and start-up callbacks receive it: the broadcast runner counts each
copy with `metrics.broadcast_messages.labels(outcome="delivered").inc()` (outcomes:
delivered, blocked, failed). The webhook app serves them at GET /metrics; in polling mode a
small HTTP server on METRICS_PORT does.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog
from aiogram import BaseMiddleware
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods.base import TelegramType
from aiogram.types import TelegramObject, Update
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response, TelegramMethod

UPDATE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
# Telegram's error classes by the HTTP status they stand for ("network": no answer at all).
ERROR_CODES: tuple[tuple[type[TelegramAPIError], str], ...] = (
    (TelegramRetryAfter, "429"),
    (TelegramForbiddenError, "403"),
    (TelegramUnauthorizedError, "401"),
    (TelegramNotFound, "404"),
    (TelegramConflictError, "409"),
    (TelegramEntityTooLarge, "413"),
    (TelegramBadRequest, "400"),
    (TelegramServerError, "5xx"),
    (TelegramNetworkError, "network"),
)


def error_code(error: TelegramAPIError) -> str:
    for kind, code in ERROR_CODES:
        if isinstance(error, kind):
            return code
    return "other"


class BotMetrics:
    """Every metric the bot exports, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.update_duration = Histogram(
            "pomogator_bot_update_duration_seconds",
            "Time to handle one update, by its type.",
            ["type"],
            buckets=UPDATE_BUCKETS,
            registry=r,
        )
        self.updates = Counter(
            "pomogator_bot_updates",
            "Updates by type and outcome (handled, unhandled, error).",
            ["type", "outcome"],
            registry=r,
        )
        self.telegram_api_errors = Counter(
            "pomogator_telegram_api_errors",
            "Bot API calls that failed, by method and HTTP status (every attempt).",
            ["method", "code"],
            registry=r,
        )
        self.telegram_429 = Counter(
            "pomogator_telegram_429",
            "Flood-control answers (429) from the Bot API, by method.",
            ["method"],
            registry=r,
        )
        self.answers_in_flight = Gauge(
            "pomogator_bot_answers_in_flight",
            "User messages being handled right now (each may be an answer being streamed).",
            registry=r,
        )
        self.broadcast_messages = Counter(
            "pomogator_broadcast_messages",
            "Broadcast copies by outcome (delivered, blocked, failed).",
            ["outcome"],
            registry=r,
        )

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def page(self) -> Callable[[web.Request], Awaitable[web.Response]]:
        """An aiohttp handler serving these metrics."""

        async def metrics(_request: web.Request) -> web.Response:
            body, content_type = self.render()
            return web.Response(body=body, headers={"Content-Type": content_type})

        return metrics


class UpdateMetricsMiddleware(BaseMiddleware):
    """Outermost update middleware: a request id for the update's logs, and its timing.

    The request id (`upd-<update_id>`) is bound in structlog's context, so every log line
    of the update carries it and the backend client forwards it as X-Request-ID.
    """

    def __init__(self, metrics: BotMetrics) -> None:
        self.metrics = metrics

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        kind = event.event_type
        started = time.perf_counter()
        outcome = "error"
        answering = kind == "message"
        if answering:
            self.metrics.answers_in_flight.inc()
        try:
            with structlog.contextvars.bound_contextvars(request_id=f"upd-{event.update_id}"):
                result = await handler(event, data)
            outcome = "unhandled" if result is UNHANDLED else "handled"
            return result
        finally:
            if answering:
                self.metrics.answers_in_flight.dec()
            self.metrics.updates.labels(type=kind, outcome=outcome).inc()
            self.metrics.update_duration.labels(type=kind).observe(time.perf_counter() - started)


class TelegramApiMetrics(BaseRequestMiddleware):
    """Session middleware counting failed Bot API calls; installed inside the rate limiter,
    so each retried attempt is counted."""

    def __init__(self, metrics: BotMetrics) -> None:
        self.metrics = metrics

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except TelegramAPIError as error:
            name = method.__api_method__
            code = error_code(error)
            self.metrics.telegram_api_errors.labels(method=name, code=code).inc()
            if code == "429":
                self.metrics.telegram_429.labels(method=name).inc()
            raise

"""The FastAPI application: routes, error rendering, request logging, lifespan."""

import asyncio
import contextlib
import gc
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api import (
    admin,
    conversations,
    credits,
    models,
    payments,
    privacy,
    process_message,
    trial,
    updates,
    users,
    webhook,
)
from backend.api.dependencies import require_internal_token
from backend.config import AppEnv, Settings
from backend.database.session import (
    create_engine,
    create_sessionmaker,
    create_statement_sessionmaker,
)
from backend.models.schemas import ErrorBody, HealthOut
from backend.services.catalog import Catalog, load_catalog
from backend.services.clock import Clock, utcnow
from backend.services.providers.registry import ProviderRegistry
from backend.services.sweeper import run_sweeper
from backend.utils.exceptions import DomainError
from backend.utils.logger import get_logger
from backend.utils.metrics import BackendMetrics, MetricsMiddleware, metrics_of

log = get_logger("backend.http")

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The one error shape of the API: `{"error": {"code", "message", "details"?}}`."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status_code, headers=headers)


def bind_state(
    app: FastAPI,
    settings: Settings,
    engine: AsyncEngine,
    catalog: Catalog,
    clock: Clock = utcnow,
    providers: ProviderRegistry | None = None,
) -> None:
    """Hand the app what its dependencies give out."""
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.statement_sessionmaker = create_statement_sessionmaker(engine)
    app.state.catalog = catalog
    app.state.clock = clock
    app.state.providers = providers or ProviderRegistry({})


def create_app(
    settings: Settings,
    catalog: Catalog | None = None,
    clock: Clock = utcnow,
    metrics: BackendMetrics | None = None,
) -> FastAPI:
    """Build the app; the engine is created in the lifespan, never at import."""
    catalog = catalog or load_catalog(settings.model_catalog_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        providers = ProviderRegistry.from_settings(settings, catalog)
        bind_state(app, settings, engine, catalog, clock, providers)
        sweeper = asyncio.create_task(run_sweeper(app.state.sessionmaker, settings, clock))
        # What is alive now (modules, validators, the app) lives as long as the process: out of
        # the collector's sight, a full collection no longer walks it and pauses every request.
        gc.freeze()
        log.info(
            "backend_started",
            env=settings.app_env.value,
            models=len(catalog.models),
            providers=[key for key in catalog.providers if providers.available(key)],
        )
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await providers.aclose()
            await engine.dispose()
            log.info("backend_stopped")

    # The schema and its pages are served only in development: in production every route but
    # /health and the signed webhook needs the token, and these pages take none.
    development = settings.app_env == AppEnv.DEVELOPMENT
    app = FastAPI(
        title="Pomogator backend",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url="/openapi.json" if development else None,
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestLogMiddleware)
    # Outermost: the time includes the body limit and the request log.
    app.state.metrics = metrics = metrics or BackendMetrics()
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    install_error_handlers(app)

    api = APIRouter(
        prefix="/api/v1",
        dependencies=[Depends(require_internal_token)],
        responses={
            400: {"model": ErrorBody, "description": "bad_request: a body that is not UTF-8 JSON"},
            401: {"model": ErrorBody, "description": "unauthorized"},
            413: {"model": ErrorBody, "description": "payload_too_large"},
            404: {"model": ErrorBody, "description": "user_not_found and other unknown ids"},
            422: {"model": ErrorBody, "description": "validation_error and rule refusals"},
            503: {"model": ErrorBody, "description": "database_unavailable"},
        },
    )
    api.include_router(users.router)
    api.include_router(credits.router)
    api.include_router(trial.router)
    api.include_router(process_message.router)
    api.include_router(models.router)
    api.include_router(conversations.router)
    api.include_router(payments.router)
    api.include_router(privacy.router)
    api.include_router(updates.router)
    api.include_router(admin.router)
    app.include_router(api)
    app.include_router(webhook.router)

    @app.get("/health", tags=["health"], responses={503: {"model": HealthOut}})
    async def health(request: Request) -> JSONResponse:
        """200 when the database answers, 503 otherwise."""
        engine: AsyncEngine = request.app.state.engine
        try:
            async with asyncio.timeout(3):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except (OSError, DBAPIError, PoolTimeout, TimeoutError):
            metrics.database_up.set(0)
            body = HealthOut(status="unavailable", database="unavailable")
            return JSONResponse(body.model_dump(), status_code=503)
        metrics.database_up.set(1)
        return JSONResponse(HealthOut(status="ok", database="ok").model_dump())

    # Outside /api/v1 and without the token: nginx does not route it (see nginx/), so only a
    # scraper on the services' network reaches it.
    @app.get("/metrics", include_in_schema=False)
    async def metrics_page() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return app


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return error_response(exc.status_code, exc.code, exc.message, exc.details or None, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "loc": list(err.get("loc", ())),
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
            for err in exc.errors()
        ]
        return error_response(422, "validation_error", "The request is not valid.", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(OSError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database_unavailable", error=type(exc).__name__)
        metrics_of(request.app).database_errors.inc()
        return error_response(
            503,
            "database_unavailable",
            "The database is unavailable; try again shortly.",
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error=type(exc).__name__)
        return error_response(500, "internal_error", "Something went wrong on our side.")


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` (413) before they are read into memory.

    A declared Content-Length over the limit is refused at once; a body without one (chunked)
    is counted as it arrives and refused (an HTTP 413 raised into the route reading it) when
    it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise StarletteHTTPException(413, self._message())
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return f"The request body is larger than {self.max_bytes} bytes."

    async def _refuse(self, send: Send) -> None:
        response = error_response(
            413, "payload_too_large", self._message(), {"limit_bytes": self.max_bytes}
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(k.encode(), v.encode()) for k, v in response.headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": response.body})


class RequestLogMiddleware:
    """One log line per request, with a request id that follows it (X-Request-ID)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")[:64]
        request_id = incoming if incoming.isprintable() and incoming else uuid.uuid4().hex
        started = time.perf_counter()
        status_code = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                log.info(
                    "http_request",
                    method=scope.get("method"),
                    path=scope.get("path"),
                    status=status_code,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                )

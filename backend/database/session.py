"""The async engine and session factory, built at start-up and handed out per request."""

import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from backend.config import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    """An asyncpg engine whose dead connections are replaced before use (see `ping_when_idle`)."""
    server_settings = {"application_name": "pomogator-backend"}
    if settings.db_statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        connect_args={"server_settings": server_settings, "timeout": 5},
    )
    ping_when_idle(engine, settings.db_ping_idle_s)
    return engine


def ping_when_idle(engine: AsyncEngine, idle_s: float) -> None:
    """Check a pooled connection before use only if it sat idle for `idle_s` or longer.

    SQLAlchemy's `pool_pre_ping` pings on every checkout (BEGIN, a ping, ROLLBACK: three round
    trips), which under load costs more than the work itself. A connection returned a moment
    ago is alive; one that waited while PostgreSQL restarted is not, and a failed ping makes
    the pool replace it before the caller sees an error. (A disconnect found in use also
    invalidates every older connection of the pool.)
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    dbapi_errors = (engine.dialect.loaded_dbapi.Error, OSError)

    @event.listens_for(engine.sync_engine, "checkout")
    def _taken(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            dbapi_connection.ping()
        except dbapi_errors as exc:  # the pool retries with a new connection
            raise DisconnectionError(str(exc)) from exc


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (responses are built from them)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_statement_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions in autocommit: for use cases made of single atomic statements (answers).

    No BEGIN/COMMIT round trips around each statement; a use case whose statements must
    succeed or fail together does not belong here.
    """
    return create_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))


async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One session for one request; whatever was not committed is rolled back."""
    async with factory() as session:
        yield session

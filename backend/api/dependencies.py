"""What routes receive: settings, a database session, services, and the auth check."""

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.config import Settings
from backend.services.ai_service import ChatService
from backend.services.catalog import Catalog
from backend.services.clock import Clock
from backend.services.credit_service import CreditService
from backend.services.providers.registry import ProviderRegistry
from backend.services.subscription_service import SubscriptionService
from backend.services.user_service import UserService
from backend.utils.exceptions import DomainError
from backend.utils.metrics import BackendMetrics, metrics_of


class Unauthorized(DomainError):
    code = "unauthorized"
    status_code = 401
    default_message = "A valid internal API token is required."


_bearer = HTTPBearer(auto_error=False)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


SettingsDep = Annotated[Settings, Depends(get_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
ClockDep = Annotated[Clock, Depends(get_clock)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_statement_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session in autocommit, for use cases made of single atomic statements."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.statement_sessionmaker
    async with factory() as session:
        yield session


StatementSessionDep = Annotated[AsyncSession, Depends(get_statement_session)]


async def require_internal_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Every /api/v1 route needs `Authorization: Bearer <INTERNAL_API_TOKEN>` (constant-time)."""
    expected = settings.internal_api_token.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials else b""
    if (
        credentials is None
        or credentials.scheme.lower() != "bearer"
        or not hmac.compare_digest(given, expected)
    ):
        raise Unauthorized


async def get_user_service(
    session: SessionDep, settings: SettingsDep, catalog: CatalogDep, clock: ClockDep
) -> UserService:
    return UserService(session, settings, catalog, clock)


async def get_credit_service(session: SessionDep, clock: ClockDep) -> CreditService:
    return CreditService(session, clock)


async def get_subscription_service(
    session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> SubscriptionService:
    return SubscriptionService(session, settings, clock)


async def get_registration_service(
    session: StatementSessionDep, settings: SettingsDep, catalog: CatalogDep, clock: ClockDep
) -> UserService:
    # Registration is one statement: no BEGIN/COMMIT round trips around it.
    return UserService(session, settings, catalog, clock)


UserServiceDep = Annotated[UserService, Depends(get_user_service)]
RegistrationServiceDep = Annotated[UserService, Depends(get_registration_service)]
CreditServiceDep = Annotated[CreditService, Depends(get_credit_service)]
SubscriptionServiceDep = Annotated[SubscriptionService, Depends(get_subscription_service)]


async def get_chat_service(
    request: Request, settings: SettingsDep, catalog: CatalogDep, clock: ClockDep
) -> ChatService:
    # An answer is a few single statements (read, reserve, settle): no transactions around them.
    sessions: async_sessionmaker[AsyncSession] = request.app.state.statement_sessionmaker
    providers: ProviderRegistry = request.app.state.providers
    return ChatService(
        sessions, settings, catalog, providers, clock, metrics=metrics_of(request.app)
    )


ChatServiceDep = Annotated[ChatService, Depends(get_chat_service)]


def get_metrics(request: Request) -> BackendMetrics:
    return metrics_of(request.app)


MetricsDep = Annotated[BackendMetrics, Depends(get_metrics)]

"""Backend fixtures (shared with the bot tests): settings, engine, sessions, the answering API."""

import itertools
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from backend.api.dependencies import get_session, get_statement_session
from backend.config import AppEnv, Settings
from backend.database.session import create_sessionmaker
from backend.main import bind_state, create_app
from backend.models.schemas import TelegramProfile
from backend.services.catalog import Catalog, load_catalog
from backend.services.user_service import UserService

TEST_TOKEN = "test-internal-token-0123456789abcdef"

_ids = itertools.count(int.from_bytes(os.urandom(3), "big") * 1000 + 10_000)


def next_telegram_id() -> int:
    """A Telegram id no other test in this run uses (committed tests share the database)."""
    return next(_ids)


class FrozenClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        _env_file=None,
        app_env=AppEnv.DEVELOPMENT,
        database_url=database_url,
        internal_api_token=TEST_TOKEN,
        free_messages_limit=10,
        vip_period_days=30,
        db_pool_size=20,
        db_max_overflow=60,
    )


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(settings.database_url, pool_size=20, max_overflow=60)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session whose commits are savepoints inside a transaction rolled back after the test."""
    async with engine.connect() as conn:
        outer = await conn.begin()
        db = AsyncSession(
            bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield db
        finally:
            await db.close()
            await outer.rollback()


@pytest.fixture
def committing_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Real, separately connected sessions: for races, where each request has its own."""
    return create_sessionmaker(engine)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def app(
    settings: Settings,
    catalog: Catalog,
    engine: AsyncEngine,
    session: AsyncSession,
    clock: FrozenClock,
):
    application = create_app(settings, catalog, clock)
    bind_state(application, settings, engine, catalog, clock)

    async def rolled_back_session() -> AsyncIterator[AsyncSession]:
        yield session

    application.dependency_overrides[get_session] = rolled_back_session
    application.dependency_overrides[get_statement_session] = rolled_back_session
    return application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    """The API over ASGI, authenticated like the bot."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://backend.test",
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
    ) as http:
        yield http


async def register(
    session: AsyncSession,
    settings: Settings,
    catalog: Catalog,
    telegram_id: int | None = None,
    language_code: str | None = "en",
    clock: Callable[[], datetime] | None = None,
) -> int:
    """Register a new user through the service; their Telegram id."""
    telegram_id = telegram_id or next_telegram_id()
    service = UserService(session, settings, catalog, **({"clock": clock} if clock else {}))
    await service.register(
        TelegramProfile(
            telegram_id=telegram_id,
            username=f"user{telegram_id}",
            first_name="Test",
            language_code=language_code,
        )
    )
    return telegram_id


@pytest.fixture
async def fake_providers():
    """OpenAI, Perplexity and DeepSeek on loopback, scriptable per test."""
    from tests.fakes.providers import start_fake_providers

    async with start_fake_providers() as fake:
        yield fake


def fast_catalog(catalog: Catalog) -> Catalog:
    """The shipped catalog with short timeouts and no background polling delays for tests."""
    models = []
    for entry in catalog.models:
        update: dict[str, object] = {"timeout_s": 3.0}
        if entry.key == "chatgpt-thinking":
            update["history_budget_tokens"] = 60
        models.append(entry.model_copy(update=update))
    return catalog.model_copy(update={"models": models})


def provider_settings(settings: Settings, fake, *, without: tuple[str, ...] = ()) -> Settings:
    """Settings whose provider base URLs point at the fake (keys unset for `without`)."""
    values: dict[str, object] = {"provider_max_retries": 0}
    for name in ("openai", "perplexity", "deepseek"):
        values[f"{name}_base_url"] = fake.base_url(name)
        values[f"{name}_api_key"] = SecretStr("" if name in without else f"test-{name}-key")
    return settings.model_copy(update=values)


async def answering_client(settings: Settings, catalog: Catalog, engine: AsyncEngine):
    """An API client whose backend answers through the real adapters."""
    from backend.services.providers.registry import ProviderRegistry

    registry = ProviderRegistry.from_settings(settings, catalog)
    application = create_app(settings, catalog)
    bind_state(application, settings, engine, catalog, providers=registry)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application),
        base_url="http://backend.test",
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
        timeout=30,
    )
    return client, registry


@pytest.fixture
async def api(settings, catalog, engine, fake_providers):
    """The backend answering with every provider configured against the fake."""
    client, registry = await answering_client(
        provider_settings(settings, fake_providers), fast_catalog(catalog), engine
    )
    yield client
    await client.aclose()
    await registry.aclose()

"""/health tells whether the database answers."""

import gc

import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from backend.main import bind_state, create_app


async def test_health_is_503_when_the_database_is_unreachable(settings, catalog):
    app = create_app(settings, catalog)
    dead = create_async_engine(
        "postgresql+asyncpg://postgres@127.0.0.1:9/none", connect_args={"timeout": 1}
    )
    bind_state(app, settings, dead, catalog)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://backend.test"
        ) as client:
            response = await client.get("/health")
            api = await client.get(
                "/api/v1/users/5",
                headers={
                    "Authorization": f"Bearer {settings.internal_api_token.get_secret_value()}"
                },
            )
    finally:
        await dead.dispose()
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"
    assert api.status_code == 503
    assert api.json()["error"]["code"] == "database_unavailable"


async def test_startup_moves_the_heap_out_of_the_collectors_sight(settings, catalog):
    app = create_app(settings, catalog)
    gc.unfreeze()
    try:
        async with app.router.lifespan_context(app):
            frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()
    # The modules and the app are there: a full collection would walk every one of them.
    assert frozen > 10_000

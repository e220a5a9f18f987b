"""Every /api/v1 route demands the internal token; /health does not."""

import pytest

from backend.config import Settings
from backend.main import create_app
from backend.services.catalog import load_catalog


def api_routes() -> list[tuple[str, str]]:
    """Every (method, path) under /api/v1, read from the app so new routes are covered too."""
    settings = Settings(
        _env_file=None,
        app_env="development",
        internal_api_token="x",
    )
    app = create_app(settings, load_catalog())
    routes: list[tuple[str, str]] = []
    for path, operations in app.openapi()["paths"].items():
        # The payment webhook is public (through nginx) and signed instead: test_payments.
        if path.startswith("/api/v1") and not path.startswith("/api/v1/webhooks"):
            concrete = path.replace("{telegram_id}", "123").replace("{charge_id}", "c1")
            routes.extend((method.upper(), concrete) for method in sorted(operations))
    return routes


ROUTES = api_routes()
BAD_HEADERS = [
    pytest.param({}, id="no-header"),
    pytest.param({"Authorization": "Bearer wrong-token"}, id="wrong-token"),
    pytest.param({"Authorization": "Bearer "}, id="empty-token"),
    pytest.param({"Authorization": "Basic dGVzdDp0ZXN0"}, id="basic-scheme"),
    pytest.param({"Authorization": "test-internal-token-0123456789abcdef"}, id="no-scheme"),
]


def test_api_has_the_routes_of_the_foundation():
    paths = {path for _, path in ROUTES}
    assert {
        "/api/v1/users",
        "/api/v1/users/123",
        "/api/v1/credits/123",
        "/api/v1/trial/123",
    } <= paths


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("headers", BAD_HEADERS)
async def test_request_without_valid_token_is_refused(client, method, path, headers):
    client.headers.pop("Authorization", None)
    response = await client.request(method, path, headers=headers, json={"telegram_id": 123})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_request_with_the_token_is_let_in(client, method, path):
    response = await client.request(method, path, json={"telegram_id": 123})
    assert response.status_code != 401


async def test_health_needs_no_token(client):
    client.headers.pop("Authorization", None)
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}

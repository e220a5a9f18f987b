"""Who may call what: every /api/v1 route needs the internal token; two routes are public.

The routes are read from the app, so a route added later is covered without editing this file.
The public ones are /health and the payment webhook, which proves itself with its signature.
"""

import ast
import hmac
import inspect
import json
import re
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from pydantic import SecretStr

from backend.api import dependencies
from backend.api.dependencies import require_internal_token
from backend.config import Settings
from backend.main import create_app
from backend.services import payment_service
from backend.services.catalog import load_catalog
from backend.services.payment_service import sign
from backend.tests.fixtures import TEST_TOKEN

WEBHOOK = "/api/v1/webhooks/payments"
# /metrics is scraped on the internal network; nginx does not route it (tests/deploy).
PUBLIC = {("GET", "/health"), ("GET", "/metrics"), ("POST", WEBHOOK)}
# FastAPI's own pages: the schema and its viewers (see test_api_docs_are_off_in_production).
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
WEBHOOK_SECRET = "route-auth-webhook-secret"


def _app() -> FastAPI:
    settings = Settings(_env_file=None, app_env="development", internal_api_token="x")
    return create_app(settings, load_catalog())


def _operations(app: FastAPI) -> Iterator[tuple[str, str, bool]]:
    """(method, path, needs the token) of every route the app serves, in the schema or not."""
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        needs_token = dependant is not None and _needs_token(dependant)
        for method in sorted(route.methods or ()):
            yield method, route.path, needs_token


def _needs_token(dependant: Dependant) -> bool:
    return dependant.call is require_internal_token or any(
        _needs_token(sub) for sub in dependant.dependencies
    )


def _concrete(path: str) -> str:
    # "1" is a valid value of every path parameter (ids and charge ids alike).
    return re.sub(r"\{[^}]+\}", "1", path)


OPERATIONS = list(_operations(_app()))
PROTECTED = [
    pytest.param(method, path, id=f"{method} {path}")
    for method, path, _ in OPERATIONS
    if path.startswith("/api/v1") and (method, path) not in PUBLIC
]
BAD_AUTHORIZATION = [
    pytest.param(None, id="missing"),
    pytest.param(f"Bearer {TEST_TOKEN[:-1]}x", id="wrong"),
    pytest.param("Bearer wrong", id="wrong-length"),
    pytest.param("Bearer ", id="empty"),
    pytest.param("", id="empty-header"),
    pytest.param(f"Basic {TEST_TOKEN}", id="other-scheme"),
    pytest.param(TEST_TOKEN, id="no-scheme"),
]


def test_routes_are_found_in_the_app() -> None:
    """The enumeration sees the routes the bot uses (so an empty list cannot pass silently)."""
    paths = {path for _, path, _ in OPERATIONS}
    assert {
        "/api/v1/users",
        "/api/v1/messages",
        "/api/v1/payments/successful",
        "/api/v1/updates/claim",
        WEBHOOK,
        "/health",
    } <= paths
    assert len(PROTECTED) >= 15


def test_only_health_metrics_and_the_webhook_go_without_the_token() -> None:
    """Every route of the app depends on the token check, except these three (and the docs)."""
    without = {(method, path) for method, path, needs in OPERATIONS if not needs}
    assert {(method, path) for method, path in without if path not in DOCS} == PUBLIC


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION)
async def test_route_refuses_a_request_without_the_token(
    client, method: str, path: str, authorization: str | None
) -> None:
    client.headers.pop("Authorization", None)
    headers = {} if authorization is None else {"Authorization": authorization}
    # No body at all: the token is checked before the input is.
    response = await client.request(method, _concrete(path), headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"
    assert set(response.json()["error"]) <= {"code", "message", "details"}
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_route_lets_the_token_in(client, method: str, path: str) -> None:
    response = await client.request(method, _concrete(path), json={})
    assert response.status_code != 401, response.text


async def test_health_needs_no_token(client) -> None:
    client.headers.pop("Authorization", None)
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.fixture
def webhook(app, client, clock, settings):
    """The API with the payment webhook enabled; `client` carries no internal token."""
    app.state.settings = settings.model_copy(
        update={"payment_webhook_secret": SecretStr(WEBHOOK_SECRET)}
    )
    client.headers.pop("Authorization", None)
    return client


def _event() -> bytes:
    body = {
        "event_id": "route-auth-1",
        "type": "payment.refunded",  # of a charge nobody knows: remembered, nothing to refund
        "telegram_id": 1,
        "amount": 100,
        "currency": "EUR",
        "charge_id": "route-auth-charge",
    }
    return json.dumps(body).encode()


def _signed(clock, body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    timestamp = int(clock().timestamp())
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


async def test_webhook_takes_a_signed_event_without_the_token(webhook, clock) -> None:
    body = _event()
    response = await webhook.post(
        WEBHOOK,
        content=body,
        headers={"Content-Type": "application/json", "X-Pomogator-Signature": _signed(clock, body)},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"event_id": "route-auth-1", "duplicate": False}


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("t=1,v1=00", id="malformed"),
        pytest.param("wrong-secret", id="wrong-secret"),
        pytest.param("other-body", id="other-body"),
    ],
)
async def test_webhook_refuses_an_event_without_its_signature(webhook, clock, signature) -> None:
    body = _event()
    if signature == "wrong-secret":
        signature = _signed(clock, body, secret="not-the-secret")
    elif signature == "other-body":
        signature = _signed(clock, body.replace(b"100", b"999"))
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Pomogator-Signature"] = signature
    # The internal token is no substitute for the signature.
    headers["Authorization"] = f"Bearer {TEST_TOKEN}"
    response = await webhook.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "bad_signature"


def _function_ast(function: Any) -> ast.AST:
    return ast.parse(textwrap.dedent(inspect.getsource(function)))


def _compare_digest_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "compare_digest"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in {"hmac", "secrets"}
    ]


def _equality_operands(tree: ast.AST) -> list[str]:
    return [
        ast.unparse(operand)
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops)
        for operand in [node.left, *node.comparators]
    ]


@pytest.mark.parametrize(
    ("function", "secrets_named"),
    [
        pytest.param(
            require_internal_token,
            ("token", "credentials.credentials", "expected", "given"),
            id="token",
        ),
        pytest.param(payment_service.verify_signature, ("sign(", "given", "v1"), id="webhook"),
    ],
)
def test_secrets_are_compared_in_constant_time(
    function: Any, secrets_named: tuple[str, ...]
) -> None:
    """A static check: compare_digest does the comparing, and no == touches the secret."""
    tree = _function_ast(function)
    assert _compare_digest_calls(tree), f"{function.__name__} compares without compare_digest"
    for operand in _equality_operands(tree):
        assert not any(name in operand for name in secrets_named), operand


async def test_token_check_goes_through_compare_digest(client, monkeypatch) -> None:
    """And at run time: a wrong token of another length is still compared, not short-cut."""
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(dependencies.hmac, "compare_digest", spy)
    refused = await client.get("/api/v1/models", headers={"Authorization": "Bearer short"})
    allowed = await client.get("/api/v1/models")
    assert (refused.status_code, allowed.status_code) == (401, 200)
    assert (b"short", TEST_TOKEN.encode()) in seen
    assert (TEST_TOKEN.encode(), TEST_TOKEN.encode()) in seen


async def test_api_docs_are_off_in_production() -> None:
    import httpx

    settings = Settings(
        _env_file=None,
        app_env="production",
        internal_api_token=SecretStr("p" * 40),
        database_url="postgresql+asyncpg://u:p@127.0.0.1:1/none",
    )
    app = create_app(settings, load_catalog())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://backend.test"
    ) as http:
        for path in sorted(DOCS):
            assert (await http.get(path)).status_code in (401, 404), path

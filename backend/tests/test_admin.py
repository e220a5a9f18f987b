"""The operators' API: who may call it, the figures, user cards, VIP by hand, blocking."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select

from backend.config import Settings
from backend.main import create_app
from backend.models.database import (
    AdminAction,
    MessageLog,
    Subscription,
    Transaction,
    Trial,
    User,
)
from backend.services.catalog import load_catalog
from backend.tests.fixtures import (
    answering_client,
    fast_catalog,
    next_telegram_id,
    provider_settings,
    register,
)

ADMIN = 900_000_001
ADMIN_HEADERS = {"X-Admin-Id": str(ADMIN)}
# A day of its own, far from the real clock other tests' rows are stamped with.
TODAY = datetime(2031, 3, 15, 10, 0, tzinfo=UTC)


def _admin_routes() -> list[tuple[str, str]]:
    settings = Settings(_env_file=None, app_env="development", internal_api_token="x")
    app = create_app(settings, load_catalog())
    return sorted(
        (method, route.path)
        for route in iter_route_contexts(app.routes)
        if route.path.startswith("/api/v1/admin")
        for method in route.methods or ()
    )


ADMIN_ROUTES = _admin_routes()


@pytest.fixture
def admin_app(app, settings):
    app.state.settings = settings.model_copy(update={"admin_ids": frozenset({ADMIN})})
    return app


@pytest.fixture
def admin(admin_app, client):
    """The API as the bot calls it for an operator."""
    client.headers.update(ADMIN_HEADERS)
    return client


def test_every_admin_route_is_found() -> None:
    paths = {path for _, path in ADMIN_ROUTES}
    assert "/api/v1/admin/stats" in paths
    assert "/api/v1/admin/broadcasts/{broadcast_id}/progress" in paths
    assert len(ADMIN_ROUTES) == 13


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="missing"),
        pytest.param("12345", id="not-an-admin"),
        pytest.param(f"{ADMIN}0", id="admin-id-with-a-digit-more"),
        pytest.param(str(2**63 - 1), id="largest"),
    ],
)
async def test_admin_route_refuses_who_is_no_operator(
    admin_app, client, method: str, path: str, header: str | None
) -> None:
    headers = {} if header is None else {"X-Admin-Id": header}
    url = re.sub(r"\{[^}]+\}", "1", path)
    response = await client.request(method, url, headers=headers, json={})
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    "header", ["", "abc", "-5", "9" * 40, f"+{ADMIN}", f" {ADMIN}0", "1" * 5000]
)
async def test_admin_id_that_is_no_telegram_id_is_forbidden(admin_app, client, header):
    response = await client.get("/api/v1/admin/stats", headers={"X-Admin-Id": header})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


async def test_admin_route_still_needs_the_internal_token(admin_app, client) -> None:
    client.headers.pop("Authorization")
    response = await client.get("/api/v1/admin/stats", headers=ADMIN_HEADERS)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_no_operator_when_admin_ids_is_empty(client) -> None:
    response = await client.get("/api/v1/admin/stats", headers=ADMIN_HEADERS)
    assert response.status_code == 403


# The figures


async def _user_row(session, telegram_id: int) -> User:
    user = await session.scalar(select(User).where(User.telegram_id == telegram_id))
    assert user is not None
    return user


def _message(user: User, provider: str, model: str, status: str, cost: str | None, at: datetime):
    return MessageLog(
        user_id=user.id,
        provider=provider,
        model=model,
        status=status,
        charged=True,
        cost_usd=Decimal(cost) if cost is not None else None,
        created_at=at,
        completed_at=None if status == "pending" else at,
    )


def _payment(user: User, charge: str, amount: int, currency: str, paid_at: datetime, **extra):
    return Transaction(
        user_id=user.id,
        rail="telegram_stars" if currency == "XTR" else "telegram_provider",
        status=extra.pop("status", "paid"),
        amount=amount,
        currency=currency,
        telegram_payment_charge_id=charge,
        paid_at=paid_at,
        created_at=paid_at,
        **extra,
    )


async def test_stats_are_computed_from_what_happened(admin, session, settings, catalog, clock):
    clock.now = TODAY
    before = (await admin.get("/api/v1/admin/stats")).json()
    ids = [await register(session, settings, catalog) for _ in range(3)]
    a, b, c = [await _user_row(session, telegram_id) for telegram_id in ids]
    a.created_at = TODAY - timedelta(hours=2)  # new today
    b.created_at = TODAY - timedelta(days=3)
    earlier_this_month = TODAY - timedelta(days=10)
    last_month = datetime(2031, 2, 27, tzinfo=UTC)
    session.add_all(
        [
            _message(a, "openai", "chatgpt-instant", "success", "0.010000", TODAY),
            _message(a, "openai", "chatgpt-instant", "failed", None, TODAY),
            _message(b, "openai", "chatgpt-instant", "success", "0.020000", TODAY),
            _message(b, "deepseek", "deepseek-standard", "failed", None, TODAY),
            _message(b, "deepseek", "deepseek-standard", "pending", None, TODAY),
            _message(c, "openai", "chatgpt-instant", "success", "1.000000", earlier_this_month),
            _message(c, "openai", "chatgpt-instant", "success", "5.000000", last_month),
            # a paid this month; b paid and got the money back this month; c paid last month
            # and was refunded this month.
            _payment(a, "st-a", 250, "XTR", earlier_this_month),
            _payment(
                b,
                "st-b",
                250,
                "XTR",
                earlier_this_month,
                status="refunded",
                refunded_at=TODAY,
            ),
            _payment(c, "st-c", 250, "XTR", last_month, status="refunded", refunded_at=TODAY),
            _payment(c, "fiat-c", 499, "EUR", TODAY),
            Subscription(user_id=a.id, status="active", expires_at=TODAY + timedelta(days=20)),
            Subscription(user_id=b.id, status="refunded", expires_at=TODAY),
        ]
    )
    await session.flush()
    response = await admin.get("/api/v1/admin/stats")
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["users_total"] - before["users_total"] == 3
    assert stats["users_new_today"] == 1
    assert stats["vip_active"] - before["vip_active"] == 1
    assert stats["paying_users"] - before["paying_users"] == 2  # a and c (fiat)
    assert stats["conversion"] == pytest.approx(stats["paying_users"] / stats["users_total"], 1e-3)
    assert stats["messages_today"] == [
        {"provider": "deepseek", "model": "deepseek-standard", "count": 2, "failed": 1},
        {"provider": "openai", "model": "chatgpt-instant", "count": 3, "failed": 1},
    ]
    assert Decimal(stats["cost_today_usd"]) == Decimal("0.03")
    assert Decimal(stats["cost_month_usd"]) == Decimal("1.03")
    assert stats["revenue_month"] == [
        {"currency": "EUR", "amount": 499},
        {"currency": "XTR", "amount": 250 + 250 - 250 - 250},
    ]
    assert stats["refunds_month"] == 2
    assert stats["error_rate"] == [
        {"provider": "deepseek", "total": 1, "failed": 1, "rate": 1.0},
        {"provider": "openai", "total": 3, "failed": 1, "rate": pytest.approx(0.3333)},
    ]


async def test_stats_of_a_quiet_day_are_zero(admin, clock):
    clock.now = datetime(2032, 7, 1, tzinfo=UTC)
    stats = (await admin.get("/api/v1/admin/stats")).json()
    assert (stats["users_new_today"], stats["messages_today"], stats["error_rate"]) == (0, [], [])
    assert Decimal(stats["cost_today_usd"]) == Decimal(stats["cost_month_usd"]) == 0
    assert (stats["revenue_month"], stats["refunds_month"]) == ([], 0)
    assert 0 <= stats["conversion"] <= 1


# Finding a user


@pytest.mark.parametrize("form", ["{id}", "@user{id}", "user{id}", "@USER{id}", " {id} "])
async def test_lookup_finds_a_user_by_id_or_username(admin, session, settings, catalog, form):
    telegram_id = await register(session, settings, catalog)
    query = form.format(id=telegram_id)
    response = await admin.get("/api/v1/admin/users/lookup", params={"q": query})
    assert response.status_code == 200, response.text
    card = response.json()
    assert (card["telegram_id"], card["username"]) == (telegram_id, f"user{telegram_id}")
    assert (card["blocked"], card["vip_until"], card["cancel_stars_charge_id"]) == (
        False,
        None,
        None,
    )
    assert (card["free_messages_left"], card["messages_used"], card["messages_total"]) == (10, 0, 0)


@pytest.mark.parametrize("query", ["1", "@nobody_has_this_name", "9" * 30])
async def test_lookup_of_nobody_is_404(admin, query):
    response = await admin.get("/api/v1/admin/users/lookup", params={"q": query})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "user_not_found"


async def test_card_shows_usage_cost_and_newest_payments(admin, session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    user = await _user_row(session, telegram_id)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    session.add_all(
        [
            _message(user, "openai", "chatgpt-instant", "success", "0.100000", start),
            _message(user, "openai", "chatgpt-instant", "success", "0.250000", start),
            _message(user, "openai", "chatgpt-instant", "failed", None, start),
            *(
                _payment(user, f"card-{telegram_id}-{n}", 250, "XTR", start + timedelta(days=n))
                for n in range(12)
            ),
            Transaction(
                user_id=user.id, rail="telegram_stars", status="pending", amount=1, currency="XTR"
            ),
        ]
    )
    trial = await session.get(Trial, user.id)
    assert trial is not None
    trial.messages_left = 7
    await session.flush()
    card = (await admin.get("/api/v1/admin/users/lookup", params={"q": str(telegram_id)})).json()
    assert (card["messages_total"], Decimal(card["cost_total_usd"])) == (2, Decimal("0.35"))
    assert (card["free_messages_left"], card["messages_used"]) == (7, 3)
    assert [p["charge_id"] for p in card["payments"]] == [
        f"card-{telegram_id}-{n}" for n in range(11, 1, -1)
    ]
    assert card["payments"][0]["status"] == "paid"


# VIP by hand


async def _audit(session, telegram_id: int) -> list[tuple[str, int]]:
    rows = await session.execute(
        select(AdminAction.action, AdminAction.admin_telegram_id)
        .where(AdminAction.target_telegram_id == telegram_id)
        .order_by(AdminAction.id)
    )
    return [tuple(row) for row in rows]


async def test_grant_vip_extends_from_now_and_is_audited(admin, session, settings, catalog, clock):
    telegram_id = await register(session, settings, catalog)
    first = await admin.post(f"/api/v1/admin/users/{telegram_id}/vip", json={"days": 30})
    assert first.status_code == 200, first.text
    assert first.json()["vip_until"].startswith((clock.now + timedelta(days=30)).isoformat()[:19])
    second = await admin.post(f"/api/v1/admin/users/{telegram_id}/vip", json={"days": 365})
    assert second.json()["vip_until"].startswith((clock.now + timedelta(days=395)).isoformat()[:19])
    profile = (await admin.get(f"/api/v1/users/{telegram_id}")).json()
    assert profile["is_vip"] is True
    assert await _audit(session, telegram_id) == [("grant_vip", ADMIN), ("grant_vip", ADMIN)]


@pytest.mark.parametrize("days", [0, -1, 3651, "30", 1.5])
async def test_grant_vip_refuses_days_out_of_range(admin, session, settings, catalog, days):
    telegram_id = await register(session, settings, catalog)
    response = await admin.post(f"/api/v1/admin/users/{telegram_id}/vip", json={"days": days})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert await _audit(session, telegram_id) == []


@pytest.mark.parametrize(
    ("method", "action"),
    [
        ("POST", "vip"),
        ("DELETE", "vip"),
        ("POST", "block"),
        ("POST", "unblock"),
    ],
)
async def test_actions_on_an_unknown_user_are_404(admin, method, action):
    response = await admin.request(
        method, f"/api/v1/admin/users/{next_telegram_id()}/{action}", json={"days": 1}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "user_not_found"


async def test_revoke_ends_vip_now_and_names_the_stars_subscription_to_cancel(
    admin, session, settings, catalog, clock
):
    telegram_id = await register(session, settings, catalog)
    user = await _user_row(session, telegram_id)
    session.add(
        Subscription(
            user_id=user.id,
            status="active",
            expires_at=clock.now + timedelta(days=12),
            auto_renew=True,
            telegram_charge_id="stars-sub-1",
        )
    )
    await session.flush()
    response = await admin.delete(f"/api/v1/admin/users/{telegram_id}/vip")
    assert response.status_code == 200, response.text
    card = response.json()
    assert (card["vip_until"], card["auto_renew"]) == (None, False)
    assert card["cancel_stars_charge_id"] == "stars-sub-1"
    profile = (await admin.get(f"/api/v1/users/{telegram_id}")).json()
    assert profile["is_vip"] is False
    again = (await admin.delete(f"/api/v1/admin/users/{telegram_id}/vip")).json()
    assert again["cancel_stars_charge_id"] is None  # renewal is already off
    assert await _audit(session, telegram_id) == [("revoke_vip", ADMIN)] * 2


async def test_revoke_of_vip_granted_by_hand_has_nothing_to_cancel(
    admin, session, settings, catalog
):
    telegram_id = await register(session, settings, catalog)
    await admin.post(f"/api/v1/admin/users/{telegram_id}/vip", json={"days": 30})
    card = (await admin.delete(f"/api/v1/admin/users/{telegram_id}/vip")).json()
    assert (card["vip_until"], card["cancel_stars_charge_id"]) == (None, None)


# Blocking


async def test_block_and_unblock_show_in_card_and_profile(admin, session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    blocked = await admin.post(f"/api/v1/admin/users/{telegram_id}/block")
    assert (blocked.status_code, blocked.json()["blocked"]) == (200, True)
    assert (await admin.get(f"/api/v1/users/{telegram_id}")).json()["blocked"] is True
    unblocked = await admin.post(f"/api/v1/admin/users/{telegram_id}/unblock")
    assert unblocked.json()["blocked"] is False
    assert (await admin.get(f"/api/v1/users/{telegram_id}")).json()["blocked"] is False
    assert await _audit(session, telegram_id) == [("block", ADMIN), ("unblock", ADMIN)]


async def test_a_blocked_user_can_still_register(admin, session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    await admin.post(f"/api/v1/admin/users/{telegram_id}/block")
    again = await admin.post("/api/v1/users", json={"telegram_id": telegram_id})
    assert again.status_code == 200
    assert again.json()["blocked"] is True


async def test_pre_checkout_of_a_blocked_user_is_refused(admin, session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    invoice = (
        await admin.post("/api/v1/payments/offers", json={"telegram_id": telegram_id})
    ).json()
    await admin.post(f"/api/v1/admin/users/{telegram_id}/block")
    check = await admin.post(
        "/api/v1/payments/pre-checkout",
        json={
            "telegram_id": telegram_id,
            "payload": invoice["payload"],
            "currency": invoice["currency"],
            "total_amount": invoice["amount"],
        },
    )
    assert check.status_code == 200
    assert (check.json()["ok"], check.json()["error_code"]) == (False, "user_blocked")


@pytest.fixture
async def answering_admin(settings, catalog, engine, fake_providers):
    """The answering backend (committing, real adapters) with ADMIN as an operator."""
    configured = provider_settings(settings, fake_providers).model_copy(
        update={"admin_ids": frozenset({ADMIN})}
    )
    client, registry = await answering_client(configured, fast_catalog(catalog), engine)
    client.headers.update(ADMIN_HEADERS)
    yield client
    await client.aclose()
    await registry.aclose()


@pytest.mark.parametrize("stream", [False, True])
async def test_a_blocked_user_gets_no_answer_and_keeps_the_quota(
    answering_admin, fake_providers, committing_sessions, stream
):
    api = answering_admin
    telegram_id = next_telegram_id()
    assert (await api.post("/api/v1/users", json={"telegram_id": telegram_id})).status_code == 201
    await api.post(f"/api/v1/admin/users/{telegram_id}/block")
    fake_providers.reset()
    response = await api.post(
        "/api/v1/messages", json={"telegram_id": telegram_id, "text": "Hi", "stream": stream}
    )
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "user_blocked"
    assert fake_providers.requests() == []
    assert (await api.get(f"/api/v1/users/{telegram_id}")).json()["free_messages_left"] == 10
    async with committing_sessions() as session:
        opened = await session.scalar(
            select(func.count())
            .select_from(MessageLog)
            .join(User, User.id == MessageLog.user_id)
            .where(User.telegram_id == telegram_id)
        )
    assert opened == 0
    await api.post(f"/api/v1/admin/users/{telegram_id}/unblock")
    fake_providers.script("openai", text="Hello again.")
    answered = await api.post("/api/v1/messages", json={"telegram_id": telegram_id, "text": "Hi"})
    assert answered.status_code == 200, answered.text
    assert answered.json()["free_messages_left"] == 9

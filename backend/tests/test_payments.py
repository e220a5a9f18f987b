"""Payments and VIP on real PostgreSQL: offers, pre-checkout, idempotent recording, refunds."""

import asyncio
import json
import time
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from backend.main import bind_state, create_app
from backend.models.database import AdminAction, Transaction, User
from backend.models.schemas import OfferIn, PreCheckoutIn, SuccessfulPaymentIn
from backend.services.credit_service import CreditService
from backend.services.payment_service import PaymentService, sign
from backend.tests.fixtures import register
from backend.utils.exceptions import QuotaExhausted

PRICE = 250


async def offer(client, telegram_id: int, rail: str = "stars") -> dict:
    response = await client.post(
        "/api/v1/payments/offers", json={"telegram_id": telegram_id, "rail": rail}
    )
    assert response.status_code == 200, response.text
    return response.json()


def payment_body(telegram_id: int, invoice: dict, charge: str, **extra) -> dict:
    return {
        "telegram_id": telegram_id,
        "payload": invoice["payload"],
        "currency": invoice["currency"],
        "total_amount": invoice["amount"],
        "telegram_payment_charge_id": charge,
        **extra,
    }


async def test_offer_then_pre_checkout_then_payment_gives_vip(
    client, session, settings, catalog, clock
):
    telegram_id = await register(session, settings, catalog, clock=clock)
    invoice = await offer(client, telegram_id)
    assert (invoice["currency"], invoice["amount"], invoice["subscription_period_s"]) == (
        "XTR",
        PRICE,
        2592000,
    )
    check = await client.post(
        "/api/v1/payments/pre-checkout",
        json={
            "telegram_id": telegram_id,
            "payload": invoice["payload"],
            "currency": "XTR",
            "total_amount": PRICE,
        },
    )
    assert check.json() == {"ok": True, "error_code": None, "message": None}
    paid = await client.post(
        "/api/v1/payments/successful",
        json=payment_body(telegram_id, invoice, "ch-1", is_recurring=True, is_first_recurring=True),
    )
    body = paid.json()
    assert (body["duplicate"], body["vip_extended"]) == (False, True)
    assert body["vip_expires_at"].startswith((clock.now + timedelta(days=30)).date().isoformat())
    profile = (await client.get(f"/api/v1/users/{telegram_id}")).json()
    assert profile["is_vip"] is True
    sub = (await client.get(f"/api/v1/payments/subscription/{telegram_id}")).json()
    assert (sub["auto_renew"], sub["telegram_charge_id"]) == (True, "ch-1")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"total_amount": 1}, "amount_mismatch"),
        ({"currency": "USD"}, "amount_mismatch"),
        ({"payload": "vip-made-up"}, "unknown_invoice"),
    ],
)
async def test_tampered_pre_checkout_is_rejected(client, session, settings, catalog, change, code):
    telegram_id = await register(session, settings, catalog)
    invoice = await offer(client, telegram_id)
    body = {
        "telegram_id": telegram_id,
        "payload": invoice["payload"],
        "currency": "XTR",
        "total_amount": PRICE,
        **change,
    }
    check = (await client.post("/api/v1/payments/pre-checkout", json=body)).json()
    assert (check["ok"], check["error_code"]) == (False, code)
    assert check["message"]


async def test_another_users_invoice_is_rejected(client, session, settings, catalog):
    owner = await register(session, settings, catalog)
    other = await register(session, settings, catalog)
    invoice = await offer(client, owner)
    body = {
        "telegram_id": other,
        "payload": invoice["payload"],
        "currency": "XTR",
        "total_amount": PRICE,
    }
    check = (await client.post("/api/v1/payments/pre-checkout", json=body)).json()
    assert (check["ok"], check["error_code"]) == (False, "wrong_user")


async def test_paid_or_expired_invoice_is_rejected_at_pre_checkout(
    session, settings, catalog, clock
):
    telegram_id = await register(session, settings, catalog, clock=clock)
    payments = PaymentService(session, settings, clock)
    used = await payments.create_offer(OfferIn(telegram_id=telegram_id))
    await payments.record_payment(
        SuccessfulPaymentIn(**payment_body(telegram_id, used.model_dump(), "ch-used"))
    )
    check = PreCheckoutIn(
        telegram_id=telegram_id, payload=used.payload, currency="XTR", total_amount=PRICE
    )
    assert (await payments.pre_checkout(check)).error_code == "invoice_used"
    stale = await payments.create_offer(OfferIn(telegram_id=telegram_id))
    clock.advance(timedelta(hours=settings.invoice_ttl_hours, seconds=1))
    check = PreCheckoutIn(
        telegram_id=telegram_id, payload=stale.payload, currency="XTR", total_amount=PRICE
    )
    assert (await payments.pre_checkout(check)).error_code == "offer_expired"


async def test_same_payment_recorded_ten_times_at_once_counts_once(
    committing_sessions, settings, catalog
):
    async with committing_sessions() as session:
        telegram_id = await register(session, settings, catalog)
        invoice = await PaymentService(session, settings).create_offer(
            OfferIn(telegram_id=telegram_id)
        )
    charge = f"ch-race-{telegram_id}"
    body = SuccessfulPaymentIn(**payment_body(telegram_id, invoice.model_dump(), charge))

    async def deliver():
        async with committing_sessions() as session:
            return await PaymentService(session, settings).record_payment(body)

    results = await asyncio.gather(*(deliver() for _ in range(10)))
    assert sum(not r.duplicate for r in results) == 1
    assert sum(r.vip_extended for r in results) == 1
    async with committing_sessions() as session:
        user_id = await session.scalar(select(User.id).where(User.telegram_id == telegram_id))
        count = await session.scalar(
            select(func.count())
            .select_from(Transaction)
            .where(Transaction.user_id == user_id, Transaction.status == "paid")
        )
        sub = await PaymentService(session, settings).subscription(telegram_id)
    assert count == 1
    expected = min(r.vip_expires_at for r in results if r.vip_expires_at)
    assert sub.vip_expires_at == expected


async def test_renewal_extends_from_the_current_expiry(session, settings, catalog, clock):
    telegram_id = await register(session, settings, catalog, clock=clock)
    payments = PaymentService(session, settings, clock)
    invoice = await payments.create_offer(OfferIn(telegram_id=telegram_id))
    first = await payments.record_payment(
        SuccessfulPaymentIn(
            **payment_body(
                telegram_id,
                invoice.model_dump(),
                "ch-a",
                is_recurring=True,
                is_first_recurring=True,
            )
        )
    )
    clock.advance(timedelta(days=29))
    renewal = await payments.record_payment(
        SuccessfulPaymentIn(
            **payment_body(telegram_id, invoice.model_dump(), "ch-b", is_recurring=True)
        )
    )
    assert renewal.vip_extended and not renewal.duplicate
    assert renewal.vip_expires_at == first.vip_expires_at + timedelta(days=30)


async def test_refund_revokes_vip_once(client, session, settings, catalog, clock):
    telegram_id = await register(session, settings, catalog, clock=clock)
    invoice = await offer(client, telegram_id)
    await client.post(
        "/api/v1/payments/successful", json=payment_body(telegram_id, invoice, "ch-r")
    )
    refund = await client.post(
        "/api/v1/payments/refunds", json={"telegram_payment_charge_id": "ch-r"}
    )
    assert refund.json()["refunded"] is True
    assert refund.json()["vip_expires_at"] is None
    again = await client.post(
        "/api/v1/payments/refunds", json={"telegram_payment_charge_id": "ch-r"}
    )
    assert again.json()["refunded"] is False
    tx = (await client.get("/api/v1/payments/transactions/ch-r")).json()
    assert (tx["status"], tx["telegram_id"]) == ("refunded", telegram_id)
    assert (await client.get(f"/api/v1/users/{telegram_id}")).json()["is_vip"] is False


async def test_refund_by_a_non_admin_is_forbidden(client, session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    invoice = await offer(client, telegram_id)
    await client.post(
        "/api/v1/payments/successful", json=payment_body(telegram_id, invoice, "ch-f")
    )
    refused = await client.post(
        "/api/v1/payments/refunds",
        json={"telegram_payment_charge_id": "ch-f", "admin_telegram_id": 99},
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"


async def test_vip_lapse_restores_the_free_rules_without_refilling(
    session, settings, catalog, clock
):
    telegram_id = await register(session, settings, catalog, clock=clock)
    credits = CreditService(session, clock)
    for _ in range(10):
        await credits.reserve(telegram_id)
    payments = PaymentService(session, settings, clock)
    invoice = await payments.create_offer(OfferIn(telegram_id=telegram_id))
    await payments.record_payment(
        SuccessfulPaymentIn(**payment_body(telegram_id, invoice.model_dump(), "ch-l"))
    )
    assert (await credits.reserve(telegram_id)).charged is False
    clock.advance(timedelta(days=31))
    with pytest.raises(QuotaExhausted):
        await credits.reserve(telegram_id)


async def test_cancelled_renewal_keeps_vip_until_expiry(client, session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    invoice = await offer(client, telegram_id)
    await client.post(
        "/api/v1/payments/successful",
        json=payment_body(telegram_id, invoice, "ch-c", is_recurring=True, is_first_recurring=True),
    )
    state = await client.post(
        "/api/v1/payments/subscription-state",
        json={"telegram_id": telegram_id, "state": "canceled"},
    )
    assert (state.json()["auto_renew"], state.json()["is_vip"]) == (False, True)
    back = await client.post(
        f"/api/v1/payments/subscription/{telegram_id}/auto-renew", json={"enabled": True}
    )
    assert back.json()["auto_renew"] is True


async def test_unknown_payload_payment_is_kept_but_gives_no_vip(client, session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    body = {
        "telegram_id": telegram_id,
        "payload": "vip-unknown",
        "currency": "XTR",
        "total_amount": 5,
        "telegram_payment_charge_id": "ch-u",
    }
    recorded = (await client.post("/api/v1/payments/successful", json=body)).json()
    assert (recorded["vip_extended"], recorded["error_code"]) == (False, "unknown_invoice")
    assert (await client.get("/api/v1/payments/transactions/ch-u")).json()["status"] == "paid"


async def test_fiat_rail_only_when_configured(client, session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    refused = await client.post(
        "/api/v1/payments/offers", json={"telegram_id": telegram_id, "rail": "fiat"}
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "rail_unavailable"
    plan = (await client.get("/api/v1/payments/plan")).json()
    assert (plan["fiat_amount"], plan["stars_amount"], plan["subscription"]) == (None, PRICE, True)


WEBHOOK_SECRET = "whsec-0123456789abcdef0123456789"


@pytest.fixture
async def webhook_client(settings, catalog, engine, session, clock):
    from backend.api.dependencies import get_session

    configured = settings.model_copy(update={"payment_webhook_secret": SecretStr(WEBHOOK_SECRET)})
    app = create_app(configured, catalog)
    bind_state(app, configured, engine, catalog, clock)

    async def rolled_back():
        yield session

    app.dependency_overrides[get_session] = rolled_back
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://b"
    ) as http:
        yield http


def signed(
    body: dict, *, secret: str = WEBHOOK_SECRET, at: int | None = None
) -> tuple[bytes, dict]:
    raw = json.dumps(body).encode()
    timestamp = at if at is not None else int(time.time())
    return raw, {
        "X-Pomogator-Signature": f"t={timestamp},v1={sign(secret, timestamp, raw)}",
        "Content-Type": "application/json",
    }


def event(telegram_id: int, event_id: str = "ev-1", kind: str = "payment.succeeded") -> dict:
    return {
        "event_id": event_id,
        "type": kind,
        "telegram_id": telegram_id,
        "amount": 499,
        "currency": "USD",
        "charge_id": "pi_1",
    }


async def test_signed_webhook_event_gives_vip_once(
    webhook_client, session, settings, catalog, clock
):
    telegram_id = await register(session, settings, catalog, clock=clock)
    clock.now = clock.now.fromtimestamp(time.time(), clock.now.tzinfo)
    raw, headers = signed(event(telegram_id))
    first = await webhook_client.post("/api/v1/webhooks/payments", content=raw, headers=headers)
    replay = await webhook_client.post("/api/v1/webhooks/payments", content=raw, headers=headers)
    assert (first.status_code, first.json()["duplicate"]) == (200, False)
    assert replay.json()["duplicate"] is True
    sub = await PaymentService(session, settings, clock).subscription(telegram_id)
    assert sub.is_vip and sub.vip_expires_at == clock.now + timedelta(days=30)


async def test_webhook_with_wrong_signature_records_nothing(
    webhook_client, session, settings, catalog, clock
):
    telegram_id = await register(session, settings, catalog, clock=clock)
    clock.now = clock.now.fromtimestamp(time.time(), clock.now.tzinfo)
    raw, headers = signed(event(telegram_id), secret="not-the-secret")
    wrong = await webhook_client.post("/api/v1/webhooks/payments", content=raw, headers=headers)
    missing = await webhook_client.post(
        "/api/v1/webhooks/payments", content=raw, headers={"Content-Type": "application/json"}
    )
    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert wrong.json()["error"]["code"] == "bad_signature"
    assert not (await PaymentService(session, settings, clock).subscription(telegram_id)).is_vip


async def test_webhook_replayed_after_the_window_is_refused(
    webhook_client, session, settings, catalog, clock
):
    telegram_id = await register(session, settings, catalog, clock=clock)
    clock.now = clock.now.fromtimestamp(time.time(), clock.now.tzinfo)
    raw, headers = signed(
        event(telegram_id), at=int(time.time()) - settings.payment_webhook_tolerance_s - 5
    )
    old = await webhook_client.post("/api/v1/webhooks/payments", content=raw, headers=headers)
    assert old.status_code == 401


async def test_webhook_needs_no_internal_token_but_is_off_without_a_secret(client):
    client.headers.pop("Authorization", None)
    response = await client.post("/api/v1/webhooks/payments", content=b"{}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "webhook_not_configured"


async def test_amount_beyond_the_column_is_a_validation_error(client, session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    body = {
        "telegram_id": telegram_id,
        "payload": "vip-x",
        "currency": "XTR",
        "total_amount": 2**31,
        "telegram_payment_charge_id": "ch-big",
    }
    response = await client.post("/api/v1/payments/successful", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_a_charge_id_seen_on_another_invoice_is_a_duplicate(
    client, session, settings, catalog
):
    telegram_id = await register(session, settings, catalog)
    first, second = await offer(client, telegram_id), await offer(client, telegram_id)
    await client.post(
        "/api/v1/payments/successful", json=payment_body(telegram_id, first, "ch-same")
    )
    again = await client.post(
        "/api/v1/payments/successful", json=payment_body(telegram_id, second, "ch-same")
    )
    assert again.status_code == 200
    assert (again.json()["duplicate"], again.json()["vip_extended"]) == (True, False)


async def test_an_operators_refund_is_audited_also_when_telegrams_update_recorded_it_first(
    app, client, session, settings, catalog
):
    operator = 900_000_002
    app.state.settings = settings.model_copy(update={"admin_ids": frozenset({operator})})
    telegram_id = await register(session, settings, catalog)
    for charge in ("ch-a1", "ch-a2"):
        invoice = await offer(client, telegram_id)
        paid = await client.post(
            "/api/v1/payments/successful", json=payment_body(telegram_id, invoice, charge)
        )
        assert paid.status_code == 200, paid.text
    # Telegram's refunded_payment update for the second charge came before the operator's call.
    await client.post("/api/v1/payments/refunds", json={"telegram_payment_charge_id": "ch-a2"})
    for charge in ("ch-a1", "ch-a2"):
        refund = await client.post(
            "/api/v1/payments/refunds",
            json={"telegram_payment_charge_id": charge, "admin_telegram_id": operator},
        )
        assert refund.status_code == 200, refund.text

    rows = await session.execute(
        select(AdminAction.action, AdminAction.admin_telegram_id, AdminAction.detail)
        .where(AdminAction.target_telegram_id == telegram_id)
        .order_by(AdminAction.id)
    )
    assert [tuple(row) for row in rows] == [
        ("refund", operator, {"charge_id": "ch-a1", "recorded_now": True}),
        ("refund", operator, {"charge_id": "ch-a2", "recorded_now": False}),
    ]

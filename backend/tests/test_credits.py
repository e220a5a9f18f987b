"""The free-message quota: reserve, commit, refund, and the ledger that records them."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from backend.models.database import CreditHistory, MessageLog, User
from backend.models.enums import MessageStatus
from backend.services.credit_service import CreditService
from backend.services.subscription_service import SubscriptionService
from backend.tests.fixtures import register
from backend.utils.exceptions import QuotaExhausted, ReservationClosed, ReservationNotFound


async def ledger_sum(session, telegram_id: int) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(CreditHistory.delta), 0))
        .join(User, User.id == CreditHistory.user_id)
        .where(User.telegram_id == telegram_id)
    )
    return int(total)


async def test_ten_reservations_succeed_and_the_eleventh_is_refused(session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    credits = CreditService(session)
    lefts = [(await credits.reserve(telegram_id)).free_messages_left for _ in range(10)]
    assert lefts == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    with pytest.raises(QuotaExhausted) as refused:
        await credits.reserve(telegram_id)
    assert refused.value.code == "quota_exhausted"
    assert (await credits.trial(telegram_id)).messages_left == 0
    assert await ledger_sum(session, telegram_id) == 0


async def test_refused_reservation_leaves_no_trace(session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    credits = CreditService(session)
    for _ in range(10):
        await credits.reserve(telegram_id)
    with pytest.raises(QuotaExhausted):
        await credits.reserve(telegram_id)
    messages = await session.scalar(
        select(func.count())
        .select_from(MessageLog)
        .join(User, User.id == MessageLog.user_id)
        .where(User.telegram_id == telegram_id)
    )
    assert messages == 10


async def test_refund_restores_exactly_one_message(session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    credits = CreditService(session)
    first = await credits.reserve(telegram_id)
    await credits.reserve(telegram_id)
    settlement = await credits.refund(first.message_id, "provider_unavailable")
    assert settlement.refunded is True
    assert settlement.free_messages_left == 9
    with pytest.raises(ReservationClosed):
        await credits.refund(first.message_id, "provider_unavailable")
    assert (await credits.trial(telegram_id)).messages_left == 9
    assert await ledger_sum(session, telegram_id) == 9
    failed = await session.get(MessageLog, first.message_id)
    assert (failed.status, failed.error_code) == ("failed", "provider_unavailable")


async def test_committed_message_stays_spent_and_cannot_be_refunded(session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    credits = CreditService(session)
    reservation = await credits.reserve(telegram_id)
    settlement = await credits.commit(reservation.message_id)
    assert (settlement.status, settlement.free_messages_left) == (MessageStatus.SUCCESS, 9)
    with pytest.raises(ReservationClosed):
        await credits.refund(reservation.message_id, "late_failure")
    assert (await credits.trial(telegram_id)).messages_left == 9


async def test_settling_an_unknown_reservation_is_refused(session):
    with pytest.raises(ReservationNotFound):
        await CreditService(session).commit(987_654_321)


async def test_vip_user_is_not_charged(session, settings, catalog, clock):
    telegram_id = await register(session, settings, catalog, clock=clock)
    await SubscriptionService(session, settings, clock).extend(telegram_id)
    credits = CreditService(session, clock)
    reservations = [await credits.reserve(telegram_id) for _ in range(15)]
    assert all(not r.charged for r in reservations)
    assert (await credits.trial(telegram_id)).messages_left == 10
    uses = await session.scalar(
        select(func.count())
        .select_from(CreditHistory)
        .join(User, User.id == CreditHistory.user_id)
        .where(User.telegram_id == telegram_id, CreditHistory.kind == "use")
    )
    assert uses == 0


async def test_refund_of_vip_message_gives_nothing_back(session, settings, catalog, clock):
    telegram_id = await register(session, settings, catalog, clock=clock)
    await SubscriptionService(session, settings, clock).extend(telegram_id)
    credits = CreditService(session, clock)
    reservation = await credits.reserve(telegram_id)
    settlement = await credits.refund(reservation.message_id, "provider_timeout")
    assert (settlement.refunded, settlement.free_messages_left) == (False, 10)


async def test_vip_ends_exactly_at_expiry(session, settings, catalog, clock):
    telegram_id = await register(session, settings, catalog, clock=clock)
    expires_at = await SubscriptionService(session, settings, clock).extend(telegram_id, days=1)
    credits = CreditService(session, clock)
    clock.now = expires_at - timedelta(microseconds=1)
    assert (await credits.reserve(telegram_id)).charged is False
    clock.now = expires_at
    assert (await credits.reserve(telegram_id)).charged is True
    assert (await credits.trial(telegram_id)).is_vip is False


async def test_ledger_records_balance_after_each_change(session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    credits = CreditService(session)
    first = await credits.reserve(telegram_id)
    await credits.reserve(telegram_id)
    await credits.refund(first.message_id, "provider_timeout")
    history = await credits.credits(telegram_id)
    assert [(e.kind, e.delta, e.balance_after) for e in history.entries] == [
        ("refund", 1, 9),
        ("use", -1, 8),
        ("use", -1, 9),
        ("grant", 10, 10),
    ]
    assert history.free_messages_left == 9


async def test_ledger_cannot_be_edited(session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    with pytest.raises(DBAPIError, match="append-only"):
        async with session.begin_nested():
            await session.execute(
                text(
                    "UPDATE credits_history SET delta = 100 WHERE user_id = "
                    "(SELECT id FROM users WHERE telegram_id = :t)"
                ),
                {"t": telegram_id},
            )
    with pytest.raises(DBAPIError, match="append-only"):
        async with session.begin_nested():
            await session.execute(text("DELETE FROM credits_history"))


async def test_balance_cannot_go_negative_in_the_schema(session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    with pytest.raises(DBAPIError, match="messages_left_non_negative"):
        async with session.begin_nested():
            await session.execute(
                text(
                    "UPDATE trials SET messages_left = -1 WHERE user_id = "
                    "(SELECT id FROM users WHERE telegram_id = :t)"
                ),
                {"t": telegram_id},
            )


async def test_credits_endpoint_shows_balance_and_entries(client, session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    await CreditService(session).reserve(telegram_id)
    response = await client.get(f"/api/v1/credits/{telegram_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["free_messages_left"] == 9
    assert [e["kind"] for e in body["entries"]] == ["use", "grant"]
    assert body["entries"][0]["balance_after"] == 9


async def test_trial_endpoint_counts_used_messages(client, session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    await CreditService(session).reserve(telegram_id)
    response = await client.get(f"/api/v1/trial/{telegram_id}")
    assert response.json() == {
        "telegram_id": telegram_id,
        "messages_limit": 10,
        "messages_left": 9,
        "messages_used": 1,
        "exhausted": False,
        "is_vip": False,
    }

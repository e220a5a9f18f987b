"""Races between requests, each on its own connection, as with real concurrent traffic."""

import asyncio

from sqlalchemy import func, select

from backend.models.database import CreditHistory, Trial, User
from backend.models.schemas import TelegramProfile
from backend.services.credit_service import CreditService
from backend.services.user_service import UserService
from backend.tests.fixtures import next_telegram_id, register
from backend.utils.exceptions import QuotaExhausted, ReservationClosed


async def test_fifty_concurrent_reservations_give_exactly_ten(
    committing_sessions, settings, catalog
):
    async with committing_sessions() as session:
        telegram_id = await register(session, settings, catalog)

    async def reserve() -> bool:
        async with committing_sessions() as session:
            try:
                await CreditService(session).reserve(telegram_id)
            except QuotaExhausted:
                return False
            return True

    outcomes = await asyncio.gather(*(reserve() for _ in range(50)))
    assert outcomes.count(True) == 10
    assert outcomes.count(False) == 40

    async with committing_sessions() as session:
        user_id = await session.scalar(select(User.id).where(User.telegram_id == telegram_id))
        left = await session.scalar(select(Trial.messages_left).where(Trial.user_id == user_id))
        ledger = await session.scalar(
            select(func.sum(CreditHistory.delta)).where(CreditHistory.user_id == user_id)
        )
        balances = list(
            await session.scalars(
                select(CreditHistory.balance_after)
                .where(CreditHistory.user_id == user_id)
                .order_by(CreditHistory.id)
            )
        )
    assert left == 0
    assert ledger == left
    assert balances == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]


async def test_concurrent_refunds_of_one_message_refund_once(
    committing_sessions, settings, catalog
):
    async with committing_sessions() as session:
        telegram_id = await register(session, settings, catalog)
        reservation = await CreditService(session).reserve(telegram_id)

    async def refund() -> bool:
        async with committing_sessions() as session:
            try:
                await CreditService(session).refund(reservation.message_id, "provider_timeout")
            except ReservationClosed:
                return False
            return True

    outcomes = await asyncio.gather(*(refund() for _ in range(20)))
    assert outcomes.count(True) == 1
    async with committing_sessions() as session:
        assert (await CreditService(session).trial(telegram_id)).messages_left == 10


async def test_concurrent_first_contacts_create_one_user_and_one_grant(
    committing_sessions, settings, catalog
):
    telegram_id = next_telegram_id()

    async def first_contact() -> tuple[bool, int]:
        async with committing_sessions() as session:
            profile, created = await UserService(session, settings, catalog).register(
                TelegramProfile(telegram_id=telegram_id, first_name="Racer")
            )
            return created, profile.free_messages_left

    contacts = await asyncio.gather(*(first_contact() for _ in range(20)))
    assert [created for created, _ in contacts].count(True) == 1
    # Everyone sees the allowance, the ones that lost the race to create the user too.
    assert {left for _, left in contacts} == {10}
    async with committing_sessions() as session:
        user_id = await session.scalar(select(User.id).where(User.telegram_id == telegram_id))
        grants = await session.scalar(
            select(func.count()).select_from(CreditHistory).where(CreditHistory.user_id == user_id)
        )
        left = await session.scalar(select(Trial.messages_left).where(Trial.user_id == user_id))
    assert (grants, left) == (1, 10)


async def test_reservation_of_a_dead_answer_is_refunded_by_the_sweeper(
    committing_sessions, settings, catalog
):
    from datetime import timedelta

    from backend.services.clock import utcnow
    from backend.services.sweeper import sweep_once
    from backend.tests.fixtures import FrozenClock

    async with committing_sessions() as session:
        telegram_id = await register(session, settings, catalog)
        await CreditService(session).reserve(telegram_id)  # its answer never finishes
        answered = await CreditService(session).reserve(telegram_id)
        await CreditService(session).commit(answered.message_id)
    later = FrozenClock(utcnow() + timedelta(seconds=settings.stale_reservation_s + 1))
    # Two replicas sweeping at once refund it once.
    counts = await asyncio.gather(
        *(sweep_once(committing_sessions, settings, later) for _ in range(2))
    )
    assert sum(counts) >= 1
    async with committing_sessions() as session:
        credits = await CreditService(session).credits(telegram_id)
    assert credits.free_messages_left == 9
    assert [(e.kind, e.reason) for e in credits.entries][:1] == [("refund", "abandoned")]
    assert sum(1 for e in credits.entries if e.kind == "refund") == 1


async def test_sweeper_leaves_answers_in_progress_alone(committing_sessions, settings, catalog):
    from backend.services.sweeper import sweep_once

    async with committing_sessions() as session:
        telegram_id = await register(session, settings, catalog)
        await CreditService(session).reserve(telegram_id)
    await sweep_once(committing_sessions, settings)
    async with committing_sessions() as session:
        assert (await CreditService(session).trial(telegram_id)).messages_left == 9

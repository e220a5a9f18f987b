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

    async def first_contact() -> bool:
        async with committing_sessions() as session:
            _, created = await UserService(session, settings, catalog).register(
                TelegramProfile(telegram_id=telegram_id, first_name="Racer")
            )
            return created

    created = await asyncio.gather(*(first_contact() for _ in range(20)))
    assert created.count(True) == 1
    async with committing_sessions() as session:
        user_id = await session.scalar(select(User.id).where(User.telegram_id == telegram_id))
        grants = await session.scalar(
            select(func.count()).select_from(CreditHistory).where(CreditHistory.user_id == user_id)
        )
        left = await session.scalar(select(Trial.messages_left).where(Trial.user_id == user_id))
    assert (grants, left) == (1, 10)

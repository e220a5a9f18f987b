"""VIP time: who is VIP, and how an extension adds up."""

from datetime import timedelta

import pytest

from backend.services.subscription_service import SubscriptionService
from backend.services.user_service import UserService
from backend.tests.fixtures import register
from backend.utils.exceptions import UserNotFound


async def test_new_user_is_not_vip(session, settings, catalog, clock):
    telegram_id = await register(session, settings, catalog, clock=clock)
    assert await SubscriptionService(session, settings, clock).vip_until(telegram_id) is None


async def test_first_extension_gives_vip_period_from_now(session, settings, catalog, clock):
    telegram_id = await register(session, settings, catalog, clock=clock)
    expires_at = await SubscriptionService(session, settings, clock).extend(telegram_id)
    assert expires_at == clock.now + timedelta(days=30)
    profile = await UserService(session, settings, catalog, clock).get_profile(telegram_id)
    assert (profile.is_vip, profile.vip_expires_at) == (True, expires_at)


async def test_extension_of_active_vip_adds_to_current_expiry(session, settings, catalog, clock):
    telegram_id = await register(session, settings, catalog, clock=clock)
    subscriptions = SubscriptionService(session, settings, clock)
    first = await subscriptions.extend(telegram_id)
    clock.advance(timedelta(days=10))
    second = await subscriptions.extend(telegram_id)
    assert second == first + timedelta(days=30)


async def test_extension_after_lapse_counts_from_now(session, settings, catalog, clock):
    telegram_id = await register(session, settings, catalog, clock=clock)
    subscriptions = SubscriptionService(session, settings, clock)
    await subscriptions.extend(telegram_id)
    clock.advance(timedelta(days=45))
    assert await subscriptions.vip_until(telegram_id) is None
    renewed = await subscriptions.extend(telegram_id)
    assert renewed == clock.now + timedelta(days=30)


async def test_extension_of_unknown_user_is_refused(session, settings, clock):
    with pytest.raises(UserNotFound):
        await SubscriptionService(session, settings, clock).extend(123_456_789_012)

"""VIP: a user is VIP while their subscription's `expires_at` is in the future."""

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import Settings
from backend.database import crud
from backend.services.clock import Clock, utcnow
from backend.services.user_service import require_user


class SubscriptionService:
    """Use cases about VIP time."""

    def __init__(self, session: AsyncSession, settings: Settings, clock: Clock = utcnow) -> None:
        self._session = session
        self._settings = settings
        self._clock = clock

    async def vip_until(self, telegram_id: int) -> datetime | None:
        """When the user's VIP ends, or None if they are not VIP now."""
        user = await require_user(self._session, telegram_id)
        return await crud.vip_expires_at(self._session, user.id, self._clock())

    async def extend(self, telegram_id: int, days: int | None = None) -> datetime:
        """Add `days` (default `VIP_PERIOD_DAYS`) of VIP from max(now, current expiry)."""
        user = await require_user(self._session, telegram_id)
        period = timedelta(days=days if days is not None else self._settings.vip_period_days)
        expires_at = await crud.extend_subscription(self._session, user.id, period, self._clock())
        await self._session.commit()
        return expires_at

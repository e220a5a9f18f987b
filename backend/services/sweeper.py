"""The background job that gives back credits reserved by answers that never finished."""

import asyncio
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.config import Settings
from backend.services.clock import Clock, utcnow
from backend.services.credit_service import CreditService
from backend.utils.logger import get_logger

log = get_logger("backend.sweeper")


async def sweep_once(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock = utcnow
) -> int:
    """One pass: refund every stale reservation, in batches; how many were refunded."""
    total = 0
    while True:
        async with sessions() as session:
            swept = await CreditService(session, clock).refund_abandoned(
                timedelta(seconds=settings.stale_reservation_s)
            )
        total += swept
        if swept == 0:
            break
    if total:
        log.warning("abandoned_answers_refunded", count=total)
    return total


async def run_sweeper(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock = utcnow
) -> None:
    """Sweep every SWEEP_INTERVAL_S until cancelled; a failed pass is logged and retried."""
    while True:
        try:
            await sweep_once(sessions, settings, clock)
        except Exception as exc:  # the database may be restarting; the next pass retries
            log.warning("sweep_failed", error=type(exc).__name__)
        await asyncio.sleep(settings.sweep_interval_s)

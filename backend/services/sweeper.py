"""Background jobs: refund answers that never finished, erase texts past their retention."""

import asyncio
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.config import Settings
from backend.services.clock import Clock, utcnow
from backend.services.credit_service import CreditService
from backend.services.privacy_service import PrivacyService
from backend.services.update_service import UpdateService
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


async def tidy_once(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    """Erase texts past MESSAGE_RETENTION_DAYS and forget old update claims; rows touched."""
    touched = 0
    if settings.message_retention_days:
        while True:
            async with sessions() as session:
                erased = await PrivacyService(session).erase_older_than(
                    settings.message_retention_days
                )
            touched += erased
            if erased == 0:
                break
    async with sessions() as session:
        touched += await UpdateService(session).purge()
    if touched:
        log.info("old_data_erased", rows=touched)
    return touched


async def run_sweeper(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock = utcnow
) -> None:
    """Sweep every SWEEP_INTERVAL_S until cancelled; a failed pass is logged and retried."""
    while True:
        try:
            await sweep_once(sessions, settings, clock)
            await tidy_once(sessions, settings)
        except Exception as exc:  # the database may be restarting; the next pass retries
            log.warning("sweep_failed", error=type(exc).__name__)
        await asyncio.sleep(settings.sweep_interval_s)

"""Telegram updates handled once: a claim per update_id, shared by every bot replica."""

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from backend.database import crud
from backend.models.schemas import ClaimOut

# Telegram gives up redelivering an update after 24 hours; a week is a wide margin.
CLAIM_RETENTION = timedelta(days=7)


class UpdateService:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(self, update_id: int) -> ClaimOut:
        """True the first time this update is claimed, False for every redelivery."""
        claimed = await crud.claim_update(self._session, update_id)
        await self._session.commit()
        return ClaimOut(claimed=claimed)

    async def purge(self) -> int:
        """Forget old claims; how many."""
        purged = await crud.purge_update_claims(self._session, CLAIM_RETENTION)
        await self._session.commit()
        return purged

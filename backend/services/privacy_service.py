"""What users said, kept no longer than needed: /forget and the retention period."""

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from backend.database import crud
from backend.models.schemas import ForgetOut
from backend.services.user_service import require_user

RETENTION_BATCH = 500


class PrivacyService:
    """Erasing message texts; billing records (charges, ledger, usage, cost) are kept."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def forget(self, telegram_id: int) -> ForgetOut:
        """Erase the texts of the user's conversations and start a new one."""
        user = await require_user(self._session, telegram_id)
        forgotten = await crud.erase_message_texts(self._session, user.id)
        await crud.new_conversation(self._session, user.id)
        await self._session.commit()
        return ForgetOut(forgotten=forgotten)

    async def erase_older_than(self, days: int) -> int:
        """One batch of texts past the retention period erased; how many."""
        erased = await crud.erase_texts_older_than(
            self._session, timedelta(days=days), RETENTION_BATCH
        )
        await self._session.commit()
        return erased

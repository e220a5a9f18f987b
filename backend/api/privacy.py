"""/forget: a user's conversation texts erased on request."""

from fastapi import APIRouter

from backend.api.dependencies import SessionDep
from backend.models.schemas import ForgetOut, TelegramId
from backend.services.privacy_service import PrivacyService

router = APIRouter(prefix="/users", tags=["users"])


@router.post("/{telegram_id}/forget")
async def forget(telegram_id: TelegramId, session: SessionDep) -> ForgetOut:
    """Erase the texts of the user's messages (billing records stay); a new conversation."""
    return await PrivacyService(session).forget(telegram_id)

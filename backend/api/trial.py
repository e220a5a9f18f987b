"""The free-message allowance of one user."""

from fastapi import APIRouter

from backend.api.dependencies import CreditServiceDep
from backend.models.schemas import TelegramId, TrialOut

router = APIRouter(prefix="/trial", tags=["trial"])


@router.get("/{telegram_id}")
async def get_trial(telegram_id: TelegramId, credits: CreditServiceDep) -> TrialOut:
    return await credits.trial(telegram_id)

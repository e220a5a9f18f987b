"""The credit ledger of one user."""

from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.dependencies import CreditServiceDep
from backend.models.schemas import CreditsOut, TelegramId

router = APIRouter(prefix="/credits", tags=["credits"])


@router.get("/{telegram_id}")
async def get_credits(
    telegram_id: TelegramId,
    credits: CreditServiceDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> CreditsOut:
    """Balance and the newest ledger entries, newest first."""
    return await credits.credits(telegram_id, limit)

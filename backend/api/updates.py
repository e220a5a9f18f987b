"""Claims of Telegram updates, so a redelivered update is handled by one bot replica once."""

from fastapi import APIRouter

from backend.api.dependencies import SessionDep
from backend.models.schemas import ClaimIn, ClaimOut
from backend.services.update_service import UpdateService

router = APIRouter(prefix="/updates", tags=["updates"])


@router.post("/claim")
async def claim_update(body: ClaimIn, session: SessionDep) -> ClaimOut:
    """Claim an update_id: `claimed` is true only for the first claim."""
    return await UpdateService(session).claim(body.update_id)

"""Users: register or refresh from Telegram, read the profile, change choices."""

from fastapi import APIRouter, Response, status

from backend.api.dependencies import RegistrationServiceDep, UserServiceDep
from backend.models.schemas import TelegramId, TelegramProfile, UserProfile, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


@router.post("", status_code=status.HTTP_200_OK, responses={201: {"model": UserProfile}})
async def register_user(
    body: TelegramProfile, users: RegistrationServiceDep, response: Response
) -> UserProfile:
    """Register on first contact (201, with the free allowance) or refresh the profile (200)."""
    profile, created = await users.register(body)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return profile


@router.get("/{telegram_id}")
async def get_user(telegram_id: TelegramId, users: UserServiceDep) -> UserProfile:
    return await users.get_profile(telegram_id)


@router.patch("/{telegram_id}")
async def update_user(
    telegram_id: TelegramId, body: UserUpdate, users: UserServiceDep
) -> UserProfile:
    return await users.update(telegram_id, body)

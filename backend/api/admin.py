"""Operators' API: figures, user cards, VIP by hand, blocking, broadcasts.

Besides the internal token, every route needs `X-Admin-Id`: the Telegram id of the operator
the bot acts for, one of ADMIN_IDS.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query

from backend.api.dependencies import ClockDep, SessionDep, SettingsDep
from backend.models.enums import BroadcastAudience, BroadcastStatus
from backend.models.schemas import (
    AdminStats,
    AdminUserCard,
    AudienceOut,
    BatchIn,
    BatchOut,
    BigId,
    BroadcastIn,
    BroadcastOut,
    ErrorBody,
    GrantVipIn,
    ProgressIn,
    SafeStr,
    TelegramId,
)
from backend.services.admin_service import AdminService
from backend.utils.exceptions import Forbidden


async def require_admin(
    settings: SettingsDep,
    x_admin_id: Annotated[
        str | None,
        Header(description="Telegram id of the operator, one of ADMIN_IDS"),
    ] = None,
) -> int:
    """The operator's Telegram id from `X-Admin-Id`, or `Forbidden`.

    A malformed value is no operator either, so it gets the same 403 as a stranger's id.
    """
    value = (x_admin_id or "").strip()
    is_id = value.isascii() and value.isdigit() and len(value) <= 19  # a bigint at most
    if not is_id or int(value) not in settings.admin_ids:
        raise Forbidden
    return int(value)


AdminId = Annotated[int, Depends(require_admin)]


async def get_admin_service(
    session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> AdminService:
    return AdminService(session, settings, clock)


Admin = Annotated[AdminService, Depends(get_admin_service)]
BroadcastId = BigId

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={403: {"model": ErrorBody, "description": "forbidden: X-Admin-Id is no operator"}},
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "user_not_found"}
}
NO_BROADCAST: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "broadcast_not_found"}
}


@router.get("/stats")
async def stats(admin: Admin) -> AdminStats:
    """Users, VIP, conversion, today's messages and errors, AI cost, revenue this month."""
    return await admin.stats()


@router.get("/users/lookup", responses=NOT_FOUND)
async def lookup_user(
    admin: Admin,
    q: Annotated[SafeStr, Query(min_length=1, max_length=65, description="id, @username")],
) -> AdminUserCard:
    """A user's card by Telegram id or username."""
    return await admin.lookup(q)


@router.post("/users/{telegram_id}/vip", responses=NOT_FOUND)
async def grant_vip(
    telegram_id: TelegramId, body: GrantVipIn, admin: Admin, admin_id: AdminId
) -> AdminUserCard:
    """Add days of VIP from max(now, current expiry)."""
    return await admin.grant_vip(admin_id, telegram_id, body.days)


@router.delete("/users/{telegram_id}/vip", responses=NOT_FOUND)
async def revoke_vip(telegram_id: TelegramId, admin: Admin, admin_id: AdminId) -> AdminUserCard:
    """End VIP now; `cancel_stars_charge_id` names a Stars subscription to cancel."""
    return await admin.revoke_vip(admin_id, telegram_id)


@router.post("/users/{telegram_id}/block", responses=NOT_FOUND)
async def block_user(telegram_id: TelegramId, admin: Admin, admin_id: AdminId) -> AdminUserCard:
    """No answers and no payments for this user until unblocked."""
    return await admin.set_blocked(admin_id, telegram_id, blocked=True)


@router.post("/users/{telegram_id}/unblock", responses=NOT_FOUND)
async def unblock_user(telegram_id: TelegramId, admin: Admin, admin_id: AdminId) -> AdminUserCard:
    return await admin.set_blocked(admin_id, telegram_id, blocked=False)


@router.post("/broadcasts")
async def create_broadcast(body: BroadcastIn, admin: Admin, admin_id: AdminId) -> BroadcastOut:
    """Start a broadcast of the admin's message (copied by the bot) to an audience."""
    return await admin.create_broadcast(admin_id, body)


@router.get("/broadcasts/audience")
async def audience(admin: Admin, audience: BroadcastAudience) -> AudienceOut:
    """How many users a broadcast to this audience would reach now."""
    return await admin.audience(audience)


@router.get("/broadcasts")
async def broadcasts(admin: Admin, status: BroadcastStatus | None = None) -> list[BroadcastOut]:
    return await admin.broadcasts(status)


@router.post(
    "/broadcasts/{broadcast_id}/batch",
    responses={
        **NO_BROADCAST,
        409: {"model": ErrorBody, "description": "broadcast_leased: another runner sends it"},
    },
)
async def batch(broadcast_id: BroadcastId, body: BatchIn, admin: Admin) -> BatchOut:
    """The next recipients after the cursor, leased; empty when nothing is left to send."""
    return await admin.batch(broadcast_id, body)


@router.post("/broadcasts/{broadcast_id}/progress", responses=NO_BROADCAST)
async def progress(broadcast_id: BroadcastId, body: ProgressIn, admin: Admin) -> BroadcastOut:
    """Counts for the recipients up to `cursor`; a replayed report changes nothing."""
    return await admin.progress(broadcast_id, body)


@router.post("/broadcasts/{broadcast_id}/finish", responses=NO_BROADCAST)
async def finish(broadcast_id: BroadcastId, admin: Admin) -> BroadcastOut:
    return await admin.finish(broadcast_id)


@router.post("/broadcasts/{broadcast_id}/cancel", responses=NO_BROADCAST)
async def cancel(broadcast_id: BroadcastId, admin: Admin, admin_id: AdminId) -> BroadcastOut:
    return await admin.cancel(admin_id, broadcast_id)

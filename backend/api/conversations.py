"""Conversation controls."""

from fastapi import APIRouter

from backend.api.dependencies import ChatServiceDep
from backend.models.schemas import ConversationOut, TelegramId

router = APIRouter(prefix="/conversations", tags=["conversations"])


@router.post("/{telegram_id}/reset")
async def reset_conversation(telegram_id: TelegramId, chat: ChatServiceDep) -> ConversationOut:
    """Start a new conversation; the chosen model stays."""
    return await chat.reset(telegram_id)

"""The model menu, with which providers are available."""

from fastapi import APIRouter

from backend.api.dependencies import ChatServiceDep
from backend.models.schemas import CatalogOut

router = APIRouter(tags=["models"])


@router.get("/models")
async def list_models(chat: ChatServiceDep) -> CatalogOut:
    return chat.models()

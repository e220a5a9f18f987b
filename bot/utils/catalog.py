"""The model menu from the backend, cached for a minute (it changes only on redeploys)."""

import time

from bot.services.backend import BackendClient
from bot.services.schemas import Catalog


class CatalogCache:
    def __init__(self, backend: BackendClient, ttl_s: float = 60.0) -> None:
        self._backend = backend
        self._ttl = ttl_s
        self._value: tuple[float, Catalog] | None = None

    async def get(self) -> Catalog:
        if self._value is None or time.monotonic() - self._value[0] > self._ttl:
            self._value = (time.monotonic(), await self._backend.models())
        return self._value[1]

    async def labels(self, model_key: str) -> tuple[str, str]:
        """(provider label, model label) of a model key, or the key itself when unknown."""
        found = (await self.get()).find(model_key)
        if found is None:
            return model_key, ""
        provider, model = found
        return provider.label, model.label

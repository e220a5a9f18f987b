"""Adapters per provider, built once from settings and the catalog, closed on shutdown."""

from collections.abc import Callable

import openai

from backend.config import Settings
from backend.services.catalog import Catalog, ProviderEntry
from backend.services.providers.base import ProviderAdapter, ProviderNotConfigured
from backend.services.providers.chat_completions import ChatCompletionsAdapter
from backend.services.providers.client import build_client
from backend.services.providers.openai_responses import OpenAIResponsesAdapter
from backend.services.providers.perplexity import PerplexityAgentAdapter

ADAPTERS: dict[str, Callable[[openai.AsyncOpenAI], ProviderAdapter]] = {
    "openai_responses": OpenAIResponsesAdapter,
    "perplexity_agent": PerplexityAgentAdapter,
    "chat_completions": ChatCompletionsAdapter,
}


class ProviderRegistry:
    """Which providers have credentials, and their adapters."""

    def __init__(self, adapters: dict[str, ProviderAdapter]) -> None:
        self._adapters = adapters

    @classmethod
    def from_settings(cls, settings: Settings, catalog: Catalog) -> "ProviderRegistry":
        """One client per provider with an API key; providers without one are unavailable."""
        adapters: dict[str, ProviderAdapter] = {}
        for key, provider in catalog.providers.items():
            adapter = build_adapter(settings, provider)
            if adapter is not None:
                adapters[key] = adapter
        return cls(adapters)

    def available(self, provider: str) -> bool:
        return provider in self._adapters

    def adapter(self, provider: str) -> ProviderAdapter:
        """The provider's adapter, or `ProviderNotConfigured`."""
        try:
            return self._adapters[provider]
        except KeyError:
            raise ProviderNotConfigured(provider=provider) from None

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            await adapter.aclose()


def build_adapter(settings: Settings, provider: ProviderEntry) -> ProviderAdapter | None:
    base_url, api_key = settings.provider_credentials(provider.credentials)
    if not api_key:
        return None
    client = build_client(
        base_url=base_url,
        api_key=api_key,
        max_retries=settings.provider_max_retries,
        connect_timeout_s=settings.provider_connect_timeout_s,
        # Each answer has its own end-to-end deadline (the catalog's timeout_s); this only
        # bounds a silent connection.
        read_timeout_s=900.0,
    )
    return ADAPTERS[provider.api_style](client)

"""Adapters per provider, built once from settings and the catalog, closed on shutdown."""

from collections.abc import Callable

import openai

from backend.config import Settings
from backend.services.catalog import Catalog, ProviderEntry
from backend.services.providers.base import ProviderAdapter, ProviderNotConfigured
from backend.services.providers.breaker import ProviderBreakers
from backend.services.providers.chat_completions import ChatCompletionsAdapter
from backend.services.providers.client import build_client
from backend.services.providers.media import ImageGenerator, Transcriber
from backend.services.providers.openai_responses import OpenAIResponsesAdapter
from backend.services.providers.perplexity import PerplexityAgentAdapter

ADAPTERS: dict[str, Callable[[openai.AsyncOpenAI], ProviderAdapter]] = {
    "openai_responses": OpenAIResponsesAdapter,
    "perplexity_agent": PerplexityAgentAdapter,
    "chat_completions": ChatCompletionsAdapter,
}


class ProviderRegistry:
    """Which providers have credentials, their adapters, and the speech and picture models."""

    def __init__(
        self,
        adapters: dict[str, ProviderAdapter],
        *,
        transcriber: Transcriber | None = None,
        images: ImageGenerator | None = None,
        breakers: ProviderBreakers | None = None,
    ) -> None:
        self._adapters = adapters
        self.transcriber = transcriber
        self.images = images
        self.breakers = breakers or ProviderBreakers()

    @classmethod
    def from_settings(cls, settings: Settings, catalog: Catalog) -> "ProviderRegistry":
        """One client per provider with an API key; providers without one are unavailable.

        Transcription and pictures share the client of the provider the catalog names.
        """
        adapters: dict[str, ProviderAdapter] = {}
        clients: dict[str, openai.AsyncOpenAI] = {}
        for key, provider in catalog.providers.items():
            client = build_provider_client(settings, provider)
            if client is not None:
                clients[key] = client
                adapters[key] = ADAPTERS[provider.api_style](client)
        transcription, generation = catalog.transcription, catalog.image_generation
        transcriber = (
            Transcriber(clients[transcription.provider], transcription)
            if transcription is not None and transcription.provider in clients
            else None
        )
        images = (
            ImageGenerator(clients[generation.provider], generation)
            if generation is not None and generation.provider in clients
            else None
        )
        breakers = ProviderBreakers(settings.breaker_failures, settings.breaker_cooldown_s)
        return cls(adapters, transcriber=transcriber, images=images, breakers=breakers)

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


def build_provider_client(settings: Settings, provider: ProviderEntry) -> openai.AsyncOpenAI | None:
    """The SDK client for a provider, or None when it has no API key."""
    base_url, api_key = settings.provider_credentials(provider.credentials)
    if not api_key:
        return None
    return build_client(
        base_url=base_url,
        api_key=api_key,
        max_retries=settings.provider_max_retries,
        connect_timeout_s=settings.provider_connect_timeout_s,
        max_connections=settings.provider_max_connections,
        # Each answer has its own end-to-end deadline (the catalog's timeout_s); this only
        # bounds a silent connection.
        read_timeout_s=900.0,
    )

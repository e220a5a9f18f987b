"""Circuit breakers per provider (purgatory): a provider that keeps failing is left alone a while.

After `failures` outages in a row (unavailable, timeout, rate limit, unusable answer) the
provider's circuit opens for `cooldown_s`: messages for it are refused before anything is
reserved, so nobody waits for a provider that is down and nothing is charged. After the
cooldown a request is let through; its success closes the circuit, its failure reopens it.
Refusals of content and context errors are the provider working, not failing.
"""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from purgatory.service._async.circuitbreaker import AsyncCircuitBreaker

from backend.services.providers.base import (
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from backend.utils.logger import get_logger

log = get_logger("backend.providers.breaker")

OUTAGES = (ProviderUnavailable, ProviderTimeout, ProviderRateLimited)


def _is_outage(exc: BaseException) -> bool:
    # A plain ProviderError is an unusable answer (5xx body, broken stream): an outage too.
    return isinstance(exc, OUTAGES) or type(exc) is ProviderError


class ProviderBreakers:
    """One circuit per provider key, in process memory."""

    def __init__(self, failures: int = 5, cooldown_s: float = 30.0) -> None:
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=failures,
            default_ttl=cooldown_s,
            # Anything that is not an outage (a refusal, a disconnect, our own bug) does not
            # count against the provider.
            exclude=[(BaseException, lambda exc: not _is_outage(exc))],
        )
        self._factory.add_listener(self._on_event)
        self._breakers: dict[str, AsyncCircuitBreaker] = {}

    async def _breaker(self, provider: str) -> AsyncCircuitBreaker:
        breaker = self._breakers.get(provider)
        if breaker is None:
            breaker = self._breakers[provider] = await self._factory.get_breaker(provider)
        return breaker

    def retry_after_s(self, provider: str) -> float | None:
        """Seconds until the provider's open circuit lets a request through; None if closed."""
        breaker = self._breakers.get(provider)
        if breaker is None or breaker.context.state != "opened":
            return None
        opened_at = breaker.context.opened_at or 0.0
        left = opened_at + breaker.context.ttl - time.time()
        return left if left > 0 else None

    def check(self, provider: str) -> None:
        """Refuse (ProviderUnavailable, nothing reserved yet) while the circuit is open."""
        left = self.retry_after_s(provider)
        if left is not None:
            raise ProviderUnavailable(
                "This AI provider is failing right now; try another model.",
                provider=provider,
                breaker_open=True,
                retry_after_s=max(1, round(left)),
            )

    @asynccontextmanager
    async def guard(self, provider: str) -> AsyncIterator[None]:
        """Run one provider call under the circuit: its outcome opens or closes it."""
        breaker = await self._breaker(provider)
        try:
            async with breaker:
                yield
        except OpenedState:
            self.check(provider)
            raise ProviderUnavailable(provider=provider, breaker_open=True) from None

    @staticmethod
    def _on_event(name: str, event_type: str, event: object) -> None:
        if event_type == "state_changed":
            log.warning(
                "provider_circuit_changed", provider=name, state=getattr(event, "state", None)
            )

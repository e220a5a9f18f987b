"""Claim each Telegram update once across every bot replica.

Telegram delivers an update again when it did not get a 2xx in time, and with several replicas
behind nginx the second delivery can land on another process. The first replica to claim an
update_id answers it; every later delivery is dropped. Where the claim is kept:

1. Redis (when `REDIS_URL` is set): one `SET <prefix>update:<id> 1 NX EX <ttl>`.
2. The backend (`POST /api/v1/updates/claim`, one INSERT ... ON CONFLICT in PostgreSQL) when
   Redis is not configured, or while it is unreachable. A Redis failure is logged once
   (`redis_unavailable`) and Redis is tried again after `retry_s`; meanwhile replicas that
   still reach Redis and this one claim in different places, so the guarantee shrinks to
   "one answer per replica" until Redis is back (`redis_recovered`).
3. Neither answers (the backend is down too): the update is processed anyway. Losing a user's
   message is worse than answering it twice, and a double charge is still impossible: the
   backend de-duplicates answers by `client_message_id` (chat id + message id) and payments
   by their charge id. The handlers will most likely tell the user to try again anyway.

Telegram keeps an undelivered update for at most 24 hours, so a claim older than that cannot
meet a redelivery: the Redis key expires after `ttl_s` (a day by default); the backend purges
its claims after 7 days.
"""

from typing import Protocol

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.services.backend import BackendError
from bot.services.redis_health import REDIS_ERRORS, RedisCircuit
from bot.utils.logging import get_logger

log = get_logger("bot.claims")

TELEGRAM_REDELIVERY_WINDOW_S = 24 * 3600


class UpdateClaimBackend(Protocol):
    async def claim_update(self, update_id: int) -> bool: ...


def connect_redis(
    url: str, timeout_s: float = 0.5, max_connections: int = 100, pool_wait_s: float = 10.0
) -> Redis:
    """A Redis client that fails fast: no retries, sub-second timeouts (the fallback waits).

    When all `max_connections` are busy a call waits up to `pool_wait_s` for one to come free:
    redis-py's default pool raises at once instead, and a wait as short as Redis's own timeout
    ran out whenever the bot was overloaded (its event loop seconds behind). Either took a
    healthy Redis for down ("No connection available." in the bot's log of `make bench`'s
    ceiling past saturation), and every part fell back (claims to the backend's PostgreSQL)
    for 30 s, adding to the overload. Waiting for a connection
    is this process's queue, not Redis's health; a Redis that does not answer still fails each
    call within `timeout_s`, so connections come free at that pace even then.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_wait_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), retries=0),
        health_check_interval=30,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes it too


class UpdateClaims:
    """Claims in Redis, else through the backend; see the module docstring for the failures."""

    def __init__(
        self,
        backend: UpdateClaimBackend,
        redis: Redis | None = None,
        *,
        prefix: str = "pomogator:",
        ttl_s: int = TELEGRAM_REDELIVERY_WINDOW_S,
        retry_s: float = 30.0,
    ) -> None:
        self._backend = backend
        self._redis = redis
        self._prefix = f"{prefix}update:"
        self._ttl = ttl_s
        self._circuit = RedisCircuit("update claims", retry_s)

    @property
    def redis_down(self) -> bool:
        return self._circuit.down

    async def claim(self, update_id: int) -> bool:
        """True if this replica should handle the update (first claim, or nobody to ask)."""
        if self._redis is not None and self._circuit.usable():
            claimed = await self._claim_in_redis(update_id)
            if claimed is not None:
                return claimed
        try:
            return await self._backend.claim_update(update_id)
        except (BackendError, ValueError) as exc:  # ValueError: an unreadable answer
            code = exc.code if isinstance(exc, BackendError) else type(exc).__name__
            log.warning("update_claim_failed", update_id=update_id, error=code)
            return True  # at-least-once: see the module docstring

    async def _claim_in_redis(self, update_id: int) -> bool | None:
        """The Redis verdict, or None when Redis could not be asked."""
        assert self._redis is not None
        # The client's own timeouts bound the call (see connect_redis); a bound around it would
        # also count the wait for a free connection, which is this process's queue.
        try:
            created = await self._redis.set(f"{self._prefix}{update_id}", 1, nx=True, ex=self._ttl)
        except REDIS_ERRORS as exc:
            self._circuit.failed(exc)
            return None
        self._circuit.succeeded()
        return bool(created)

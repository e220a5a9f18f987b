"""When to ask Redis: each part that keeps shared state there falls back while it is down.

A failed call opens the circuit for `retry_s`: the part uses its fallback (this process's
memory, or the backend) without waiting on Redis meanwhile, logs `redis_unavailable` once, and
`redis_recovered` when a later call succeeds.
"""

import time

from redis.exceptions import RedisError

from bot.utils.logging import get_logger

log = get_logger("bot.redis")

# What a Redis call raises when Redis cannot answer (refused, reset, timed out).
REDIS_ERRORS = (RedisError, OSError, TimeoutError)


class RedisCircuit:
    def __init__(self, part: str, retry_s: float = 30.0) -> None:
        self.part = part
        self._retry = retry_s
        self._down_until: float | None = None  # None: Redis is believed up

    @property
    def down(self) -> bool:
        return self._down_until is not None

    def usable(self) -> bool:
        """Ask Redis now: it is believed up, or it is time to try it again."""
        return self._down_until is None or time.monotonic() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        if self._down_until is None:
            log.warning(
                "redis_unavailable",
                part=self.part,
                error=type(exc).__name__,
                detail=str(exc)[:200],
                retry_in_s=self._retry,
            )
        self._down_until = time.monotonic() + self._retry

    def succeeded(self) -> None:
        if self._down_until is not None:
            log.info("redis_recovered", part=self.part)
            self._down_until = None

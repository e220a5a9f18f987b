"""Replicas share what one of them would keep in memory: a user's turn, the profile cache.

Replicas are separate dispatchers in front of one real backend, sharing a real Redis.
"""

import asyncio
import contextlib

from redis.asyncio import Redis
from structlog.testing import capture_logs

from bot.middlewares.auth import ProfileCache
from bot.middlewares.ordering import SharedTurns
from bot.services.claims import connect_redis
from bot.services.inflight import InFlightAnswers, Taken
from bot.services.schemas import Profile
from bot.tests.conftest import REDIS_URL, backend_client, closed_port
from bot.tests.telegram import message_update
from bot.tests.test_backend_stale_connections import PROFILE
from bot.tests.test_exactly_once import two_replicas
from tests.e2e.conftest import asked


async def provider_asked(fake_providers, count: int, timeout_s: float = 10.0) -> list[str]:
    """The questions the fake provider was asked, once there are `count` of them."""
    async with asyncio.timeout(timeout_s):
        while len(fake_providers.requests("openai")) < count:  # noqa: ASYNC110 - it records only
            await asyncio.sleep(0.02)
    return [asked(r.body) for r in fake_providers.requests("openai")]


async def test_a_user_is_answered_one_message_at_a_time_across_replicas(
    settings, catalog, engine, fake_providers, user_id, redis_prefix
):
    async with (
        backend_client(settings, catalog, engine, fake_providers) as backend,
        two_replicas(backend, REDIS_URL, redis_key_prefix=redis_prefix) as (one, two),
    ):
        fake_providers.script("openai", first_delay_s=1.0)
        first = asyncio.create_task(one.send(message_update(user_id, "The first question")))
        await provider_asked(fake_providers, 1)
        second = asyncio.create_task(two.send(message_update(user_id, "The second question")))
        await asyncio.sleep(0.5)  # the first answer is still being written

        # The second message waits for the first answer, though another replica has it.
        assert await provider_asked(fake_providers, 1) == ["The first question"]
        await asyncio.gather(first, second)
        assert await provider_asked(fake_providers, 2) == [
            "The first question",
            "The second question",
        ]
        assert (await backend.profile(user_id)).free_messages_left == 8
        probe = connect_redis(REDIS_URL)
        try:  # the turn is given back once the answer is done
            assert await probe.exists(f"{redis_prefix}turn:{user_id}") == 0
        finally:
            await probe.aclose()


async def test_a_turn_left_by_a_killed_replica_frees_itself_within_the_lease(redis_prefix):
    redis = connect_redis(REDIS_URL)
    # What a replica killed mid-answer leaves: its token, renewed by nobody.
    await redis.set(f"{redis_prefix}turn:5", "token-of-a-dead-replica", px=1000)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with SharedTurns(redis, redis_prefix, lease_s=1.0).hold(5):
            waited = loop.time() - started
    finally:
        await redis.aclose()
    assert 0.5 < waited < 2.0


async def test_a_turn_is_renewed_while_its_answer_runs_past_the_lease(redis_prefix):
    redis = connect_redis(REDIS_URL)
    turns = SharedTurns(redis, redis_prefix, lease_s=0.6)
    order: list[str] = []

    async def answer(name: str, seconds: float) -> None:
        async with turns.hold(5):
            order.append(f"{name} starts")
            await asyncio.sleep(seconds)
            order.append(f"{name} ends")

    try:
        long = asyncio.create_task(answer("long", 1.5))
        await asyncio.sleep(0.1)
        await asyncio.gather(long, answer("next", 0))
    finally:
        await redis.aclose()
    assert order == ["long starts", "long ends", "next starts", "next ends"]


def a_profile(telegram_id: int, **changes: object) -> Profile:
    return Profile.model_validate(PROFILE | {"telegram_id": telegram_id} | changes)


async def test_a_profile_change_made_through_one_replica_is_what_another_sees(redis_prefix):
    redis_one, redis_two = connect_redis(REDIS_URL), connect_redis(REDIS_URL)
    one, two = ProfileCache(redis_one, redis_prefix), ProfileCache(redis_two, redis_prefix)
    try:
        await one.put(a_profile(5))
        assert await two.get(5) == a_profile(5)
        await two.update(5, blocked=True, free_messages_left=3)  # an operator, an answer
        assert await one.get(5) == a_profile(5, blocked=True, free_messages_left=3)
        assert await one.get(6) is None
    finally:
        await redis_one.aclose()
        await redis_two.aclose()


async def test_cached_profiles_expire_for_every_replica(redis_prefix):
    redis = connect_redis(REDIS_URL)
    cache = ProfileCache(redis, redis_prefix, ttl_s=0.3)
    try:
        await cache.put(a_profile(5))
        assert 0 < await redis.pttl(f"{redis_prefix}profile:5") <= 300
        await asyncio.sleep(0.4)
        assert await ProfileCache(redis, redis_prefix).get(5) is None
    finally:
        await redis.aclose()


async def test_profiles_are_kept_here_while_redis_is_unreachable():
    redis = connect_redis(f"redis://127.0.0.1:{closed_port()}/0")
    cache = ProfileCache(redis)
    try:
        with capture_logs() as logs:
            await cache.put(a_profile(5))
            assert await cache.get(5) == a_profile(5)
    finally:
        await redis.aclose()
    assert [e["part"] for e in logs if e["event"] == "redis_unavailable"] == ["profile cache"]


TAKEN = Taken(chat_id=5, message_id=41, language="en", question=True)


async def test_a_message_whose_replica_died_is_found_by_one_other_replica_once(redis_prefix):
    redis = connect_redis(REDIS_URL)
    dead = InFlightAnswers(redis, redis_prefix, lease_s=0.5)
    others = [InFlightAnswers(redis, redis_prefix, lease_s=0.5) for _ in range(3)]
    try:
        holding = asyncio.Event()

        async def taken_and_never_answered() -> None:
            async with dead.track(TAKEN):
                holding.set()
                await asyncio.Event().wait()  # the replica stops here: SIGKILL, no renewal

        task = asyncio.create_task(taken_and_never_answered())
        await holding.wait()
        assert [await other.lost() for other in others] == [[], [], []]  # within its lease
        await asyncio.sleep(0.7)
        found = await asyncio.gather(*(other.lost() for other in others))
        task.cancel()
    finally:
        await redis.aclose()
    assert sorted(found, key=len) == [[], [], [TAKEN]]


async def test_a_message_being_answered_keeps_its_lease_past_the_first(redis_prefix):
    redis = connect_redis(REDIS_URL)
    working = InFlightAnswers(redis, redis_prefix, lease_s=0.6)
    other = InFlightAnswers(redis, redis_prefix, lease_s=0.6)
    await working.start()
    try:
        async with working.track(TAKEN):
            await asyncio.sleep(1.5)  # over two leases long: renewed meanwhile
            assert await other.lost() == []
        await asyncio.sleep(0.7)
        assert await other.lost() == []  # answered: nothing to tell
        assert await redis.zcard(f"{redis_prefix}inflight") == 0
    finally:
        await working.stop()
        await redis.aclose()


class LateLeaseWrites(Redis):
    """Real Redis whose ZADDs wait at `gate` while it is closed, as behind a busy pool."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.gate = asyncio.Event()
        self.gate.set()

    async def zadd(self, *args: object, **kwargs: object) -> object:
        await self.gate.wait()
        return await super().zadd(*args, **kwargs)


async def test_a_renewal_that_lands_after_the_answer_finished_does_not_bring_it_back(redis_prefix):
    redis = LateLeaseWrites.from_url(REDIS_URL)
    working = InFlightAnswers(redis, redis_prefix, lease_s=30)
    try:
        async with working.track(TAKEN):
            await asyncio.sleep(0.05)  # recorded
            redis.gate.clear()
            renewal = asyncio.create_task(working.renew())
            await asyncio.sleep(0.05)  # the renewal holds its leases and waits
        assert await redis.zcard(f"{redis_prefix}inflight") == 0  # answered: removed
        redis.gate.set()
        await renewal
        assert await redis.zcard(f"{redis_prefix}inflight") == 0  # and not written back
    finally:
        await redis.aclose()


async def test_a_message_a_draining_replica_gives_up_on_is_handed_over_at_once(redis_prefix):
    redis = connect_redis(REDIS_URL)
    draining = InFlightAnswers(redis, redis_prefix, lease_s=30)
    other = InFlightAnswers(redis, redis_prefix, lease_s=30)
    try:

        async def answering() -> None:
            async with draining.track(TAKEN):
                await asyncio.Event().wait()

        task = asyncio.create_task(answering())
        await asyncio.sleep(0.1)
        task.cancel()  # the drain ran out of time
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert await other.lost() == [TAKEN]  # without waiting 30 s for the lease
    finally:
        await redis.aclose()

"""The same update delivered again, concurrently, to several replicas: one answer, one charge.

Replicas are separate dispatchers (each with its own memory) in front of one real backend; the
shared claim is a real Redis on 127.0.0.1:6379 (REDIS_TEST_URL), or the backend's PostgreSQL.
"""

import asyncio
import contextlib
import copy

from structlog.testing import capture_logs

from bot.services.claims import UpdateClaims, connect_redis
from bot.tests.conftest import REDIS_URL, BotEnv, backend_client, closed_port, replica
from bot.tests.telegram import message_update
from bot.tests.test_payments import open_offer, paid_update

COPIES = 5


@contextlib.asynccontextmanager
async def two_replicas(backend, redis_url: str | None, **values: object):
    """Two bot processes; with a Redis URL each has its own client to it."""
    async with contextlib.AsyncExitStack() as stack:
        replicas: list[BotEnv] = []
        for _ in range(2):
            redis = connect_redis(redis_url) if redis_url else None
            if redis is not None:
                stack.push_async_callback(redis.aclose)
            replicas.append(await stack.enter_async_context(replica(backend, redis, **values)))
        yield replicas


async def deliver_concurrently(replicas: list[BotEnv], update: dict) -> None:
    """COPIES deliveries of one update, spread over the replicas, all at once."""
    await asyncio.gather(
        *(
            replicas[n % len(replicas)].dp.feed_raw_update(
                replicas[n % len(replicas)].bot, copy.deepcopy(update)
            )
            for n in range(COPIES)
        )
    )


def replies(replicas: list[BotEnv]) -> list[str]:
    """Every message the user was sent or shown, by any replica."""
    return [t.strip() for r in replicas for t in r.telegram.sent_texts()]


async def assert_answered_and_charged_once(replicas, backend, fake, user_id, text) -> None:
    # The answer and nothing else, from one replica.
    assert replies(replicas) == [text]
    assert sum(1 for r in replicas if r.telegram.named("SendMessageDraft", "SendMessage")) == 1
    assert len(fake.requests("openai")) == 1
    assert (await backend.profile(user_id)).free_messages_left == 9


async def assert_command_answered_once(replicas: list[BotEnv], user_id: int) -> None:
    """A command has no idempotency key at the backend: only the claim keeps it single."""
    for r in replicas:
        r.telegram.calls.clear()
    await deliver_concurrently(replicas, message_update(user_id, "/help"))
    helps = [t for t in replies(replicas) if t.startswith("How to use Pomogator")]
    assert len(helps) == 1 and len(replies(replicas)) == 1


async def test_five_copies_on_two_replicas_sharing_redis_are_answered_once(
    settings, catalog, engine, fake_providers, user_id, redis_prefix
):
    async with (
        backend_client(settings, catalog, engine, fake_providers) as backend,
        two_replicas(backend, REDIS_URL, redis_key_prefix=redis_prefix) as replicas,
    ):
        fake_providers.script("openai", text="answered once")
        update = message_update(user_id, "Hello from a redelivery storm")
        await deliver_concurrently(replicas, update)
        await assert_answered_and_charged_once(
            replicas, backend, fake_providers, user_id, "answered once"
        )
        await assert_command_answered_once(replicas, user_id)
        probe = connect_redis(REDIS_URL)
        try:
            assert await probe.exists(f"{redis_prefix}update:{update['update_id']}") == 1
            assert 0 < await probe.ttl(f"{redis_prefix}update:{update['update_id']}") <= 86400
        finally:
            await probe.aclose()


async def test_five_copies_on_two_replicas_without_redis_are_answered_once(
    settings, catalog, engine, fake_providers, user_id
):
    async with (
        backend_client(settings, catalog, engine, fake_providers) as backend,
        two_replicas(backend, None) as replicas,
    ):
        fake_providers.script("openai", text="answered once")
        await deliver_concurrently(replicas, message_update(user_id, "Hello, PostgreSQL"))
        await assert_answered_and_charged_once(
            replicas, backend, fake_providers, user_id, "answered once"
        )
        await assert_command_answered_once(replicas, user_id)


async def test_unreachable_redis_falls_back_to_the_backend_claim_and_says_so_once(
    settings, catalog, engine, fake_providers, user_id
):
    unreachable = f"redis://127.0.0.1:{closed_port()}/0"
    async with (
        backend_client(settings, catalog, engine, fake_providers) as backend,
        two_replicas(backend, unreachable) as replicas,
    ):
        fake_providers.script("openai", text="answered once")
        with capture_logs() as logs:
            await deliver_concurrently(replicas, message_update(user_id, "Is Redis there?"))
            await assert_answered_and_charged_once(
                replicas, backend, fake_providers, user_id, "answered once"
            )
            await assert_command_answered_once(replicas, user_id)
            await replicas[0].send(message_update(user_id, "/status"))
        assert "9 of 10 messages left" in replicas[0].telegram.sent_texts()[-1]
        # Once per replica and part, however many updates came while Redis was away.
        down = [e["part"] for e in logs if e["event"] == "redis_unavailable"]
        assert down.count("update claims") == 2
        assert all(down.count(part) <= 2 for part in down), down


async def test_redis_is_tried_again_after_an_outage(
    settings, catalog, engine, fake_providers, user_id, redis_prefix
):
    async with backend_client(settings, catalog, engine, fake_providers) as backend:
        working = connect_redis(REDIS_URL)
        async with replica(backend, working, redis_key_prefix=redis_prefix) as bot:
            claims = bot.dp["claims"]
            claims._redis = connect_redis(f"redis://127.0.0.1:{closed_port()}/0")
            claims._circuit._retry = 0.0  # try Redis again at the next update
            with capture_logs() as logs:
                await bot.send(message_update(user_id, "/help"))
                assert claims.redis_down
                await claims._redis.aclose()
                claims._redis = working  # Redis is back
                again = message_update(user_id, "/help")
                await bot.send(again)
            assert not claims.redis_down
            claim_logs = [e for e in logs if e.get("part") == "update claims"]
            assert [e["event"] for e in claim_logs] == ["redis_unavailable", "redis_recovered"]
            assert await working.exists(f"{redis_prefix}update:{again['update_id']}") == 1
            assert len(bot.telegram.named("SendMessage")) == 2
        await working.aclose()


async def test_backend_down_and_no_redis_still_answers_with_try_again(user_id):
    from bot.services.backend import BackendClient

    down = BackendClient(f"http://127.0.0.1:{closed_port()}", "token")
    async with replica(down) as bot:
        with capture_logs() as logs:
            await bot.send(message_update(user_id, "Hello?"))
        [reply] = bot.telegram.named("SendMessage")
        assert "Please try again in a minute" in reply.text
        assert "update_claim_failed" in [e["event"] for e in logs]
    await down.aclose()


async def test_payment_already_claimed_elsewhere_is_still_recorded(env, user_id, redis_prefix):
    """Payments skip the shared claim: a 503 makes Telegram deliver them again, to anyone."""
    payload = await open_offer(env, user_id)
    update = paid_update(user_id, payload, f"claimed-{user_id}")
    redis = connect_redis(REDIS_URL)
    try:
        await redis.set(f"{redis_prefix}update:{update['update_id']}", 1)
        assert await env.backend.claim_update(update["update_id"])  # and in PostgreSQL
        async with replica(env.backend, redis, redis_key_prefix=redis_prefix) as other:
            await other.send(update)
        assert "VIP is active until" in other.telegram.sent_texts()[-1]
        assert (await env.backend.subscription(user_id)).is_vip
    finally:
        await redis.aclose()


class ClaimsDown:
    """A claim store that cannot be reached (the claim route failing, say)."""

    async def claim_update(self, update_id: int) -> bool:
        from bot.services.backend import BackendUnavailable

        raise BackendUnavailable("ConnectError")


class ClaimsByBackend:
    """The backend's claim route, counting the claims it was asked for."""

    def __init__(self) -> None:
        self.claimed = 0

    async def claim_update(self, update_id: int) -> bool:
        self.claimed += 1
        return True


async def test_without_any_claim_a_chat_redelivery_is_still_charged_and_answered_once(
    settings, catalog, engine, fake_providers, user_id
):
    """At-least-once when nothing can be claimed: the backend's message id keeps it single."""
    async with (
        backend_client(settings, catalog, engine, fake_providers) as backend,
        two_replicas(backend, None) as replicas,
    ):
        for r in replicas:
            r.dp["claims"]._backend = ClaimsDown()
        fake_providers.script("openai", text="answered once", first_delay_s=0.05)
        with capture_logs() as logs:
            await deliver_concurrently(replicas, message_update(user_id, "Claims are down"))
        await assert_answered_and_charged_once(
            replicas, backend, fake_providers, user_id, "answered once"
        )
        assert [e["event"] for e in logs].count("update_claim_failed") == 2  # one per replica


async def test_a_claim_waits_for_a_connection_busy_longer_than_redis_may_take(redis_prefix):
    # Under overload every connection can stay busy past Redis's own timeout (the event loop
    # is behind, not Redis): a wait that short took a healthy Redis for down.
    redis = connect_redis(REDIS_URL, max_connections=1)
    claims = UpdateClaims(ClaimsDown(), redis, prefix=redis_prefix)
    pool = redis.connection_pool
    try:
        busy = await pool.get_connection()

        async def give_back_later() -> None:
            await asyncio.sleep(1.0)  # twice the socket timeout
            await pool.release(busy)

        with capture_logs() as logs:
            claimed, _ = await asyncio.gather(claims.claim(1), give_back_later())
        assert claimed
        assert not claims.redis_down
        assert "redis_unavailable" not in [e["event"] for e in logs]
        assert await redis.exists(f"{redis_prefix}update:1") == 1  # in Redis, not the fallback
    finally:
        await redis.aclose()


async def test_a_redis_that_never_answers_fails_each_claim_over_to_the_backend(redis_prefix):
    # The long wait for a free connection must not become a long wait on a hung Redis: each
    # call still fails within the client's timeout, so connections come free and claims move
    # on to the backend.
    accepted: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accepted, never answered

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    redis = connect_redis(f"redis://127.0.0.1:{port}/0", max_connections=2)
    backend = ClaimsByBackend()
    claims = UpdateClaims(backend, redis, prefix=redis_prefix)
    try:
        with capture_logs() as logs:
            claimed = await asyncio.gather(*(claims.claim(number) for number in range(6)))
        assert all(claimed)
        assert claims.redis_down
        assert backend.claimed == 6  # each claim, once Redis had not answered it
        assert [e["event"] for e in logs].count("redis_unavailable") == 1
    finally:
        await redis.aclose()
        server.close()
        for writer in accepted:
            writer.close()


async def test_a_crowd_of_claims_waits_for_a_free_redis_connection(redis_prefix):
    # redis-py's default pool raised MaxConnectionsError past its size, so a crowd of updates
    # took a healthy Redis for down and every replica fell back to the backend for 30 s.
    redis = connect_redis(REDIS_URL, max_connections=2)
    claims = UpdateClaims(ClaimsDown(), redis, prefix=redis_prefix)
    try:
        with capture_logs() as logs:
            claimed = await asyncio.gather(*(claims.claim(number) for number in range(50)))
        assert all(claimed)
        assert not claims.redis_down
        assert "redis_unavailable" not in [e["event"] for e in logs]
        keys = [f"{redis_prefix}update:{number}" for number in range(50)]
        assert await redis.exists(*keys) == 50  # claimed in Redis, not by the fallback
    finally:
        await redis.aclose()

"""The bot's backend client over real HTTP: streaming answers and short calls do not share a pool.

The backend here is a small aiohttp app on loopback: an injected transport has no pool, so
only real connections show what waits for what.
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from bot.config import BotSettings
from bot.main import create_backend
from bot.services.backend import BackendClient, BackendUnavailable
from bot.tests.test_backend_stale_connections import PROFILE
from bot.tests.test_config import GOOD

START = {
    "type": "start",
    "message_id": 1,
    "provider": "openai",
    "model": "gpt",
    "trimmed": False,
    "free_messages_left": 9,
    "is_vip": False,
    "document_truncated": False,
}


@dataclass
class SlowBackend:
    """Answers start streaming at once and go on until `finish` is set; claims answer at once."""

    url: str = ""
    finish: asyncio.Event = field(default_factory=asyncio.Event)
    streaming: int = 0

    async def messages(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        await response.write(json.dumps(START).encode() + b"\n")
        self.streaming += 1
        try:
            await self.finish.wait()
        finally:
            self.streaming -= 1
        return response

    profile_delay_s: float = 0.0  # how long a registration takes

    async def register(self, request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(self.profile_delay_s)
        return web.json_response(PROFILE | {"telegram_id": body["telegram_id"]})

    claim_hold: asyncio.Event | None = None
    claims: int = 0  # received so far
    connections: set[int] = field(default_factory=set)  # the client ports requests came from

    async def claim(self, request: web.Request) -> web.Response:
        self.claims += 1
        if self.claim_hold is not None:
            await self.claim_hold.wait()
        return web.json_response({"claimed": True})

    @web.middleware
    async def count_connections(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        assert request.transport is not None
        self.connections.add(request.transport.get_extra_info("peername")[1])
        return await handler(request)


@contextlib.asynccontextmanager
async def slow_backend() -> AsyncIterator[SlowBackend]:
    backend = SlowBackend()
    app = web.Application(middlewares=[backend.count_connections])
    app.router.add_post("/api/v1/messages", backend.messages)
    app.router.add_post("/api/v1/updates/claim", backend.claim)
    app.router.add_post("/api/v1/users", backend.register)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    backend.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield backend
    finally:
        backend.finish.set()
        await runner.cleanup()


async def test_short_calls_do_not_wait_behind_streaming_answers():
    async with slow_backend() as backend:
        client = BackendClient(backend.url, "token", max_connections=2, max_streams=10)
        # More answers streaming at once than the short calls' whole pool holds.
        answers = [client.ask(user, "a long question") for user in range(5)]
        try:
            first = asyncio.gather(*(anext(answer) for answer in answers))
            started = await asyncio.wait_for(first, timeout=5)
            assert [event.type for event in started] == ["start"] * 5
            assert backend.streaming == 5

            # A new message's claim gets a connection at once, not after an answer ends.
            assert await asyncio.wait_for(client.claim_update(1), timeout=3)
        finally:
            backend.finish.set()
            for answer in answers:
                await answer.aclose()
            await client.aclose()


async def test_calls_beyond_the_pool_wait_for_a_connection_and_all_go_through():
    async with slow_backend() as backend:
        client = BackendClient(backend.url, "token", max_connections=2)
        release = backend.claim_hold = asyncio.Event()
        try:
            claims = asyncio.gather(*(client.claim_update(n) for n in range(6)))
            for _ in range(100):
                if backend.claims == 2:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            assert backend.claims == 2  # the other four wait for one of the two connections
            release.set()
            assert await asyncio.wait_for(claims, timeout=5) == [True] * 6
            assert len(backend.connections) == 2
        finally:
            release.set()
            await client.aclose()


async def test_answers_beyond_a_hundred_at_once_leave_their_connections_for_the_next():
    async with slow_backend() as backend:
        client = BackendClient(backend.url, "token", max_streams=500)
        try:
            for _round in range(2):
                backend.finish.clear()
                answers = [client.ask(user, "a question") for user in range(150)]
                started = asyncio.gather(*(anext(answer) for answer in answers))
                await asyncio.wait_for(started, timeout=10)
                backend.finish.set()
                for answer in answers:
                    assert [event async for event in answer] == []
            # The second round's answers went on the first round's connections.
            assert len(backend.connections) == 150
        finally:
            backend.finish.set()
            await client.aclose()


async def register(client: BackendClient, telegram_id: int) -> int:
    profile = await client.register(
        telegram_id, username="ann", first_name="Ann", last_name=None, language_code="en"
    )
    return profile.telegram_id


async def test_a_slow_backend_is_waited_for_up_to_backend_timeout_s_then_reported_unavailable():
    async with slow_backend() as backend:
        settings = BotSettings(  # type: ignore[call-arg, arg-type]
            _env_file=None, **GOOD, backend_url=backend.url, backend_timeout_s=0.5
        )
        client = create_backend(settings)
        try:
            # A loaded backend, slower than a quick answer but within the budget: waited for.
            backend.profile_delay_s = 0.3
            assert await register(client, 41) == 41
            # Past the budget: the user hears the bot is unavailable.
            backend.profile_delay_s = 1.0
            with pytest.raises(BackendUnavailable, match="ReadTimeout"):
                await register(client, 42)
        finally:
            await client.aclose()

"""The SDK client the adapters are built on."""

import asyncio

import httpx2
import openai
from aiohttp import web

from backend.config import Settings
from backend.services.providers.client import build_client


async def test_client_uses_the_given_timeouts_and_retries():
    client = build_client(
        base_url="https://api.example.test/v1",
        api_key="sk-test",
        max_retries=3,
        connect_timeout_s=2.0,
        read_timeout_s=30.0,
    )
    try:
        assert client.max_retries == 3
        assert client.timeout == httpx2.Timeout(30.0, connect=2.0)
        assert str(client.base_url) == "https://api.example.test/v1/"
    finally:
        await client.close()


async def test_client_keeps_a_given_http_client_and_still_applies_the_timeouts():
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(
            200, json={"id": "resp_1", "object": "response", "status": "completed"}
        )

    http = openai.DefaultAsyncHttpxClient(transport=httpx2.MockTransport(handler))
    client = build_client(
        base_url="https://api.example.test/v1",
        api_key="sk-test",
        read_timeout_s=7.0,
        http_client=http,
    )
    try:
        await client.responses.retrieve("resp_1")
    finally:
        await client.close()

    assert seen[0].extensions["timeout"]["read"] == 7.0
    assert seen[0].headers["authorization"] == "Bearer sk-test"


async def requests_in_flight_at_once(max_connections: int, calls: int) -> int:
    """How many of `calls` concurrent requests reach a provider that holds them all."""
    arrived, release = asyncio.Condition(), asyncio.Event()
    held = 0

    async def hold(_request: web.Request) -> web.Response:
        nonlocal held
        async with arrived:
            held += 1
            arrived.notify_all()
        await release.wait()
        return web.json_response({"id": "resp_1", "object": "response", "status": "completed"})

    app = web.Application()
    app.router.add_get("/v1/responses/{id}", hold)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    client = build_client(
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key="sk-test",
        max_retries=0,
        max_connections=max_connections,
    )
    try:
        tasks = [asyncio.create_task(client.responses.retrieve("resp_1")) for _ in range(calls)]
        async with arrived:
            await asyncio.wait_for(arrived.wait_for(lambda: held >= min(calls, max_connections)), 5)
        await asyncio.sleep(0.1)  # any request the pool would let through arrives meanwhile
        at_once = held
        release.set()
        await asyncio.gather(*tasks)
        return at_once
    finally:
        release.set()
        await client.close()
        await runner.cleanup()


async def test_the_connection_bound_is_the_one_given():
    assert await requests_in_flight_at_once(max_connections=2, calls=4) == 2
    assert await requests_in_flight_at_once(max_connections=4, calls=4) == 4


def test_a_provider_streams_more_answers_at_once_than_the_sdks_default_by_default():
    assert Settings.model_fields["provider_max_connections"].default > 1000

"""The SDK client the adapters are built on."""

import httpx2
import openai

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

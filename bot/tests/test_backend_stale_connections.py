"""A kept-alive connection the backend drops under a request: safe calls are sent once more on
a new connection, calls the backend may have acted on are not.

The backend here is a raw HTTP/1.1 server on loopback that closes chosen requests' connections
without answering, as a server does when its keep-alive runs out as the request arrives.
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from bot.services.backend import BackendClient, BackendError, BackendUnavailable

QUOTA = "free_limit_reached"

PROFILE = {
    "telegram_id": 7,
    "username": "ann",
    "first_name": "Ann",
    "language": "en",
    "is_vip": False,
    "vip_expires_at": None,
    "free_messages_left": 10,
    "free_messages_limit": 10,
    "provider": "openai",
    "model": "gpt",
    "show_reasoning": False,
    "mode": "default",
    "custom_instructions": None,
    "created_at": "2026-12-01T00:00:00Z",
}


@dataclass
class DroppingBackend:
    """Answers every request on a kept-alive connection, except the ones numbered in `drop`
    (1-based, counted over all connections), whose connection it closes instead."""

    drop: set[int]
    url: str = ""
    requests: list[str] = field(default_factory=list)
    connections: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode().split("\r\n")
                length = next(
                    (
                        int(line.split(":")[1])
                        for line in lines
                        if line.lower().startswith("content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                self.requests.append(lines[0])
                if len(self.requests) in self.drop:
                    writer.transport.abort()
                    return
                path = lines[0].split()[1]
                status = b"200 OK"
                if "messages" in path:  # the question reached the backend: a refusal answers
                    status = b"402 Payment Required"
                    body = json.dumps({"error": {"code": QUOTA, "message": "spent"}}).encode()
                else:
                    body = json.dumps({"claimed": True} if "claim" in path else PROFILE).encode()
                writer.write(
                    b"HTTP/1.1 "
                    + status
                    + b"\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def dropping_backend(*drop: int) -> AsyncIterator[DroppingBackend]:
    backend = DroppingBackend(set(drop))
    server = await asyncio.start_server(backend.serve, "127.0.0.1", 0)
    backend.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield backend
    finally:
        server.close()


async def test_a_profile_read_on_a_dropped_connection_is_sent_again():
    async with dropping_backend(2) as backend:
        client = BackendClient(backend.url, "token")
        try:
            await client.profile(7)
            profile = await client.profile(7)
        finally:
            await client.aclose()
    assert profile.telegram_id == 7
    assert backend.requests == ["GET /api/v1/users/7 HTTP/1.1"] * 3
    assert backend.connections == 2


async def test_registering_is_sent_again_because_it_only_upserts_the_profile():
    async with dropping_backend(2) as backend:
        client = BackendClient(backend.url, "token")
        names = {"username": "ann", "first_name": "Ann", "last_name": None, "language_code": "en"}
        try:
            await client.register(7, **names)
            profile = await client.register(7, **names)
        finally:
            await client.aclose()
    assert profile.first_name == "Ann"
    assert backend.requests == ["POST /api/v1/users HTTP/1.1"] * 3


async def test_a_claim_is_not_sent_twice():
    # A second claim of an update the backend did record would come back "already claimed"
    # and the update would be dropped: a dropped claim is reported, not repeated.
    async with dropping_backend(2) as backend:
        client = BackendClient(backend.url, "token")
        try:
            assert await client.claim_update(1) is True
            with pytest.raises(BackendUnavailable):
                await client.claim_update(2)
        finally:
            await client.aclose()
    assert backend.requests == ["POST /api/v1/updates/claim HTTP/1.1"] * 2


async def test_a_safe_call_is_sent_at_most_twice():
    async with dropping_backend(1, 2) as backend:
        client = BackendClient(backend.url, "token")
        try:
            with pytest.raises(BackendUnavailable):
                await client.profile(7)
        finally:
            await client.aclose()
    assert len(backend.requests) == 2


async def ask(client: BackendClient, client_message_id: str | None) -> list[object]:
    return [event async for event in client.ask(7, "Hello?", client_message_id)]


async def test_a_question_on_a_dropped_connection_is_sent_again_under_its_message_id():
    # The backend answers and charges a client message id once: sending it again is safe.
    async with dropping_backend(2) as backend:
        client = BackendClient(backend.url, "token")
        try:
            with pytest.raises(BackendError) as first:
                await ask(client, "7:1")
            with pytest.raises(BackendError) as second:
                await ask(client, "7:2")
        finally:
            await client.aclose()
    assert (first.value.code, second.value.code) == (QUOTA, QUOTA)
    assert backend.requests == ["POST /api/v1/messages HTTP/1.1"] * 3


async def test_a_question_without_a_message_id_is_not_sent_twice():
    async with dropping_backend(2) as backend:
        client = BackendClient(backend.url, "token")
        try:
            with pytest.raises(BackendError):
                await ask(client, None)
            with pytest.raises(BackendUnavailable):
                await ask(client, None)
        finally:
            await client.aclose()
    assert len(backend.requests) == 2

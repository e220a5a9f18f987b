"""A loopback TCP proxy in front of PostgreSQL that counts the backend's round trips.

A round trip is a client message the client must then wait for ReadyForQuery on: a simple
`Query` ('Q') or a `Sync` ('S') closing an extended-protocol batch (Parse/Bind/Execute...).
That counts what pg_stat_statements cannot see: asyncpg's prepares, SQLAlchemy's pre-ping
(`;` in its own transaction), and connection set-up.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

_UNTYPED = {80877103, 80877104}  # SSLRequest, GSSENCRequest: answered before the startup


class RoundTrips:
    """The proxy's counters (reset them with `reset()` before a measured phase)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.round_trips = 0
        self.connections = 0
        self.port = 0

    def reset(self) -> None:
        self.round_trips = 0
        self.connections = 0

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        back = asyncio.create_task(_pipe(up_reader, writer))
        try:
            await self._count(reader, up_writer)
        finally:
            up_writer.close()
            with contextlib.suppress(Exception):
                await back
            writer.close()

    async def _count(self, reader: asyncio.StreamReader, up: asyncio.StreamWriter) -> None:
        buffer = bytearray()
        started = False
        while chunk := await reader.read(65536):
            up.write(chunk)
            await up.drain()
            buffer += chunk
            at = 0
            while True:
                if not started:  # length-prefixed messages without a type byte
                    if len(buffer) - at < 8:
                        break
                    size = int.from_bytes(buffer[at : at + 4], "big")
                    code = int.from_bytes(buffer[at + 4 : at + 8], "big")
                    if len(buffer) - at < size:
                        break
                    at += size
                    started = code not in _UNTYPED
                    continue
                if len(buffer) - at < 5:
                    break
                size = int.from_bytes(buffer[at + 1 : at + 5], "big")
                if len(buffer) - at < 1 + size:
                    break
                if buffer[at] in (ord("Q"), ord("S")):
                    self.round_trips += 1
                at += 1 + size
            del buffer[:at]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    # The server hung up (after Terminate, say): so does the proxy, or the client waits on.
    writer.close()


@contextlib.asynccontextmanager
async def round_trip_proxy(target_port: int) -> AsyncIterator[RoundTrips]:
    """Serve the proxy on a free loopback port for the duration of the block."""
    counter = RoundTrips(target_port)
    server = await asyncio.start_server(counter._client, "127.0.0.1", 0)
    counter.port = server.sockets[0].getsockname()[1]
    try:
        yield counter
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)

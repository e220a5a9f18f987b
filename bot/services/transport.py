"""The bot's HTTP transport to the backend: httpx's API over aiohttp's connection pool.

httpcore's pool walks every connection at each request's start and end (and, for every
waiting request, every connection again), checking each idle one's socket. With hundreds of
answers streaming at once that was a fifth of the bot's CPU, and past 100 open connections
it closed each one as its answer ended (httpcore 1.0.9 counts all connections as idle ones),
so the next answer connected anew. aiohttp keeps idle connections in a queue per host.

`httpx-aiohttp` maps aiohttp's errors coarsely: a refused connection and a connection the
server closed both become `httpx.ConnectTimeout`. The client's retries tell those apart (a
refused one was never sent; a closed kept-alive one may be sent again only when that is
safe), so they are named precisely here.
"""

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

# Most specific first: ClientConnectorError and ServerDisconnectedError are both
# ClientConnectionErrors, and the timeouts below are ServerTimeoutErrors.
PRECISE: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientOSError, httpx.ReadError),
)


def precise(exc: httpx.TransportError) -> httpx.TransportError:
    """The httpx error that says what happened to the aiohttp request behind `exc`."""
    for cause, error in PRECISE:
        if isinstance(exc.__cause__, cause):
            return error(str(exc))  # httpx names the request as the error leaves the client
    return exc


class BackendTransport(AiohttpTransport):
    """`AiohttpTransport` with its errors named as httpcore would name them, and no retries
    of its own: the client decides what may be sent twice."""

    def get_client(self) -> aiohttp.ClientSession:
        session = super().get_client()
        # aiohttp sends a GET, PUT or DELETE again when the server closed the connection under
        # it; with the client's own retry that made three sends (no public switch, aiohttp
        # 3.14; test_backend_stale_connections fails if this stops working).
        session._retry_connection = False
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.TransportError as exc:
            raise precise(exc) from exc.__cause__

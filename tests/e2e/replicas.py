"""Two backend and two bot processes behind the real nginx, sharing PostgreSQL and Redis.

Telegram (the fake) delivers over HTTPS to nginx, which balances the webhook over both bots and
the payment webhook over both backends. The bots reach the backends through a second server of
the same nginx on loopback: the stand-in for what Compose's DNS name (`backend`, every replica)
or a Kubernetes Service does in a deployment.
"""

import asyncio
import contextlib
import os
import secrets
import signal
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.deploy.conftest import SERVER_OPTIONS, Nginx, start_nginx
from tests.e2e.conftest import (
    BOT_TOKEN,
    INTERNAL_TOKEN,
    PROVIDER_KEYS,
    SECRETS,
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    Service,
    System,
    init_database,
)
from tests.fakes.providers import FLAVOURS, start_fake_providers
from tests.fakes.telegram import start_fake_telegram
from tests.processes import STARTUP_TIMEOUT_S, free_port, service_env

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
REPLICAS = 2


def redis_answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1):
            return True
    except OSError:
        return False


def internal_balancer(port: int, backend_ports: list[int]) -> str:
    """An nginx server on loopback that spreads the bots' backend calls over every backend."""
    servers = "\n".join(f"    server 127.0.0.1:{p} {SERVER_OPTIONS};" for p in backend_ports)
    return f"""
upstream pomogator_test_backends {{
    zone pomogator_test_backends 64k;
{servers}
    keepalive 32;
    keepalive_timeout 20s;
}}

server {{
    listen 127.0.0.1:{port};
    client_max_body_size 64m;
    location / {{
        proxy_pass http://pomogator_test_backends;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        proxy_read_timeout 600s;
        proxy_next_upstream error http_502 http_503 non_idempotent;
    }}
}}
"""


@dataclass
class Cluster:
    """The replicas, nginx in front of them, and a `System` view for the journey helpers.

    `system.bot_url` is nginx's HTTPS address (users reach "the bot", whichever replica
    answers); `system.backend_url` the bots' way to the backends, for reading ledgers.
    """

    system: System
    nginx: Nginx
    backends: list[Service]
    bots: list[Service]
    backend_urls: list[str]
    bot_urls: list[str]
    launches: dict[str, tuple[list[str], dict[str, str], Path]] = field(default_factory=dict)
    retired: list[Service] = field(default_factory=list)

    def replica(self, name: str) -> tuple[list[Service], int, str]:
        kind, number = name.split("-")
        index = int(number) - 1
        if kind == "backend":
            return self.backends, index, self.backend_urls[index]
        return self.bots, index, self.bot_urls[index]

    async def stop(self, name: str, signum: int = signal.SIGTERM) -> int:
        """Stop one replica ("backend-1", "bot-2") as a deploy or a crash does."""
        replicas, index, _url = self.replica(name)
        if signum == signal.SIGKILL:
            return await replicas[index].kill()
        return await replicas[index].stop(signum)

    async def start(self, name: str) -> Service:
        """Start a stopped replica again, as before; back once healthy."""
        replicas, index, url = self.replica(name)
        old = replicas[index]
        assert old.process.returncode is not None, f"{name} is still running"
        webhooks = len(self.system.telegram.calls("setWebhook"))
        args, env, cwd = self.launches[name]
        new = await Service.start(name, args, env, cwd)
        self.retired.append(old)
        replicas[index] = new
        await new.wait_healthy(f"{url}/health", self.system.http)
        if name.startswith("bot"):
            await self.system.telegram.wait_for(
                "setWebhook", count=webhooks + 1, timeout=STARTUP_TIMEOUT_S
            )
        return new

    async def restart(self, name: str) -> None:
        """SIGTERM, then start again: one step of a rolling deploy."""
        code = await self.stop(name)
        assert code in (0, -signal.SIGTERM), f"{name} exited with {code}"
        await self.start(name)


@contextlib.asynccontextmanager
async def running_cluster(
    database_url: str,
    workdir: Path,
    nginx_dir: Path,
    *,
    backend_env: Mapping[str, str] | None = None,
    bot_env: Mapping[str, str] | None = None,
) -> AsyncIterator[Cluster]:
    """Two backends and two bots behind nginx; stopped (and their logs checked) at the end."""
    if not redis_answers(REDIS_URL):
        pytest.skip(f"no Redis at {REDIS_URL}: replicas share their state there")
    backend_ports = [free_port() for _ in range(REPLICAS)]
    bot_ports = [free_port() for _ in range(REPLICAS)]
    internal_port = free_port()
    shared = {"REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": f"pomogator-e2e-{secrets.token_hex(4)}:"}
    async with (
        start_fake_providers() as providers,
        start_fake_telegram(BOT_TOKEN) as telegram,
        httpx.AsyncClient() as http,
    ):
        nginx = await start_nginx(
            nginx_dir,
            [f"127.0.0.1:{p}" for p in bot_ports],
            [f"127.0.0.1:{p}" for p in backend_ports],
            extra_conf=internal_balancer(internal_port, backend_ports),
        )
        await telegram.trust(nginx.trust())
        launches: dict[str, tuple[list[str], dict[str, str], Path]] = {}
        for number, port in enumerate(backend_ports, 1):
            launches[f"backend-{number}"] = (
                ["-m", "backend"],
                service_env(
                    APP_ENV="production",
                    DATABASE_URL=database_url,
                    INTERNAL_API_TOKEN=INTERNAL_TOKEN,
                    BACKEND_HOST="127.0.0.1",
                    BACKEND_PORT=str(port),
                    LOG_FORMAT="json",
                    PROVIDER_MAX_RETRIES="0",
                    **{f"{flavour.upper()}_API_KEY": key for flavour, key in PROVIDER_KEYS.items()},
                    **{f"{f.upper()}_BASE_URL": providers.base_url(f) for f in FLAVOURS},
                    **shared,
                    **(backend_env or {}),
                ),
                workdir,
            )
        for number, port in enumerate(bot_ports, 1):
            launches[f"bot-{number}"] = (
                ["-m", "bot"],
                service_env(
                    APP_ENV="production",
                    BOT_MODE="webhook",
                    BOT_TOKEN=BOT_TOKEN,
                    TELEGRAM_API_BASE=telegram.base_url,
                    WEBHOOK_BASE_URL=nginx.https,
                    WEBHOOK_PATH=WEBHOOK_PATH,
                    WEBHOOK_SECRET=WEBHOOK_SECRET,
                    WEBHOOK_CERT=str(nginx.cert),
                    BOT_HOST="127.0.0.1",
                    BOT_PORT=str(port),
                    BACKEND_URL=f"http://127.0.0.1:{internal_port}",
                    INTERNAL_API_TOKEN=INTERNAL_TOKEN,
                    LOG_FORMAT="json",
                    STREAM_INTERVAL_S="0.25",
                    **shared,
                    **(bot_env or {}),
                ),
                workdir,
            )
        services: list[Service] = []
        try:
            await init_database(database_url)
            services = list(
                await asyncio.gather(
                    *(Service.start(name, *launch) for name, launch in launches.items())
                )
            )
            backends = [s for s in services if s.name.startswith("backend")]
            bots = [s for s in services if s.name.startswith("bot")]
            backend_urls = [f"http://127.0.0.1:{p}" for p in backend_ports]
            bot_urls = [f"http://127.0.0.1:{p}" for p in bot_ports]
            await asyncio.gather(
                *(
                    service.wait_healthy(f"{url}/health", http)
                    for service, url in zip(
                        [*backends, *bots], [*backend_urls, *bot_urls], strict=True
                    )
                )
            )
            await telegram.wait_for("setWebhook", count=REPLICAS, timeout=STARTUP_TIMEOUT_S)
            first = {"backend": launches["backend-1"], "bot": launches["bot-1"]}
            balanced = f"http://127.0.0.1:{internal_port}"  # the backend, whichever replica
            system = System(
                telegram, providers, backends[0], bots[0], balanced, nginx.https, http, first
            )
            cluster = Cluster(system, nginx, backends, bots, backend_urls, bot_urls, launches)
            yield cluster
            services = [*cluster.bots, *cluster.backends]
        finally:
            codes = {s.name: await s.stop() for s in services}
            await nginx.process.stop(signal.SIGQUIT)
        everyone = [*services, *cluster.retired]
        outputs = "\n".join(f"--- {s.name} ---\n{s.tail()}" for s in services)
        # uvicorn re-raises SIGTERM once it has shut down cleanly.
        assert all(code in (0, -signal.SIGTERM) for code in codes.values()), (codes, outputs)
        leaked = {s.name for s in everyone for secret in SECRETS if secret in s.output}
        assert not leaked, f"secrets in the output of {leaked}"

"""The deployment as operators run it, without Docker: the project's nginx configuration served
by the real nginx in front of the real `python -m backend` and `python -m bot` processes.

Each process runs on loopback with free ports and directories of its own; the outside world is
the in-process fake Telegram and fake AI providers (tests/fakes). Nothing leaves the machine.
"""

import asyncio
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fakes.providers import FLAVOURS, FakeProviders, start_fake_providers
from tests.fakes.telegram import FakeTelegram, start_fake_telegram
from tests.processes import ROOT, STARTUP_TIMEOUT_S, Process, free_port, service_env

BOT_TOKEN = "123456:TEST-deploy-bot-token-9f8e7d6c5b4a"
INTERNAL_TOKEN = "deploy-internal-token-" + secrets.token_hex(16)
WEBHOOK_SECRET = "deploy-webhook-secret-" + secrets.token_hex(16)
PAYMENT_SECRET = "deploy-payment-secret-" + secrets.token_hex(16)
WEBHOOK_PATH = "/telegram/webhook"
PROVIDER_KEYS = {flavour: f"sk-deploy-{flavour}-{secrets.token_hex(8)}" for flavour in FLAVOURS}
SECRETS = (BOT_TOKEN, INTERNAL_TOKEN, WEBHOOK_SECRET, PAYMENT_SECRET, *PROVIDER_KEYS.values())


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """One of the project's shell scripts, as an operator runs it; output kept for asserts."""
    return subprocess.run(
        ["bash", *args],  # noqa: S607
        cwd=ROOT,
        env=env if env is not None else service_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def init_database(url: str) -> None:
    """The schema as a deploy makes it: `scripts/init_db.py` (the `migrate` service)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "init_db.py")],
        env=service_env(DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@dataclass
class Nginx:
    """The real nginx serving the project's rendered configuration from its own directory."""

    directory: Path
    http_port: int
    https_port: int
    alt_https_port: int
    process: Process

    @property
    def cert(self) -> Path:
        return self.directory / "ssl" / "fullchain.pem"

    def trust(self) -> ssl.SSLContext:
        """TLS settings of a client that trusts this nginx's self-signed certificate."""
        return ssl.create_default_context(cafile=str(self.cert))

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def access_log(self) -> str:
        """What nginx wrote to its stdout: the access log (error_log goes to stderr)."""
        return self.process.output


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        pytest.fail("nginx is not installed: run scripts/ensure_nginx.sh (make test does)")
    return found


def render_nginx(directory: Path, **variables: str) -> None:
    """The project's certificate script and templates, as the nginx image would use them."""
    made = run_script(
        "scripts/self_signed_cert.sh", "--out", str(directory / "ssl"), "--days", "2", "127.0.0.1"
    )
    assert made.returncode == 0, made.stderr
    rendered = run_script(
        "scripts/nginx_local.sh", "render", str(directory), env=service_env(**variables)
    )
    assert rendered.returncode == 0, rendered.stderr


# The passive health check of every upstream server (docker-compose.yml's NGINX_*_SERVERS):
# after one failed request a replica is left out for 2 s, then tried again.
SERVER_OPTIONS = "max_fails=1 fail_timeout=2s"


def servers(*addresses: str) -> str:
    """An upstream's `server` lines for these host:port addresses (NGINX_*_SERVERS)."""
    return " ".join(f"server {address} {SERVER_OPTIONS};" for address in addresses)


async def start_nginx(
    directory: Path,
    bot_upstream: str | list[str],
    backend_upstream: str | list[str],
    extra_conf: str = "",
    **extra: str,
) -> Nginx:
    """Render the configuration into `directory` and run nginx in the foreground on it.

    The upstreams are host:port addresses, one or a list (replicas); `extra_conf` is added to
    conf.d as it is (a test's own server block).
    """
    http_port, https_port, alt_port = free_port(), free_port(), free_port()
    render_nginx(
        directory,
        NGINX_SERVER_NAME="127.0.0.1",
        NGINX_HTTP_PORT=str(http_port),
        NGINX_HTTPS_PORT=str(https_port),
        NGINX_ALT_HTTPS_PORT=str(alt_port),
        WEBHOOK_PATH=WEBHOOK_PATH,
        NGINX_BOT_SERVERS=servers(
            *([bot_upstream] if isinstance(bot_upstream, str) else bot_upstream)
        ),
        NGINX_BACKEND_SERVERS=servers(
            *([backend_upstream] if isinstance(backend_upstream, str) else backend_upstream)
        ),
        **extra,
    )
    if extra_conf:
        (directory / "conf.d" / "zz-test.conf").write_text(extra_conf)
    globals_ = f"daemon off; pid {directory}/nginx.pid;"
    if os.geteuid() == 0:
        # Workers of a root master would switch to the packaged user, who cannot enter the
        # test's private directory.
        globals_ += " user root;"
    args = [nginx_binary(), "-p", f"{directory}/", "-c", str(directory / "nginx.conf")]
    args += ["-e", "stderr", "-g", globals_]
    process = await Process.start("nginx", args, service_env(), directory)
    nginx = Nginx(directory, http_port, https_port, alt_port, process)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while loop.time() < deadline:
        if process.process.returncode is not None:
            await process.stop()
            pytest.fail(f"nginx exited with {process.process.returncode}:\n{process.output}")
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", https_port)
            writer.close()
            await writer.wait_closed()
            return nginx
        except OSError:
            await asyncio.sleep(0.05)
    await process.stop()
    pytest.fail(f"nginx did not listen within 10 s:\n{process.output}")


@dataclass
class Stack:
    """nginx in front of the bot and the backend, and the fakes they talk to."""

    nginx: Nginx
    telegram: FakeTelegram
    providers: FakeProviders
    backend: Process
    bot: Process
    backend_url: str
    bot_url: str

    def client(self) -> httpx.AsyncClient:
        """A client that trusts the self-signed certificate, as Telegram does once uploaded."""
        return httpx.AsyncClient(verify=self.nginx.trust(), timeout=10)


@pytest.fixture(scope="module")
def empty_database(scratch_database: Callable[[], str]) -> str:
    """A database of the module's own, created empty (made outside the event loop)."""
    return scratch_database()


@pytest.fixture(scope="module")
async def stack(
    empty_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """Backend, bot and nginx as processes; stopped, and their logs checked, at the end."""
    database = empty_database
    workdir = tmp_path_factory.mktemp("deploy-services")  # no developer .env in reach
    backend_port, bot_port = free_port(), free_port()
    backend_url, bot_url = f"http://127.0.0.1:{backend_port}", f"http://127.0.0.1:{bot_port}"
    nginx_dir = tmp_path_factory.mktemp("nginx")
    async with (
        start_fake_providers() as providers,
        start_fake_telegram(BOT_TOKEN) as telegram,
        httpx.AsyncClient() as http,
    ):
        nginx = await start_nginx(nginx_dir, f"127.0.0.1:{bot_port}", f"127.0.0.1:{backend_port}")
        processes = [nginx.process]
        try:
            # The bot needs neither database nor backend to start, so it starts meanwhile.
            bot = await Process.start(
                "bot",
                [sys.executable, "-m", "bot"],
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
                    BOT_PORT=str(bot_port),
                    BACKEND_URL=backend_url,
                    INTERNAL_API_TOKEN=INTERNAL_TOKEN,
                ),
                workdir,
            )
            processes.append(bot)
            await asyncio.to_thread(init_database, database)
            backend = await Process.start(
                "backend",
                [sys.executable, "-m", "backend"],
                service_env(
                    APP_ENV="production",
                    DATABASE_URL=database,
                    INTERNAL_API_TOKEN=INTERNAL_TOKEN,
                    PAYMENT_WEBHOOK_SECRET=PAYMENT_SECRET,
                    BACKEND_HOST="127.0.0.1",
                    BACKEND_PORT=str(backend_port),
                    PROVIDER_MAX_RETRIES="0",
                    **{f"{f.upper()}_API_KEY": key for f, key in PROVIDER_KEYS.items()},
                    **{f"{f.upper()}_BASE_URL": providers.base_url(f) for f in FLAVOURS},
                ),
                workdir,
            )
            processes.append(backend)
            await asyncio.gather(
                backend.wait_healthy(f"{backend_url}/health", http),
                bot.wait_healthy(f"{bot_url}/health", http),
            )
            await telegram.wait_for("setWebhook", timeout=STARTUP_TIMEOUT_S)
            yield Stack(nginx, telegram, providers, backend, bot, backend_url, bot_url)
        finally:
            # Front to back, as `docker compose down` would: nginx first, the backend last.
            order = {"nginx": 0, "bot": 1, "backend": 2}
            for process in sorted(processes, key=lambda p: order[p.name]):
                await process.stop(signal.SIGQUIT if process.name == "nginx" else signal.SIGTERM)
        leaked = {p.name for p in processes for s in SECRETS if s in p.output}
        assert not leaked, f"secrets in the output of {leaked}"


def access_log_lines(nginx: Nginx, path: str) -> list[str]:
    """Access-log lines of requests for exactly this path."""
    return [line for line in nginx.access_log.splitlines() if f'"path":"{path}"' in line]


def pg_bin_dir(server_version_num: int) -> str:
    """A directory of PostgreSQL client tools whose major version matches the server's.

    pg_dump refuses servers newer than itself: the machine's /usr/lib/postgresql/<major>/bin,
    else the tools inside the `pgserver` package (the embedded server's own version).
    """
    wanted = server_version_num // 10000
    candidates: list[Path] = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    try:
        import pgserver

        candidates.append(Path(pgserver.__file__).parent / "pginstall" / "bin")
    except ImportError:
        pass
    on_path = shutil.which("pg_dump")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    versions: dict[Path, int] = {}
    for directory in candidates:
        tool = directory / "pg_dump"
        if not tool.exists():
            continue
        out = subprocess.run(
            [str(tool), "--version"], capture_output=True, text=True, check=False
        ).stdout
        match = re.search(r"(\d+)\.", out)
        if match:
            versions[directory] = int(match.group(1))
    usable = sorted((v, str(d)) for d, v in versions.items() if v >= wanted)
    exact = [d for v, d in usable if v == wanted]
    if exact or usable:
        return (exact or [usable[0][1]])[0]
    pytest.fail(f"no pg_dump of PostgreSQL {wanted} or newer here: {versions}")

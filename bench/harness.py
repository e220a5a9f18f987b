"""The system under load: real services, real PostgreSQL, the system tests' fakes, and probes.

Each scenario gets a fresh system (`running_system`): new fakes, a new database on the bench's
own PostgreSQL server (started once per run, with pg_stat_statements preloaded), and new
`python -m backend` / `python -m bot` processes in webhook mode, configured as in production
(stream interval, Redis claims when a Redis answers on 127.0.0.1:6379) except for the fakes'
addresses and, where the fake Bot API has no flood control, the bot's own Telegram limiter
(`BOT_ENV` in bench/scenarios.py). Updates are POSTed to the bot's webhook by the fake
Telegram, with the secret header and at most `max_connections` (40, Telegram's default) at a
time, as Telegram delivers them.
"""

import asyncio
import contextlib
import itertools
import os
import platform
import secrets
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.wire import RoundTrips, round_trip_proxy
from scripts.local_db import drop_database
from tests.e2e.conftest import (
    BOT_TOKEN,
    INTERNAL_TOKEN,
    PROVIDER_KEYS,
    WEBHOOK_BASE_URL,
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    Service,
    asked,
    init_database,
)
from tests.e2e.postgres import PrivatePostgres, _server_directory, server_account
from tests.fakes.providers import FLAVOURS, FakeProviders
from tests.fakes.telegram import Call, FakeTelegram
from tests.processes import STARTUP_TIMEOUT_S, free_port, service_env

# Every answer the fake providers give starts with this: a message without it is no answer.
MARKER = "Benchmark answer"
ANSWER_TEXT = (
    f"{MARKER}: the Moon is about 384,400 km from the Earth on average. Its orbit is an "
    "ellipse, so the distance changes by about 50,000 km over a month; light covers it in a "
    "little over a second."
)
BACKEND_APP_NAME = "pomogator-backend"  # application_name of the backend's connections
DB_POOL_SIZE = 10  # the backend's default (DB_POOL_SIZE, no overflow by default)
TELEGRAM_WEBHOOK_CONNECTIONS = 40  # Telegram's default max_connections per webhook
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_user_ids = itertools.count(8_000_000_000 + secrets.randbelow(10**6) * 1000)


# --- the machine and its processes ------------------------------------------------------------


def machine() -> dict[str, str]:
    """CPU model, cores, RAM, OS, Python and the date: the heading of the table."""
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram_kb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                ram_kb = int(line.split()[1])
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "ram": f"{ram_kb / 1024 / 1024:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (from /proc/<pid>/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo.extend(int(child) for child in children.read().split())
    return found


def rss_mb(pids: list[int]) -> float:
    """Resident memory of these processes together (VmRSS), in MB."""
    total_kb = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes together, in seconds.

    With the children they have reaped (cutime, cstime): a PostgreSQL backend that exits
    mid-run (a connection closed) leaves its CPU to the postmaster; live ones count once.
    """
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
            ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / _CLOCK_TICKS


def redis_server_pids() -> list[int]:
    """The local redis-server processes (the whole server: other users of it count too)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/comm") as comm:
                if comm.read().strip() == "redis-server":
                    found.append(int(entry))
    return found


# --- PostgreSQL ---------------------------------------------------------------------------------


class BenchPostgres(PrivatePostgres):
    """A private server as the system tests make one, with pg_stat_statements preloaded.

    fsync stays on (the tests turn it off): commits cost what they cost in production.
    """

    version = ""

    async def start(self) -> None:
        options = (
            f"-p {self.port} -h 127.0.0.1 -k {self.root} -c max_connections=200"
            " -c shared_preload_libraries=pg_stat_statements"
            " -c pg_stat_statements.track_utility=on -c pg_stat_statements.max=5000"
        )
        await self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
            "-t", "60", "start",
        )  # fmt: skip

    def pids(self) -> list[int]:
        """The postmaster and every server process under it."""
        with contextlib.suppress(OSError, ValueError):
            postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
            return process_tree(postmaster)
        return []


@contextlib.asynccontextmanager
async def bench_postgres() -> AsyncIterator[BenchPostgres]:
    """The bench's own PostgreSQL for the run; deleted afterwards."""
    root = _server_directory(server_account())
    try:
        server = BenchPostgres(root, free_port())
        await server.init()
        await server.start()
        try:
            admin = create_async_engine(server.server.url, isolation_level="AUTOCOMMIT")
            async with admin.connect() as conn:
                await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
                server.version = str(await conn.scalar(text("SHOW server_version")))
            await admin.dispose()
            yield server
        finally:
            with contextlib.suppress(RuntimeError):
                await server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    """True if something accepts connections where production's Redis would be."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


# --- the fakes, instrumented ----------------------------------------------------------------------


@dataclass
class ChatLog:
    """What one simulated user posted and saw, as times (time.time())."""

    posted: list[float] = field(default_factory=list)
    first_shown: float | None = None  # the first text of any kind (the "thinking" draft)
    first_text: float | None = None  # the first text of the answer itself
    answered: list[float] = field(default_factory=list)  # final chunks (they carry the buttons)
    errors: list[str] = field(default_factory=list)  # other messages: apologies, refusals


class BenchTelegram(FakeTelegram):
    """The fake Bot API, also filing each answered call under its chat as it is recorded."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.chats: dict[int, ChatLog] = {}
        self.flood_refusals = 0  # 429s answered
        self.sends = 0  # accepted message-sending calls (sendMessage, edits, drafts)
        self.changed = asyncio.Event()

    def _record(self, call: Call) -> None:
        super()._record(call)
        if not call.ok:
            if call.error_code == 429:
                self.flood_refusals += 1
            return
        if call.method not in ("sendMessage", "editMessageText", "sendMessageDraft"):
            return
        self.sends += 1
        log = self.chats.get(call.chat_id) if isinstance(call.chat_id, int) else None
        if log is None:
            return
        if log.first_shown is None:
            log.first_shown = call.time
        if MARKER in call.text:
            if log.first_text is None:
                log.first_text = call.time
            if call.method != "sendMessageDraft" and call.params.get("reply_markup"):
                log.answered.append(call.time)
                self.changed.set()
        elif call.method != "sendMessageDraft":
            log.errors.append(call.text[:100])
            self.changed.set()


class BenchProviders(FakeProviders):
    """The fake providers, also timing each answer request (arrival to last byte)."""

    def __init__(self) -> None:
        super().__init__()
        self.durations: dict[str, float] = {}  # by the question asked

    def app(self) -> web.Application:
        app = super().app()
        app.middlewares.insert(0, self._time)
        return app

    @web.middleware
    async def _time(self, request: web.Request, handler: Any) -> web.StreamResponse:
        started = time.time()
        try:
            response: web.StreamResponse = await handler(request)
            return response
        finally:
            if request.method == "POST" and not request.path.startswith("/_control"):
                with contextlib.suppress(Exception):  # not JSON: not an answer request
                    self.durations[asked(await request.json())] = time.time() - started

    def script_all(self, **settings: Any) -> None:
        """Every flavour answers ANSWER_TEXT after these settings (delays, chunks)."""
        for flavour in FLAVOURS:
            self.script(flavour, text=ANSWER_TEXT, **settings)


@contextlib.asynccontextmanager
async def _serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


# --- the system -----------------------------------------------------------------------------------


@dataclass
class System:
    """A running system and the means to load it and watch it."""

    telegram: BenchTelegram
    providers: BenchProviders
    backends: list[Service]
    bots: list[Service]  # bots[i] talks to backends[i]
    bot_urls: list[str]
    database: str
    postgres: BenchPostgres
    admin: AsyncEngine  # the bench's own connection, to the maintenance database
    webhook_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(TELEGRAM_WEBHOOK_CONNECTIONS)
    )
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    webhook_failures: int = 0
    wire: RoundTrips | None = None
    redis: bool = False

    def pids(self) -> dict[str, list[int]]:
        """The processes of each part (every replica of a service together): backend, bot,
        postgres (this database's server)."""

        def of(services: list[Service]) -> list[int]:
            return [pid for s in services if s.process.pid for pid in process_tree(s.process.pid)]

        return {
            "backend": of(self.backends),
            "bot": of(self.bots),
            "postgres": self.postgres.pids(),
            "redis": redis_server_pids() if self.redis else [],
            "bench": [os.getpid()],
        }

    def new_user(self) -> int:
        user_id = next(_user_ids)
        self.telegram.chats[user_id] = ChatLog()
        return user_id

    async def ask(self, user_id: int, number: int = 1) -> None:
        """The user writes a question, delivered to the webhook as Telegram would."""
        user = self.telegram.user(user_id, "Bench")
        update = self.telegram.message_update(
            user, f"Question {number} from {user_id}: how far away is the Moon?"
        )
        async with self.webhook_slots:
            self.telegram.chats[user_id].posted.append(time.time())
            try:
                # Users spread over the bot replicas, as nginx spreads the webhook.
                bot_url = self.bot_urls[user_id % len(self.bot_urls)]
                status = await self.telegram.deliver(update, via=bot_url)
            except OSError:
                status = 0
        if status != 200:
            self.webhook_failures += 1

    def ask_soon(self, user_id: int, number: int = 1) -> None:
        """`ask` without waiting for the webhook's answer (open-loop load)."""
        task = asyncio.create_task(self.ask(user_id, number))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def provider_time(self, user_id: int, number: int = 1) -> float:
        question = f"Question {number} from {user_id}: how far away is the Moon?"
        return self.providers.durations.get(question, 0.0)

    async def wait_answers(self, users: list[int], count: int = 1, within: float = 60.0) -> bool:
        """Until every user has `count` answers or an error; False if `within` s pass first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within

        def done() -> bool:
            chats = self.telegram.chats
            return all(len(chats[u].answered) + len(chats[u].errors) >= count for u in users)

        while not done():
            left = deadline - loop.time()
            if left <= 0:
                return False
            self.telegram.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.telegram.changed.wait(), min(left, 1.0))
        return True

    async def db_activity(self) -> tuple[int, int]:
        """The backend's connections to its database: (open, not idle)."""
        async with self.admin.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT count(*), count(*) FILTER (WHERE state <> 'idle')"
                        " FROM pg_stat_activity WHERE datname = :db AND application_name = :app"
                    ),
                    {"db": self.database, "app": BACKEND_APP_NAME},
                )
            ).one()
        return int(row[0]), int(row[1])

    async def reset_statements(self) -> None:
        async with self.admin.connect() as conn:
            await conn.execute(text("SELECT pg_stat_statements_reset()"))

    async def statements(self) -> list[tuple[str, int]]:
        """(query, calls) run in this database since the last reset, most called first."""
        async with self.admin.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT query, calls FROM pg_stat_statements WHERE dbid ="
                    " (SELECT oid FROM pg_database WHERE datname = :db) ORDER BY calls DESC"
                ),
                {"db": self.database},
            )
            return [(str(query), int(calls)) for query, calls in rows]


@dataclass
class Peaks:
    """Peak RSS per service and peak backend connections, sampled while a block runs."""

    rss_mb: dict[str, float] = field(default_factory=dict)
    connections_open: int = 0
    connections_busy: int = 0
    samples: int = 0


@contextlib.asynccontextmanager
async def sampling(system: System, every_s: float = 0.2) -> AsyncIterator[Peaks]:
    """Poll /proc and pg_stat_activity every `every_s` seconds for the duration of the block."""
    peaks = Peaks()

    async def sample() -> None:
        while True:
            for name, pids in system.pids().items():
                if name in ("backend", "bot"):
                    peaks.rss_mb[name] = max(peaks.rss_mb.get(name, 0.0), rss_mb(pids))
            with contextlib.suppress(Exception):  # a failed poll is a missed sample, no more
                opened, busy = await system.db_activity()
                peaks.connections_open = max(peaks.connections_open, opened)
                peaks.connections_busy = max(peaks.connections_busy, busy)
            peaks.samples += 1
            await asyncio.sleep(every_s)

    task = asyncio.create_task(sample())
    try:
        yield peaks
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def running_system(
    postgres: BenchPostgres,
    workdir: Path,
    *,
    redis: bool,
    bot_env: dict[str, str] | None = None,
    on_start: Callable[[BenchProviders, BenchTelegram], None] | None = None,
    count_round_trips: bool = False,
    profile_dir: Path | None = None,
    service_env: dict[str, str] | None = None,
    replicas: int = 1,
) -> AsyncIterator[System]:
    """Fresh fakes, a fresh database and fresh service processes; all gone afterwards.

    `replicas` backends and as many bots, bot i talking to backend i (the load spreads users
    over the bots, so no balancer stands between): they share PostgreSQL and Redis.

    With `count_round_trips` the backend reaches PostgreSQL through a counting proxy
    (`system.wire`); with `profile_dir` both services run under cProfile (bench/profiling.py)
    and leave backend.prof and bot.prof there. `service_env` is given to both services, over
    the bench's own settings.
    """
    name = f"pomogator_bench_{secrets.token_hex(4)}"
    database_url = await postgres.create_database(name)
    async with contextlib.AsyncExitStack() as stack:
        wire = None
        backend_database_url = database_url
        if count_round_trips:
            wire = await stack.enter_async_context(round_trip_proxy(postgres.port))
            backend_database_url = database_url.replace(f":{postgres.port}/", f":{wire.port}/")
        async with _system(
            postgres,
            workdir,
            name,
            database_url,
            backend_database_url,
            redis,
            bot_env,
            on_start,
            profile_dir,
            service_env or {},
            replicas,
        ) as system:
            system.wire = wire
            yield system


@contextlib.asynccontextmanager
async def _system(
    postgres: BenchPostgres,
    workdir: Path,
    name: str,
    database_url: str,
    backend_database_url: str,
    redis: bool,
    bot_env: dict[str, str] | None,
    on_start: Callable[[BenchProviders, BenchTelegram], None] | None,
    profile_dir: Path | None,
    overrides: dict[str, str],
    replicas: int,
) -> AsyncIterator[System]:
    if replicas > 1 and not redis:
        raise ValueError("replicas share their state in Redis: none answers on 127.0.0.1:6379")
    providers, telegram = BenchProviders(), BenchTelegram(BOT_TOKEN)
    if on_start is not None:
        on_start(providers, telegram)
    backend_ports = [free_port() for _ in range(replicas)]
    bot_ports = [free_port() for _ in range(replicas)]
    backend_urls = [f"http://127.0.0.1:{p}" for p in backend_ports]
    bot_urls = [f"http://127.0.0.1:{p}" for p in bot_ports]
    prefix = f"pomogator-bench-{secrets.token_hex(4)}:"
    admin = create_async_engine(postgres.server.url, isolation_level="AUTOCOMMIT", pool_size=2)
    async with _serve(providers.app()) as providers_url, _serve(telegram.app()) as telegram_url:
        providers.root_url, telegram.base_url = providers_url, telegram_url
        backend_env = service_env(
            APP_ENV="production",
            DATABASE_URL=backend_database_url,
            INTERNAL_API_TOKEN=INTERNAL_TOKEN,
            BACKEND_HOST="127.0.0.1",
            LOG_FORMAT="json",
            LOG_LEVEL="WARNING",
            PROVIDER_MAX_RETRIES="0",
            **{f"{flavour.upper()}_API_KEY": key for flavour, key in PROVIDER_KEYS.items()},
            **{f"{f.upper()}_BASE_URL": providers.base_url(f) for f in FLAVOURS},
            **overrides,
        )
        extra = {"REDIS_URL": "redis://127.0.0.1:6379/0"} if redis else {}
        bot_environment = service_env(
            APP_ENV="production",
            BOT_MODE="webhook",
            BOT_TOKEN=BOT_TOKEN,
            TELEGRAM_API_BASE=telegram_url,
            WEBHOOK_BASE_URL=WEBHOOK_BASE_URL,
            WEBHOOK_PATH=WEBHOOK_PATH,
            WEBHOOK_SECRET=WEBHOOK_SECRET,
            BOT_HOST="127.0.0.1",
            INTERNAL_API_TOKEN=INTERNAL_TOKEN,
            LOG_FORMAT="json",
            LOG_LEVEL="WARNING",
            # A run's keys of its own in a Redis others may share.
            REDIS_KEY_PREFIX=prefix,
            # Work left over when a scenario ends is abandoned, not drained for 25 s.
            SHUTDOWN_GRACE_S="1",
            **extra,
            **(bot_env or {}),
            **overrides,
        )

        def argv(module: str) -> list[str]:
            if profile_dir is None:
                return ["-m", module]
            return ["-m", "bench.profiling", str(profile_dir / f"{module}.prof"), module]

        bots: list[Service] = []
        backends: list[Service] = []
        try:
            # The bots need neither database nor backend to start, so they start meanwhile.
            for n, (port, backend_url) in enumerate(zip(bot_ports, backend_urls, strict=True)):
                env = bot_environment | {"BOT_PORT": str(port), "BACKEND_URL": backend_url}
                bots.append(await Service.start(f"bot-{n + 1}", argv("bot"), env, workdir))
            await init_database(database_url)
            for n, port in enumerate(backend_ports):
                env = backend_env | {"BACKEND_PORT": str(port)}
                backends.append(
                    await Service.start(f"backend-{n + 1}", argv("backend"), env, workdir)
                )
            async with httpx.AsyncClient() as http:
                await asyncio.gather(
                    *(
                        s.wait_healthy(f"{u}/health", http)
                        for s, u in zip(backends, backend_urls, strict=True)
                    ),
                    *(
                        s.wait_healthy(f"{u}/health", http)
                        for s, u in zip(bots, bot_urls, strict=True)
                    ),
                )
            await telegram.wait_for("setWebhook", count=replicas, timeout=STARTUP_TIMEOUT_S)
            yield System(
                telegram, providers, backends, bots, bot_urls, name, postgres, admin, redis=redis
            )
        finally:
            for service in [*bots, *backends]:
                await service.stop()
            await telegram.aclose()
            await admin.dispose()
            with contextlib.suppress(Exception):  # the server goes at the end of the run anyway
                await drop_database(postgres.server, name)

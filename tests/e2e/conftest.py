"""The whole system as operators run it: `python -m backend` and `python -m bot` as processes.

The processes talk to loopback fakes of the outside world (the AI providers and the Telegram Bot
API), served in the tests' event loop; tests act as Telegram users and read what the fake
Telegram received, as the user would see it.
"""

import asyncio
import contextlib
import itertools
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fakes.providers import FLAVOURS, FakeProviders, Script, start_fake_providers
from tests.fakes.telegram import Call, FakeTelegram, start_fake_telegram
from tests.processes import ROOT, STARTUP_TIMEOUT_S, Process, free_port, service_env

BOT_TOKEN = "123456:TEST-e2e-bot-token-0a1b2c3d4e5f"
INTERNAL_TOKEN = "e2e-internal-token-" + secrets.token_hex(16)
# Telegram allows only A-Z, a-z, 0-9, _ and - in a webhook secret.
WEBHOOK_SECRET = "e2e-webhook-secret-" + secrets.token_hex(16)
WEBHOOK_BASE_URL = "https://bot.example.test"
WEBHOOK_PATH = "/telegram/webhook"
PROVIDER_KEYS = {flavour: f"sk-e2e-{flavour}-{secrets.token_hex(8)}" for flavour in FLAVOURS}
LEDGER_LIMIT = 200  # the most entries GET /credits gives in one page
SECRETS = (BOT_TOKEN, INTERNAL_TOKEN, WEBHOOK_SECRET, *PROVIDER_KEYS.values())

_user_ids = itertools.count(7_000_000_000 + secrets.randbelow(10**6) * 1000)


class Service(Process):
    """A service started as `python <args>` with this interpreter."""

    @classmethod
    async def start(cls, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> "Service":
        started = await super().start(name, [sys.executable, *argv], env, cwd)
        assert isinstance(started, Service)
        return started


@dataclass
class System:
    """The running services and the fakes they talk to."""

    telegram: FakeTelegram
    providers: FakeProviders
    backend: Service
    bot: Service
    backend_url: str
    bot_url: str
    http: httpx.AsyncClient
    # How each service was started (args, env, working directory), to start it again.
    launches: dict[str, tuple[list[str], dict[str, str], Path]] = field(default_factory=dict)
    # Earlier runs of a service that was stopped and started again, oldest first.
    retired: list[Service] = field(default_factory=list)
    # More bot processes beside `bot` (replicas behind one webhook), by their URL.
    replicas: dict[str, Service] = field(default_factory=dict)
    # What users wrote (not commands): none of it may reach a log line.
    said: list[str] = field(default_factory=list)

    @property
    def services(self) -> tuple[Service, ...]:
        return (self.backend, self.bot)

    def service(self, name: str) -> Service:
        """The current run of "backend" or "bot"."""
        if name not in ("backend", "bot"):
            raise ValueError(f"no service {name!r}")
        return self.backend if name == "backend" else self.bot

    async def stop_service(self, name: str) -> int:
        """SIGTERM one service, as `docker compose stop` does; its exit code."""
        return await self.service(name).stop()

    async def start_service(self, name: str) -> Service:
        """Start a stopped service again, as before (same port, database, env); once healthy."""
        old = self.service(name)
        assert old.process.returncode is not None, f"{name} is still running"
        webhooks = len(self.telegram.calls("setWebhook"))
        args, env, cwd = self.launches[name]
        new = await Service.start(name, args, env, cwd)
        self.retired.append(old)
        if name == "backend":
            self.backend = new
            await new.wait_healthy(f"{self.backend_url}/health", self.http)
        else:
            self.bot = new
            await new.wait_healthy(f"{self.bot_url}/health", self.http)
            await self.telegram.wait_for(
                "setWebhook", count=webhooks + 1, timeout=STARTUP_TIMEOUT_S
            )
        return new

    async def kill_service(self, name: str) -> int:
        """SIGKILL one service; its exit code (-9)."""
        return await self.service(name).kill()

    async def start_bot_replica(self, **env: str) -> str:
        """Another bot process like `bot` (with these env changes) on a port of its own.

        Its URL, for `FakeTelegram.deliver(via=...)`; it is stopped and checked with the rest.
        """
        args, base_env, cwd = self.launches["bot"]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        webhooks = len(self.telegram.calls("setWebhook"))
        replica = await Service.start(
            f"bot replica :{port}",
            args,
            {**base_env, "BOT_PORT": str(port), **env},
            cwd,
        )
        self.replicas[url] = replica
        await replica.wait_healthy(f"{url}/health", self.http)
        await self.telegram.wait_for("setWebhook", count=webhooks + 1, timeout=STARTUP_TIMEOUT_S)
        return url

    async def credits(self, telegram_id: int) -> dict[str, Any]:
        """The user's balance and ledger as the backend reports them (newest entry first)."""
        response = await self.http.get(
            f"{self.backend_url}/api/v1/credits/{telegram_id}",
            params={"limit": LEDGER_LIMIT},
            headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def ledger(
        self,
        telegram_id: int,
        until: Callable[["Ledger"], bool] | None = None,
        timeout: float = 20.0,
    ) -> "Ledger":
        """The user's ledger, checked to balance (see `Ledger.of`).

        With `until`, the first ledger it holds for (a refund the backend makes in its own
        time); the last one read if none does within `timeout`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            ledger = Ledger.of(await self.credits(telegram_id))
            if until is None or until(ledger) or loop.time() > deadline:
                return ledger
            await asyncio.sleep(0.2)  # polling the backend's own work, as an operator would

    def new_user(self, language: str = "en") -> "TelegramUser":
        """Another Telegram user, never seen by the bot."""
        return TelegramUser(self, next(_user_ids), language)

    @property
    def database_url(self) -> str:
        """The database the backend was started with."""
        return self.launches["backend"][1]["DATABASE_URL"]

    async def age_pending_answers(self, telegram_id: int, seconds: float) -> int:
        """Make the user's unfinished answers `seconds` older; how many there were.

        Stands in for waiting STALE_RESERVATION_S (at least a minute): the sweeper in the
        running backend then finds them as it would after that long.
        """
        engine = create_async_engine(self.database_url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(
                    text(
                        "UPDATE messages_log"
                        " SET created_at = created_at - make_interval(secs => :seconds)"
                        " WHERE status = 'pending' AND user_id ="
                        " (SELECT id FROM users WHERE telegram_id = :telegram_id)"
                    ),
                    {"seconds": seconds, "telegram_id": telegram_id},
                )
                return int(result.rowcount)
        finally:
            await engine.dispose()

    async def post_raw_update(
        self, update: dict[str, Any], secret: str | None = None
    ) -> httpx.Response:
        """POST an update to the webhook with any secret header (None: no header at all)."""
        headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
        return await self.http.post(
            f"{self.bot_url}{WEBHOOK_PATH}", json=update, headers=headers, timeout=5
        )

    def reset_provider_scripts(self) -> None:
        """Every flavour back to its default answer; the recorded requests stay."""
        for flavour in FLAVOURS:
            self.providers.script(flavour)

    def answer_requests(self, question: str) -> dict[str, int]:
        """How many answer requests each provider flavour received for this question."""
        counts: dict[str, int] = {}
        for request in self.providers.requests():
            if request.method == "POST" and asked(request.body) == question:
                counts[request.flavour] = counts.get(request.flavour, 0) + 1
        return counts


@dataclass(frozen=True)
class Ledger:
    """A user's credit ledger: which messages kept their charge and which were given back."""

    free_messages_left: int
    charged: frozenset[int]  # message ids with a `use` and no `refund`
    refunded: frozenset[int]  # message ids with a `use` and its `refund`
    grants: int
    refund_reasons: tuple[str | None, ...] = ()  # oldest first

    @classmethod
    def of(cls, credits: dict[str, Any]) -> "Ledger":
        """The ledger from GET /credits, after checking that it balances.

        grants - uses + refunds = free_messages_left; each entry's balance_after is the sum so
        far; a message is charged at most once and refunded at most once, never refunded
        without its charge.
        """
        entries = list(reversed(credits["entries"]))  # oldest first
        assert len(entries) < LEDGER_LIMIT, "more entries than one page: the check would be partial"
        balance = 0
        uses: dict[int, int] = {}
        refunds: dict[int, int] = {}
        for entry in entries:
            balance += entry["delta"]
            assert entry["balance_after"] == balance, entries
            message = entry["message_id"]
            if entry["kind"] == "use":
                uses[message] = uses.get(message, 0) + 1
            elif entry["kind"] == "refund":
                refunds[message] = refunds.get(message, 0) + 1
        assert balance == credits["free_messages_left"], entries
        assert all(count == 1 for count in [*uses.values(), *refunds.values()]), entries
        assert set(refunds) <= set(uses), entries
        return cls(
            free_messages_left=credits["free_messages_left"],
            charged=frozenset(set(uses) - set(refunds)),
            refunded=frozenset(refunds),
            grants=sum(e["delta"] for e in entries if e["kind"] == "grant"),
            refund_reasons=tuple(e["reason"] for e in entries if e["kind"] == "refund"),
        )


def asked(body: Any) -> str:
    """The newest user turn of a provider request body: the question it is to answer."""
    if not isinstance(body, dict):
        return ""
    turns = body.get("input") or body.get("messages") or []
    if isinstance(turns, str):
        return turns
    users = [t for t in turns if isinstance(t, dict) and t.get("role") == "user"]
    content = users[-1].get("content") if users else ""
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


class TelegramUser:
    """One person in a private chat with the bot: sends what Telegram would deliver."""

    def __init__(self, system: System, user_id: int, language: str = "en") -> None:
        self.system = system
        self.id = user_id
        self.user = system.telegram.user(user_id, "Anna", language_code=language)
        self._seen = -1  # calls up to this seq were already looked at by `next_*`

    @property
    def telegram(self) -> FakeTelegram:
        return self.system.telegram

    async def deliver(self, update: dict[str, Any]) -> None:
        """Deliver an update as Telegram does: to the registered webhook, with its secret."""
        status = await self.telegram.deliver(update, via=self.system.bot_url)
        assert status == 200, f"the bot answered the webhook with {status}"

    async def send(self, text: str) -> dict[str, Any]:
        """Write a message to the bot; the Message as delivered."""
        if not text.startswith("/") and len(text) >= 8:
            self.system.said.append(text)
        update = self.telegram.message_update(self.user, text)
        await self.deliver(update)
        return update["message"]

    async def press(self, message: Call, button: str) -> dict[str, Any]:
        """Press the inline button labelled `button` under a message the bot sent."""
        update = self.telegram.callback_update(self.user, message, button=button)
        await self.deliver(update)
        return update["callback_query"]

    def calls(self, *methods: str) -> list[Call]:
        """Bot API calls concerning this chat (of these methods if given), in order."""
        wanted = {m.lower() for m in methods}
        return [
            c
            for c in self.telegram.calls(chat_id=self.id)
            if not wanted or c.method.lower() in wanted
        ]

    def messages(self) -> list[Call]:
        """Messages the user received (sendMessage that Telegram accepted)."""
        return [c for c in self.calls("sendMessage") if c.ok]

    async def wait(
        self, predicate: Callable[[Call], bool], count: int = 1, timeout: float = 10.0
    ) -> list[Call]:
        """Calls in this chat matching predicate, once there are `count` of them."""
        return await self.telegram.wait_for(
            lambda c: c.chat_id == self.id and predicate(c), count=count, timeout=timeout
        )

    async def next_shown(
        self, *methods: str, predicate: Callable[[Call], bool] | None = None
    ) -> Call:
        """The next accepted call of these methods in this chat not yet returned by next_*."""
        names = {m.lower() for m in methods}

        def fresh(call: Call) -> bool:
            return (
                call.seq > self._seen
                and call.ok
                and call.method.lower() in names
                and (predicate is None or predicate(call))
            )

        found = (await self.wait(fresh))[0]
        self._seen = found.seq
        return found

    async def next_message(self, predicate: Callable[[Call], bool] | None = None) -> Call:
        """The next message the user receives."""
        return await self.next_shown("sendMessage", predicate=predicate)

    async def next_edit(self) -> Call:
        """The next message edited in place (a menu changing after a button press)."""
        return await self.next_shown("editMessageText")

    async def ask(self, text: str) -> Call:
        """Ask a question; the last message of the reply (it carries the follow-up buttons)."""
        await self.send(text)
        return await self.next_message(lambda c: bool(c.buttons()))

    async def status(self) -> str:
        """What /status shows."""
        await self.send("/status")
        return (await self.next_message(lambda c: c.text.startswith("Plan:"))).text

    async def choose_model(self, provider: str, model: str) -> None:
        """/model, then the provider's and the model's buttons (labels as the menu shows)."""
        await self.send("/model")
        await self.press(await self.next_message(), provider)
        await self.press(await self.next_edit(), f"{provider} {model}")
        assert (await self.next_edit()).text == f"Done! Now answering: {provider} · {model}"


async def init_database(url: str) -> None:
    """Set the database up the way a deploy does: `scripts/init_db.py`."""
    done = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "scripts" / "init_db.py"),
        env=service_env(DATABASE_URL=url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(120):
        output, _ = await done.communicate()
    assert done.returncode == 0, output.decode(errors="replace")


@pytest.fixture(scope="module")
def empty_database(scratch_database: Callable[[], str]) -> str:
    """A database of its own for the module's services, created empty."""
    return scratch_database()


@contextlib.asynccontextmanager
async def running_system(
    database_url: str,
    workdir: Path,
    *,
    extra_backend_env: Mapping[str, str] | None = None,
    extra_bot_env: Mapping[str, str] | None = None,
) -> AsyncIterator[System]:
    """Backend and bot processes against fresh fakes; stopped (and checked) at the end.

    `database_url` is an empty database; `workdir` an empty working directory, so a
    developer's .env cannot change what is tested. `extra_backend_env` and `extra_bot_env`
    add to (or override) what each service is given.
    """
    backend_port, bot_port = free_port(), free_port()
    backend_url = f"http://127.0.0.1:{backend_port}"
    bot_url = f"http://127.0.0.1:{bot_port}"
    async with (
        start_fake_providers() as providers,
        start_fake_telegram(BOT_TOKEN) as telegram,
        httpx.AsyncClient() as http,
    ):
        backend_env = service_env(
            APP_ENV="production",
            DATABASE_URL=database_url,
            INTERNAL_API_TOKEN=INTERNAL_TOKEN,
            BACKEND_HOST="127.0.0.1",
            BACKEND_PORT=str(backend_port),
            LOG_FORMAT="json",
            PROVIDER_MAX_RETRIES="0",
            **{f"{flavour.upper()}_API_KEY": key for flavour, key in PROVIDER_KEYS.items()},
            **{f"{f.upper()}_BASE_URL": providers.base_url(f) for f in FLAVOURS},
            **(extra_backend_env or {}),
        )
        bot_env = service_env(
            APP_ENV="production",
            BOT_MODE="webhook",
            BOT_TOKEN=BOT_TOKEN,
            TELEGRAM_API_BASE=telegram.base_url,
            WEBHOOK_BASE_URL=WEBHOOK_BASE_URL,
            WEBHOOK_PATH=WEBHOOK_PATH,
            WEBHOOK_SECRET=WEBHOOK_SECRET,
            BOT_HOST="127.0.0.1",
            BOT_PORT=str(bot_port),
            BACKEND_URL=backend_url,
            INTERNAL_API_TOKEN=INTERNAL_TOKEN,
            LOG_FORMAT="json",
            # Drafts a few times a second, so a short streamed answer shows its growth.
            STREAM_INTERVAL_S="0.25",
            **(extra_bot_env or {}),
        )
        launches = {
            "backend": (["-m", "backend"], backend_env, workdir),
            "bot": (["-m", "bot"], bot_env, workdir),
        }
        # The bot needs neither database nor backend to start, so it starts meanwhile.
        bot = await Service.start("bot", *launches["bot"])
        services = [bot]
        running: System | None = None
        try:
            await init_database(database_url)
            backend = await Service.start("backend", *launches["backend"])
            services.insert(0, backend)
            running = System(
                telegram, providers, backend, bot, backend_url, bot_url, http, launches
            )
            await asyncio.gather(
                backend.wait_healthy(f"{backend_url}/health", http),
                bot.wait_healthy(f"{bot_url}/health", http),
            )
            await telegram.wait_for("setWebhook", timeout=STARTUP_TIMEOUT_S)
            yield running
        finally:
            replicas = list(running.replicas.values()) if running is not None else []
            if running is not None:  # the services may have been started again since
                services = list(running.services)
            stopped = await asyncio.gather(*(replica.stop() for replica in replicas))
            replica_codes = {r.name: code for r, code in zip(replicas, stopped, strict=True)}
            codes = {service.name: await service.stop() for service in reversed(services)}
        outputs = "\n".join(f"--- {s.name} ---\n{s.tail()}" for s in [*services, *replicas])
        assert all(code == 0 for code in replica_codes.values()), (replica_codes, outputs)
        last = {service.name: service for service in services}
        # uvicorn re-raises SIGTERM once it has shut down cleanly.
        assert codes["bot"] == 0 and codes["backend"] in (0, -15), (codes, outputs)
        assert '"event": "bot_stopped"' in last["bot"].output, outputs
        assert '"event": "backend_stopped"' in last["backend"].output, outputs
        # Nothing people wrote or were answered is logged (at INFO, the services' level here).
        private = [*(running.said if running else []), Script().text]
        for service in [*(running.retired if running else []), *services, *replicas]:
            leaked = [name for name in SECRETS if name in service.output]
            assert not leaked, f"{service.name} logged a secret:\n{outputs}"
            spoken = [text for text in private if text in service.output]
            assert not spoken, f"{service.name} logged message text {spoken}:\n{outputs}"


@pytest.fixture(scope="module")
async def system(
    empty_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[System]:
    """Backend and bot processes against the fakes; stopped (and checked) at the end."""
    async with running_system(empty_database, tmp_path_factory.mktemp("e2e-services")) as running:
        yield running


@pytest.fixture
async def restored(system: System) -> AsyncIterator[System]:
    """For a test that stops or kills services: whatever it left down is started again."""
    yield system
    for name in ("backend", "bot"):
        if system.service(name).process.returncode is not None:
            await system.start_service(name)


@pytest.fixture
def user(system: System) -> Iterator[TelegramUser]:
    """A Telegram user of their own for each test; provider scripts reset afterwards."""
    yield system.new_user()
    system.reset_provider_scripts()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On a failed journey, show what the services logged."""
    report = yield
    running = getattr(item, "funcargs", {}).get("system")
    if report.failed and isinstance(running, System):
        for service in [*running.services, *running.replicas.values()]:
            report.sections.append((f"{service.name} output (last lines)", service.tail()))
    return report

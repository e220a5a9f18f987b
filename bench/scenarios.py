"""The six scenarios of issue 10; each returns its rows of the table."""

import asyncio
import contextlib
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import (
    DB_POOL_SIZE,
    BenchPostgres,
    BenchProviders,
    BenchTelegram,
    System,
    cpu_seconds,
    running_system,
    sampling,
)
from bot.config import BotSettings


@dataclass
class Figure:
    """One row: a measured value, the target it is held to (if any) and whether it is met."""

    scenario: str
    figure: str
    value: float
    unit: str = ""
    target: str = ""
    met: bool | None = None
    details: list[str] = field(default_factory=list)  # printed with --details


@dataclass
class Options:
    """How big and how long; `smoke()` shrinks everything to a few seconds per scenario."""

    overhead_rate: float = 50.0
    overhead_s: float = 60.0
    drain_s: float = 20.0  # how long answers still in flight are waited for, past the load
    ceiling_rates: tuple[float, ...] = (10, 20, 40, 80, 160, 320)
    ceiling_step_s: float = 6.0
    crowd_users: int = 2000
    crowd_provider_s: float = 20.0
    crowd_grace_s: float = 60.0  # past the provider time, for the answers to arrive
    hygiene_users: int = 300
    hygiene_grace_s: float = 90.0
    first_text_users: int = 10
    db_users: int = 20
    redis: bool = True
    profile_dir: Path | None = None  # both services under cProfile (slower: figures skewed)
    service_env: dict[str, str] = field(default_factory=dict)  # --set: settings for both
    replicas: tuple[int, ...] = (1,)  # --replicas: overhead and ceiling with each count

    @classmethod
    def smoke(cls, redis: bool) -> "Options":
        return cls(
            overhead_rate=5,
            overhead_s=2,
            drain_s=10,
            ceiling_rates=(5, 10),
            ceiling_step_s=1.5,
            crowd_users=20,
            crowd_provider_s=1.0,
            crowd_grace_s=15,
            hygiene_users=10,
            hygiene_grace_s=20,
            first_text_users=2,
            db_users=3,
            redis=redis,
        )


# Where the fake Bot API enforces no flood control the figures are about our code, not about
# Telegram's limit: the bot's own limiter is lifted as far as its settings go. The others
# (hygiene, where the fake enforces Telegram's limits; first-text; db-work) run with the bot's
# defaults, as in production.
LIFTED_LIMITS = {
    "TELEGRAM_GLOBAL_RATE": "1000",
    "TELEGRAM_GLOBAL_BURST": "1000",
    "TELEGRAM_PER_CHAT_RATE": "1000",
}
BOT_ENV: dict[str, dict[str, str]] = {
    "overhead": LIFTED_LIMITS,
    "ceiling": LIFTED_LIMITS,
    "crowd": LIFTED_LIMITS,
}


def limiter_setting(bot_env: dict[str, str]) -> str:
    """The bot's outbound limiter under this environment: "30/s global (burst 30), ..."."""

    def value(name: str) -> float:
        default = BotSettings.model_fields[name.lower()].default
        return float(bot_env.get(name, default))

    return (
        f"{value('TELEGRAM_GLOBAL_RATE'):g}/s global"
        f" (burst {value('TELEGRAM_GLOBAL_BURST'):g}),"
        f" {value('TELEGRAM_PER_CHAT_RATE'):g}/s per chat"
    )


@dataclass
class Context:
    postgres: BenchPostgres
    workdir: Path
    options: Options
    bot_env: dict[str, str] = field(default_factory=dict)  # the scenario's (BOT_ENV)
    replicas: int = 1  # of each service

    def system(
        self,
        on_start: Callable[[BenchProviders, BenchTelegram], None] | None = None,
        **kwargs: Any,
    ) -> contextlib.AbstractAsyncContextManager[System]:
        bot_env = self.bot_env | kwargs.pop("bot_env", {})
        return running_system(
            self.postgres,
            self.workdir,
            redis=self.options.redis,
            on_start=on_start,
            profile_dir=self.options.profile_dir,
            bot_env=bot_env,
            service_env=self.options.service_env,
            replicas=self.replicas,
            **kwargs,
        )


Scenario = Callable[[Context], Awaitable[list[Figure]]]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def at_most(value: float, limit: float) -> bool:
    return value <= limit


async def open_loop(system: System, rate: float, seconds: float) -> list[int]:
    """New users asking one question each, `rate` a second for `seconds`; their ids."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    users: list[int] = []
    for number in range(max(1, round(rate * seconds))):
        delay = start + number / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        user = system.new_user()
        users.append(user)
        system.ask_soon(user)
    return users


def outcomes(system: System, users: list[int]) -> tuple[int, int, int]:
    """(answered, shown an error, no reply yet) among these users."""
    chats = system.telegram.chats
    answered = sum(1 for u in users if chats[u].answered)
    errors = sum(1 for u in users if chats[u].errors and not chats[u].answered)
    return answered, errors, len(users) - answered - errors


# --- 1. overhead ------------------------------------------------------------------------------


async def overhead(ctx: Context) -> list[Figure]:
    """Instant provider, distinct users at a fixed rate: what our code adds to each answer."""
    o = ctx.options
    async with ctx.system(lambda providers, _tg: providers.script_all()) as system:
        users = await open_loop(system, o.overhead_rate, o.overhead_s)
        await system.wait_answers(users, within=o.drain_s)
        now = time.time()
        added: list[float] = []
        for user in users:
            log = system.telegram.chats[user]
            posted = log.posted[0] if log.posted else now
            if log.answered:
                added.append(log.answered[0] - posted - system.provider_time(user))
            else:  # not answered by the deadline: at least this long (counted, not dropped)
                added.append(now - posted)
        answered, errors, missing = outcomes(system, users)
    name = "overhead"
    rate = f"{o.overhead_rate:g} msg/s x {o.overhead_s:g} s"
    ms = [a * 1000 for a in added]
    p50, p95, p99 = (percentile(ms, q) for q in (50, 95, 99))
    return [
        Figure(name, f"added latency p50 ({rate})", p50, "ms", "<= 15 ms", at_most(p50, 15)),
        Figure(name, "added latency p95", p95, "ms"),
        Figure(name, "added latency p99", p99, "ms", "<= 60 ms", at_most(p99, 60)),
        Figure(
            name, "answered", answered, f"of {len(users)}", f"{len(users)}", answered == len(users)
        ),
        Figure(name, "errors shown", errors, "", "0", errors == 0),
        Figure(
            name,
            f"no reply within {o.drain_s:g} s of the last post",
            missing,
            "",
            "0",
            missing == 0,
        ),
    ]


# --- 2. ceiling -------------------------------------------------------------------------------


async def ceiling(ctx: Context) -> list[Figure]:
    """Instant provider, no flood control at the fake: load raised until answers/s stop rising."""
    o = ctx.options
    async with ctx.system(lambda providers, _tg: providers.script_all()) as system:
        tg = system.telegram
        cpu_start = {name: cpu_seconds(pids) for name, pids in system.pids().items()}
        started = time.time()
        best = best_offered = best_sends = 0.0
        flat = 0
        steps: list[str] = []
        for rate in o.ceiling_rates:
            step_start, sends_start = time.time(), tg.sends
            await open_loop(system, rate, o.ceiling_step_s)
            step_end = time.time()
            done = sum(
                1 for log in tg.chats.values() for t in log.answered if step_start <= t < step_end
            )
            throughput = done / (step_end - step_start)
            sends = (tg.sends - sends_start) / (step_end - step_start)
            steps.append(
                f"offered {rate:g}/s: {throughput:.1f} answers/s, {sends:.1f} Bot API sends/s"
            )
            if throughput > best * 1.1:
                flat = 0
            else:
                flat += 1
            if throughput > best:
                best, best_offered, best_sends = throughput, rate, sends
            if flat >= 2:
                break
        ended = time.time()
        cpu_end = {name: cpu_seconds(pids) for name, pids in system.pids().items()}
        answers = sum(1 for log in tg.chats.values() for t in log.answered if started <= t < ended)
    name = "ceiling"
    rows = [
        Figure(
            name,
            f"sustained answers/s (offered {best_offered:g}/s)",
            best,
            "/s",
            ">= 200/s",
            best >= 200,
            steps,
        ),
        Figure(name, "Bot API sends/s at that load", best_sends, "/s"),
    ]
    for part in ("backend", "bot", "postgres", "redis", "bench"):
        if part == "redis" and not system.redis:
            continue
        used = (cpu_end[part] - cpu_start[part]) / max(1, answers) * 1000
        label = "fakes + load" if part == "bench" else part
        rows.append(Figure(name, f"CPU per answer: {label}", used, "ms"))
    return rows


# --- 3. crowd ---------------------------------------------------------------------------------


async def crowd(ctx: Context) -> list[Figure]:
    """Many users waiting at once on a slow provider: memory, connections, errors."""
    o = ctx.options

    def slow(providers: BenchProviders, _tg: BenchTelegram) -> None:
        providers.script_all(first_delay_s=o.crowd_provider_s)

    async with ctx.system(slow) as system:
        users = [system.new_user() for _ in range(o.crowd_users)]
        async with sampling(system) as peaks:
            started = time.time()
            for user in users:
                system.ask_soon(user)
            await system.wait_answers(users, within=o.crowd_provider_s + o.crowd_grace_s)
        answered, errors, missing = outcomes(system, users)
        chats = system.telegram.chats
        last = max((chats[u].answered[0] for u in users if chats[u].answered), default=started)
        shown = sorted({e for u in users for e in chats[u].errors})[:5]
    name = "crowd"
    n = o.crowd_users
    deadline = o.crowd_provider_s + o.crowd_grace_s
    backend_mb, bot_mb = peaks.rss_mb.get("backend", 0.0), peaks.rss_mb.get("bot", 0.0)
    return [
        Figure(
            name,
            f"answered ({n} users, {o.crowd_provider_s:g} s provider)",
            answered,
            f"of {n}",
            f"{n}",
            answered == n,
        ),
        Figure(name, "errors shown", errors, "", "0", errors == 0, shown),
        Figure(name, f"no reply within {deadline:g} s", missing, "", "0", missing == 0),
        Figure(name, "time until the last answer", last - started, "s"),
        Figure(name, "peak RSS backend", backend_mb, "MB", "<= 250 MB", at_most(backend_mb, 250)),
        Figure(name, "peak RSS bot", bot_mb, "MB", "<= 250 MB", at_most(bot_mb, 250)),
        Figure(
            name,
            "peak DB connections open",
            peaks.connections_open,
            "",
            f"<= {DB_POOL_SIZE} (pool)",
            at_most(peaks.connections_open, DB_POOL_SIZE),
        ),
        Figure(name, "peak DB connections not idle", peaks.connections_busy, ""),
    ]


# --- 4. Telegram hygiene ------------------------------------------------------------------------


async def hygiene(ctx: Context) -> list[Figure]:
    """The fake enforcing 1 msg/s per chat and 30/s overall; a burst of users, streaming."""
    o = ctx.options

    def limited(providers: BenchProviders, tg: BenchTelegram) -> None:
        providers.script_all(first_delay_s=0.5, chunks=6, chunk_delay_s=0.5)
        tg.rate_limits(True, per_chat_per_s=1, global_per_s=30)

    async with ctx.system(limited) as system:
        started = time.time()
        users = await open_loop(system, o.hygiene_users, 1.0)
        await system.wait_answers(users, within=o.hygiene_grace_s)
        _answered, errors, missing = outcomes(system, users)
        chats = system.telegram.chats
        last = max((chats[u].answered[0] for u in users if chats[u].answered), default=started)
        refusals = system.telegram.flood_refusals
        shown = sorted({e for u in users for e in chats[u].errors})[:5]
    name = "hygiene"
    n = o.hygiene_users
    floor = n / 30
    return [
        Figure(
            name,
            f"429s received ({n} users in 1 s, streaming)",
            refusals,
            "",
            "all absorbed",
            errors == 0 and missing == 0,
        ),
        Figure(name, "errors shown", errors, "", "0", errors == 0, shown),
        Figure(name, f"no reply within {o.hygiene_grace_s:g} s", missing, "", "0", missing == 0),
        Figure(
            name, "time until the last answer", last - started, "s", f"(>= {floor:.0f} s at 30/s)"
        ),
    ]


# --- 5. first text ----------------------------------------------------------------------------


async def first_text(ctx: Context) -> list[Figure]:
    """Streaming provider with a 1 s first token: how soon the answer's first words show."""
    o = ctx.options
    first_token_s = 1.0

    def streaming(providers: BenchProviders, _tg: BenchTelegram) -> None:
        providers.script_all(first_delay_s=first_token_s, chunks=8, chunk_delay_s=0.2)

    async with ctx.system(streaming) as system:
        users = []
        for _ in range(o.first_text_users):
            user = system.new_user()
            users.append(user)
            system.ask_soon(user)
            await asyncio.sleep(0.5)
        await system.wait_answers(users, within=30)
        chats = system.telegram.chats
        now = time.time()
        texts = [
            ((chats[u].first_text or now) - chats[u].posted[0] - first_token_s) * 1000
            for u in users
            if chats[u].posted
        ]
        placeholders = [
            ((chats[u].first_shown or now) - chats[u].posted[0]) * 1000
            for u in users
            if chats[u].posted
        ]
    name = "first-text"
    worst = max(texts, default=0.0)
    return [
        Figure(
            name,
            "first answer text - 1 s, median",
            percentile(texts, 50),
            "ms",
            "<= 300 ms",
            at_most(percentile(texts, 50), 300),
        ),
        Figure(
            name,
            f"first answer text - 1 s, worst of {len(texts)}",
            worst,
            "ms",
            "<= 300 ms",
            at_most(worst, 300),
        ),
        Figure(name, 'first placeholder ("thinking"), median', percentile(placeholders, 50), "ms"),
    ]


# --- 6. database work ---------------------------------------------------------------------------

_TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)


async def db_work(ctx: Context) -> list[Figure]:
    """SQL statements (pg_stat_statements) and round trips (wire proxy) per answered message."""
    o = ctx.options
    rows: list[Figure] = []
    async with ctx.system(
        lambda providers, _tg: providers.script_all(), count_round_trips=True
    ) as system:
        assert system.wire is not None
        users = [system.new_user() for _ in range(o.db_users)]
        for number, case in ((1, "new user"), (2, "returning user")):
            await asyncio.sleep(0.5)  # let the previous phase's last commits land
            await system.reset_statements()
            system.wire.reset()
            for user in users:  # one at a time: the counts are per answer, not per race
                await system.ask(user, number)
                await system.wait_answers([user], count=number, within=20)
            await asyncio.sleep(0.5)
            answered = sum(1 for u in users if len(system.telegram.chats[u].answered) >= number)
            statements = await system.statements()
            per = max(1, answered)
            sql = sum(c for q, c in statements if not _TRANSACTION_CONTROL.match(q)) / per
            trips = system.wire.round_trips / per
            details = [f"{c / per:5.2f}  {' '.join(q.split())[:110]}" for q, c in statements]
            details.append(f"new connections: {system.wire.connections}")
            rows += [
                Figure(
                    "db-work",
                    f"round trips per answer ({case})",
                    trips,
                    "",
                    "<= 6",
                    at_most(trips, 6),
                    details,
                ),
                Figure("db-work", f"SQL statements per answer ({case})", sql, ""),
            ]
    return rows


# The scenarios `--replicas` runs once per count: what more processes would change.
REPLICATED = ("overhead", "ceiling")

SCENARIOS: dict[str, Scenario] = {
    "overhead": overhead,
    "ceiling": ceiling,
    "crowd": crowd,
    "hygiene": hygiene,
    "first-text": first_text,
    "db-work": db_work,
}

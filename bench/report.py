"""Run the scenarios against one PostgreSQL server and render the table."""

import asyncio
import dataclasses
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import bench_postgres, machine, redis_answers
from bench.scenarios import (
    BOT_ENV,
    REPLICATED,
    SCENARIOS,
    Context,
    Figure,
    Options,
    limiter_setting,
)


@dataclass
class Report:
    """The machine, the configuration and the figures of one run."""

    machine: dict[str, str]
    setup: dict[str, str]
    figures: list[Figure] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # scenario -> the error that ended it
    seconds: float = 0.0


async def run(
    scenarios: list[str] | None = None,
    options: Options | None = None,
    progress: bool = True,
) -> Report:
    """Run these scenarios (all by default), each on a fresh system; the report."""
    options = options or Options()
    names = scenarios or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenarios {unknown}; known: {list(SCENARIOS)}")
    started = time.monotonic()
    async with bench_postgres() as postgres:
        report = Report(
            machine(),
            {
                "postgres": f"PostgreSQL {postgres.version} (own server, fsync on)",
                "claims": "Redis 127.0.0.1:6379" if options.redis else "PostgreSQL (no Redis)",
                "services": services(options.replicas),
                "bot's Telegram limiter": limiters(names),  # lifted where the fake has none
                **(
                    {"settings": " ".join(f"{k}={v}" for k, v in options.service_env.items())}
                    if options.service_env
                    else {}
                ),
            },
        )
        with tempfile.TemporaryDirectory(prefix="pomogator-bench-") as workdir:
            context = Context(postgres, Path(workdir), options)
            runs = [
                (name, count)
                for name in names
                for count in (options.replicas if name in REPLICATED else (1,))
            ]
            for name, count in runs:
                label = name if options.replicas == (1,) else f"{name} ({count}+{count})"
                began = time.monotonic()
                if progress:
                    print(f"bench: {label}...", file=sys.stderr, flush=True)
                try:
                    scenario = dataclasses.replace(
                        context, bot_env=BOT_ENV.get(name, {}), replicas=count
                    )
                    figures = await SCENARIOS[name](scenario)
                    for figure in figures:
                        figure.scenario = label if name in REPLICATED else name
                    report.figures += figures
                except Exception as exc:  # one broken scenario must not hide the others' figures
                    report.failed[label] = f"{type(exc).__name__}: {exc}"
                    if progress:
                        traceback.print_exc()
                if progress:
                    took = time.monotonic() - began
                    print(f"bench: {label} took {took:.0f} s", file=sys.stderr, flush=True)
    report.seconds = time.monotonic() - started
    return report


def services(replicas: tuple[int, ...]) -> str:
    if replicas == (1,):
        return "1 backend + 1 bot process, production settings, LOG_LEVEL=WARNING"
    counts = " and ".join(f"{n} + {n}" for n in replicas)
    return (
        f"{counts} backend + bot processes (overhead and ceiling; bot i talks to backend i,"
        " users spread over the bots), production settings, LOG_LEVEL=WARNING"
    )


def limiters(names: list[str]) -> str:
    """Which limiter settings these scenarios run with: "overhead, crowd: 1000/s ... / ..."."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(limiter_setting(BOT_ENV.get(name, {})), []).append(name)
    # " / ", not "; ": the heading already separates its items with semicolons.
    return " / ".join(f"{', '.join(group)}: {setting}" for setting, group in groups.items())


def _value(figure: Figure) -> str:
    value = figure.value
    text = f"{value:.0f}" if value == int(value) or abs(value) >= 100 else f"{value:.1f}"
    if abs(value) < 10 and value != int(value):
        text = f"{value:.2f}"
    return f"{text} {figure.unit}".strip()


def render(report: Report, details: bool = False) -> str:
    """The table (Markdown, so it pastes into docs/PERFORMANCE.md as is)."""
    m = report.machine
    lines = [
        f"Pomogator benchmark, {m['date']}: {m['cpu']}, {m['cores']} cores, {m['ram']} RAM, "
        f"{m['os']}, Python {m['python']}",
        "; ".join(f"{k}: {v}" for k, v in report.setup.items()),
        "",
        "| scenario | figure | value | target | met? |",
        "|---|---|---|---|---|",
    ]
    for f in report.figures:
        met = "—" if f.met is None else ("yes" if f.met else "**no**")
        lines.append(f"| {f.scenario} | {f.figure} | {_value(f)} | {f.target or '—'} | {met} |")
    for name, error in report.failed.items():
        lines.append(f"| {name} | FAILED: {error} | — | — | **no** |")
    lines.append("")
    lines.append(f"({report.seconds:.0f} s in all)")
    if details:
        for f in report.figures:
            if f.details:
                lines += ["", f"{f.scenario} / {f.figure}:", *(f"    {d}" for d in f.details)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="run only this scenario (repeatable); all by default",
    )
    parser.add_argument("--smoke", action="store_true", help="a few seconds per scenario")
    parser.add_argument("--duration", type=float, help="overhead: seconds of load (60)")
    parser.add_argument("--rate", type=float, help="overhead: messages per second (50)")
    parser.add_argument("--users", type=int, help="crowd: users waiting at once (2000)")
    parser.add_argument("--provider-s", type=float, help="crowd: provider seconds (20)")
    parser.add_argument(
        "--no-redis",
        action="store_true",
        help="update claims through the backend (PostgreSQL), not Redis",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting for both services, e.g. --set DB_MAX_OVERFLOW=0 (repeatable)",
    )
    parser.add_argument(
        "--replicas",
        default="1",
        metavar="N[,M...]",
        help="overhead and ceiling with N (then M...) replicas of each service, e.g. 1,2",
    )
    parser.add_argument(
        "--details",
        action="store_true",
        help="also print each step and statement behind the figures",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run the services under cProfile; DIR/backend.prof and DIR/bot.prof (last scenario)",
    )
    args = parser.parse_args(argv)
    redis = not args.no_redis and redis_answers()
    options = Options.smoke(redis) if args.smoke else Options(redis=redis)
    if args.duration is not None:
        options.overhead_s = args.duration
    if args.rate is not None:
        options.overhead_rate = args.rate
    if args.users is not None:
        options.crowd_users = args.users
    if args.provider_s is not None:
        options.crowd_provider_s = args.provider_s
    for setting in args.set:
        key, sep, value = setting.partition("=")
        if not sep or not key:
            parser.error(f"--set {setting!r}: expected KEY=VALUE")
        options.service_env[key] = value
    try:
        options.replicas = tuple(int(n) for n in args.replicas.split(","))
    except ValueError:
        parser.error(f"--replicas {args.replicas!r}: expected counts like 1,2")
    if any(n < 1 for n in options.replicas):
        parser.error("--replicas: at least 1 of each")
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        options.profile_dir = args.profile.resolve()
    # The default loop: uvloop cannot start PostgreSQL as another account (pg_ctl as root).
    report = asyncio.run(run(args.scenario, options))
    print(render(report, details=args.details))
    return 1 if report.failed else 0

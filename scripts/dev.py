"""Local development without Docker: `run`, `migrate`, `revision MESSAGE`.

`run` starts the backend and, when BOT_TOKEN is set, the bot in long-polling mode.

The database is DATABASE_URL when set, else PostgreSQL on 127.0.0.1:5432 if it answers,
else an embedded PostgreSQL whose data lives in .data/postgres.
"""

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic import command  # noqa: E402
from dotenv import dotenv_values  # noqa: E402

from backend.database.migrate import alembic_config, upgrade  # noqa: E402
from scripts.local_db import create_database, drop_database, find_server  # noqa: E402

DEV_DATABASE = "pomogator"
DEV_TOKEN = "dev-internal-token"  # noqa: S105 - development only; production refuses it


@contextlib.contextmanager
def dev_database() -> Iterator[str]:
    """The development database URL, created and migrated."""
    if os.environ.get("DATABASE_URL"):
        url = os.environ["DATABASE_URL"]
        upgrade(url)
        yield url
        return
    with find_server((), data_dir=ROOT / ".data" / "postgres") as server:
        asyncio.run(create_database(server, DEV_DATABASE))
        url = server.database_url(DEV_DATABASE)
        upgrade(url)
        print(f"dev: database {DEV_DATABASE!r} on the {server.origin} server is ready")
        yield url


def run() -> int:
    """Start the backend, and the bot in long-polling mode when BOT_TOKEN is set, until Ctrl-C."""
    dotenv = {k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None}
    with dev_database() as url:
        port = os.environ.get("BACKEND_PORT", "8000")
        env = {
            **os.environ,
            "APP_ENV": os.environ.get("APP_ENV", "development"),
            "DATABASE_URL": url,
            "INTERNAL_API_TOKEN": os.environ.get("INTERNAL_API_TOKEN", DEV_TOKEN),
            "LOG_FORMAT": os.environ.get("LOG_FORMAT", "console"),
            "BACKEND_PORT": port,
        }
        processes = [subprocess.Popen([sys.executable, "-m", "backend"], cwd=ROOT, env=env)]
        print(f"dev: backend on http://127.0.0.1:{port} (token: {env['INTERNAL_API_TOKEN']!r})")
        if os.environ.get("BOT_TOKEN") or dotenv.get("BOT_TOKEN"):
            bot_env = {
                **env,
                "BOT_MODE": "polling",
                "BACKEND_URL": f"http://127.0.0.1:{port}",
            }
            processes.append(subprocess.Popen([sys.executable, "-m", "bot"], cwd=ROOT, env=bot_env))
            print("dev: bot is long-polling Telegram; message it to try")
        else:
            print("dev: set BOT_TOKEN (from @BotFather) in .env to run the bot as well")

        def stop(_signum: int, _frame: FrameType | None) -> None:
            for process in processes:
                process.terminate()

        signal.signal(signal.SIGTERM, stop)
        try:
            while all(process.poll() is None for process in processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        stop(signal.SIGTERM, None)
        return max(process.wait() for process in processes)


def migrate() -> int:
    with dev_database():
        return 0


def revision(message: str) -> int:
    """Autogenerate a migration by comparing the models with a scratch database at head."""
    scratch = "pomogator_revision_scratch"
    with find_server(("DATABASE_URL",), data_dir=ROOT / ".data" / "postgres") as server:
        asyncio.run(drop_database(server, scratch))
        asyncio.run(create_database(server, scratch))
        try:
            url = server.database_url(scratch)
            upgrade(url)
            command.revision(alembic_config(url), message=message, autogenerate=True)
        finally:
            asyncio.run(drop_database(server, scratch))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run")
    sub.add_parser("migrate")
    rev = sub.add_parser("revision")
    rev.add_argument("message")
    args = parser.parse_args()
    if args.command == "run":
        return run()
    if args.command == "migrate":
        return migrate()
    return revision(args.message)


if __name__ == "__main__":
    sys.exit(main())

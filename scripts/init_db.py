"""Apply all migrations to DATABASE_URL, creating the database if it does not exist.

Idempotent and safe to run on every deploy, also from several replicas at once.
"""

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import ValidationError
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from backend.config import DatabaseSettings
from backend.database.migrate import upgrade


async def ensure_database(database_url: str) -> bool:
    """Create the target database when the server has none of that name; True if created."""
    url = make_url(database_url)
    name = url.database
    if not name:
        return False
    engine = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            )
            if exists:
                return False
            quoted = name.replace('"', '""')
            await conn.execute(text(f'CREATE DATABASE "{quoted}"'))
            return True
    except Exception as exc:  # no rights or no maintenance db: migrations will say what is wrong
        print(f"init_db: could not check or create database {name!r}: {exc}", file=sys.stderr)
        return False
    finally:
        await engine.dispose()


def main() -> int:
    try:
        settings = DatabaseSettings()
    except ValidationError as exc:
        print(f"init_db: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    url = settings.database_url
    if asyncio.run(ensure_database(url)):
        print(f"init_db: created database {make_url(url).database!r}")
    upgrade(url)
    print("init_db: schema is at the latest migration")
    return 0


if __name__ == "__main__":
    sys.exit(main())

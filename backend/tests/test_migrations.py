"""Migrations: one head, up and down on an empty database, and in step with the models."""

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from backend.database.migrate import downgrade, heads, upgrade
from backend.models.database import Base

TABLES = {
    "users",
    "trials",
    "conversations",
    "messages_log",
    "subscriptions",
    "transactions",
    "credits_history",
}


def tables(url: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        finally:
            await engine.dispose()
        return names

    return asyncio.run(read())


def test_migration_history_has_a_single_head():
    assert len(heads()) == 1


def test_migrations_upgrade_to_head_and_downgrade_to_base(scratch_database):
    url = scratch_database()
    upgrade(url, configure_logging=False)
    assert tables(url) >= TABLES | {"alembic_version"}
    upgrade(url, configure_logging=False)  # running again changes nothing
    downgrade(url, "base", configure_logging=False)
    assert tables(url) == {"alembic_version"}
    upgrade(url, configure_logging=False)
    assert tables(url) >= TABLES


def test_models_and_migrations_agree(database_url):
    async def diff() -> list[object]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: compare_metadata(
                        MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                    )
                )
        finally:
            await engine.dispose()

    assert asyncio.run(diff()) == []


def test_init_db_script_creates_and_migrates_a_fresh_database(pg_server, scratch_database):
    import subprocess
    import sys

    url = scratch_database()
    asyncio.run(_drop(url))  # a database that does not exist yet
    env = {"DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    for _ in range(2):  # the second run must be a no-op
        done = subprocess.run(
            [sys.executable, "scripts/init_db.py"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    assert tables(url) >= TABLES


async def _drop(url: str) -> None:
    from sqlalchemy import make_url

    parsed = make_url(url)
    engine = create_async_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    finally:
        await engine.dispose()

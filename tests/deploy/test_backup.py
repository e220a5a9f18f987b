"""scripts/backup.sh against a real database with data: dump, retention, restore, refusals."""

import os
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from backend.config import AppEnv, Settings
from backend.services.catalog import load_catalog
from backend.tests.fixtures import TEST_TOKEN, answering_client, fast_catalog, provider_settings
from tests.deploy.conftest import init_database, pg_bin_dir, run_script, service_env
from tests.fakes.providers import start_fake_providers

Fingerprint = dict[str, object]


async def fingerprint(url: str) -> Fingerprint:
    """Rows (count and checksum) per table, sequence positions, constraints and triggers."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = (
                await conn.scalars(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
                )
            ).all()
            result: Fingerprint = {}
            for table in tables:
                quoted = '"' + table.replace('"', '""') + '"'
                count, checksum = (
                    await conn.execute(
                        text(
                            f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' "  # noqa: S608
                            f"ORDER BY t::text), '')) FROM {quoted} t"
                        )
                    )
                ).one()
                result[f"table {table}"] = (count, checksum)
            for kind, query in {
                "sequences": "SELECT sequencename || '=' || coalesce(last_value, 0) "
                "FROM pg_sequences WHERE schemaname = 'public'",
                "constraints": "SELECT conrelid::regclass || ':' || conname FROM pg_constraint c "
                "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'",
                "triggers": "SELECT tgrelid::regclass || ':' || tgname FROM pg_trigger "
                "WHERE NOT tgisinternal",
                "indexes": "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'",
            }.items():
                result[kind] = sorted((await conn.scalars(text(query))).all())
            return result
    finally:
        await engine.dispose()


async def server_version(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(text("SHOW server_version_num")))
    finally:
        await engine.dispose()


async def fill_through_the_api(url: str) -> None:
    """Users who registered, chatted, switched model and started over — via the backend API."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        app_env=AppEnv.DEVELOPMENT,
        database_url=url,
        internal_api_token=TEST_TOKEN,
    )
    engine = create_async_engine(url)
    async with start_fake_providers() as fake:
        client, registry = await answering_client(
            provider_settings(settings, fake), fast_catalog(load_catalog(None)), engine
        )
        try:
            for number, telegram_id in enumerate((5_100_001, 5_100_002, 5_100_003)):
                profile = {"telegram_id": telegram_id, "first_name": f"U{number}"}
                assert (await client.post("/api/v1/users", json=profile)).status_code == 201
                for question in ("Hello?", "Ещё вопрос: «кавычки», \\ и\nперевод строки"):
                    answer = await client.post(
                        "/api/v1/messages", json={"telegram_id": telegram_id, "text": question}
                    )
                    assert answer.status_code == 200, answer.text
            await client.patch("/api/v1/users/5100002", json={"model": "deepseek-thinking"})
            await client.post("/api/v1/conversations/5100003/reset")
        finally:
            await client.aclose()
            await registry.aclose()
            await engine.dispose()


@pytest.fixture(scope="module")
def migrated(scratch_database: Callable[[], str]) -> str:
    """A database set up as a deploy does it: `scripts/init_db.py`."""
    url = scratch_database()
    init_database(url)
    return url


@pytest.fixture(scope="module")
async def source(migrated: str) -> AsyncIterator[str]:
    """The migrated database with users, answers, ledger entries and conversations."""
    await fill_through_the_api(migrated)
    yield migrated


@pytest.fixture
def empty(scratch_database: Callable[[], str]) -> str:
    """A new, empty database: where a restore goes."""
    return scratch_database()


@pytest.fixture(scope="module")
async def pg_bin(source: str) -> str:
    return pg_bin_dir(await server_version(source))


def backup_env(backup_dir: Path, pg_bin: str, **values: str) -> dict[str, str]:
    return service_env(BACKUP_DIR=str(backup_dir), PG_BIN=pg_bin, **values)


def backup(source: str, backup_dir: Path, pg_bin: str, **values: str) -> Path:
    """Run `scripts/backup.sh` and return the dump it wrote."""
    before = set(backup_dir.glob("*.dump")) if backup_dir.exists() else set()
    done = run_script(
        "scripts/backup.sh",
        env=backup_env(backup_dir, pg_bin, BACKUP_DATABASE_URL=source, **values),
    )
    assert done.returncode == 0, done.stderr
    [dump] = set(backup_dir.glob("*.dump")) - before
    return dump


async def test_a_backup_restores_into_an_empty_database_with_every_row(
    source, empty, pg_bin, tmp_path
):
    dump = backup(source, tmp_path, pg_bin)
    assert re.fullmatch(r"pomogator-\d{8}T\d{6}Z\.dump", dump.name)
    assert dump.stat().st_mode & 0o077 == 0  # user data: readable by the owner only
    assert dump.read_bytes().startswith(b"PGDMP")  # pg_dump's custom format

    target = empty
    restored = run_script(
        "scripts/backup.sh",
        "restore",
        str(dump),
        env=backup_env(tmp_path, pg_bin, RESTORE_DATABASE_URL=target),
    )
    assert restored.returncode == 0, restored.stderr

    original, copy = await fingerprint(source), await fingerprint(target)
    assert copy == original
    counts = {name: value[0] for name, value in original.items() if name.startswith("table ")}
    for table in ("users", "messages_log", "credits_history"):
        assert counts[f"table {table}"] > 0, counts  # the comparison covered real data


async def test_dumps_older_than_the_retention_are_deleted(source, pg_bin, tmp_path):
    day = 24 * 3600
    old = tmp_path / "pomogator-20200101T000000Z.dump"
    recent = tmp_path / "pomogator-20200102T000000Z.dump"
    unrelated = tmp_path / "notes.txt"
    for path, age_days in ((old, 30), (recent, 3), (unrelated, 30)):
        path.write_text("x")
        stamp = time.time() - age_days * day
        os.utime(path, (stamp, stamp))

    dump = backup(source, tmp_path, pg_bin, BACKUP_KEEP_DAYS="14")

    assert not old.exists()
    assert recent.exists() and unrelated.exists() and dump.exists()


async def test_restore_refuses_a_database_that_is_not_empty(source, pg_bin, tmp_path):
    dump = backup(source, tmp_path, pg_bin)
    before = await fingerprint(source)
    refused = run_script(
        "scripts/backup.sh",
        "restore",
        str(dump),
        env=backup_env(tmp_path, pg_bin, RESTORE_DATABASE_URL=source),
    )
    assert refused.returncode != 0
    assert "not empty" in refused.stderr
    assert await fingerprint(source) == before


async def test_a_file_that_is_not_a_dump_is_not_restored(empty, pg_bin, tmp_path):
    target = empty
    bogus = tmp_path / "pomogator-bogus.dump"
    bogus.write_bytes(b"definitely not a pg_dump archive\n")
    refused = run_script(
        "scripts/backup.sh",
        "restore",
        str(bogus),
        env=backup_env(tmp_path, pg_bin, RESTORE_DATABASE_URL=target),
    )
    assert refused.returncode != 0
    assert (await fingerprint(target))["indexes"] == []


async def test_a_backup_of_an_unreachable_database_fails_and_keeps_nothing(pg_bin, tmp_path):
    done = run_script(
        "scripts/backup.sh",
        env=backup_env(
            tmp_path,
            pg_bin,
            BACKUP_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none?connect_timeout=2",
        ),
    )
    assert done.returncode != 0
    assert list(tmp_path.iterdir()) == []

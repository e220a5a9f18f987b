"""Find a PostgreSQL server for development and tests, starting an embedded one if needed.

Order: an explicit URL (TEST_DATABASE_URL / DATABASE_URL), then PostgreSQL on
127.0.0.1:5432 if it answers, then an embedded server from the `pgserver` package.
"""

import asyncio
import contextlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

LOCAL_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Server:
    """A reachable PostgreSQL server; `url` points at its maintenance database."""

    url: URL
    origin: str  # "env", "local" or "embedded"

    def database_url(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)


def to_asyncpg(url: str) -> URL:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg")


async def answers(url: URL, wait_s: float = 2.0) -> bool:
    """True if a server at `url` accepts a connection within `wait_s` seconds."""
    engine = create_async_engine(url, connect_args={"timeout": wait_s})
    try:
        async with asyncio.timeout(wait_s + 1), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure means "not usable here"
        return False
    finally:
        await engine.dispose()


async def create_database(server: Server, name: str) -> bool:
    """Create database `name` if missing; True if it was created."""
    if not _NAME.match(name):
        raise ValueError(f"unsafe database name {name!r}")
    engine = create_async_engine(server.url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            )
            if exists:
                return False
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
            return True
    finally:
        await engine.dispose()


async def drop_database(server: Server, name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"unsafe database name {name!r}")
    engine = create_async_engine(server.url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


@contextlib.contextmanager
def embedded_server(data_dir: Path | None = None) -> Iterator[Server]:
    """An embedded PostgreSQL (pgserver) for the duration of the block.

    With `data_dir` the data persists between runs (development); without it a temporary
    cluster is created and deleted afterwards (tests).
    """
    import pgserver  # imported here: only needed when no server is reachable

    temporary = data_dir is None
    path = Path(tempfile.mkdtemp(prefix="pomogator-pg-")) if temporary else data_dir
    assert path is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    pg = pgserver.get_server(path, cleanup_mode="delete" if temporary else "stop")
    try:
        uri = make_url(pg.get_uri())
        yield Server(url=uri.set(drivername="postgresql+asyncpg"), origin="embedded")
    finally:
        pg.cleanup()
        if temporary:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def find_server(env_vars: tuple[str, ...], data_dir: Path | None = None) -> Iterator[Server]:
    """The first usable server: an explicit URL, the local one on 5432, or an embedded one."""
    for var in env_vars:
        if os.environ.get(var):
            yield Server(url=to_asyncpg(os.environ[var]), origin="env")
            return
    if os.environ.get("POMOGATOR_EMBEDDED_PG") != "1" and asyncio.run(answers(make_url(LOCAL_URL))):
        yield Server(url=make_url(LOCAL_URL), origin="local")
        return
    print("PostgreSQL on 127.0.0.1:5432 does not answer; starting an embedded one", file=sys.stderr)
    with embedded_server(data_dir) as server:
        yield server

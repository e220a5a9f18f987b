"""Fixtures every test suite shares: a real PostgreSQL server and scratch databases on it."""

import asyncio
import os
import secrets
from collections.abc import Callable, Iterator

import pytest

from backend.database.migrate import upgrade
from scripts.local_db import Server, create_database, drop_database, find_server

pytest_plugins = ["backend.tests.fixtures"]

ScratchDatabase = Callable[[], str]
_used: list[str] = []


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """TEST_DATABASE_URL / DATABASE_URL, else PostgreSQL on 5432, else an embedded one."""
    with find_server(("TEST_DATABASE_URL", "DATABASE_URL")) as server:
        _used.append(server.origin)
        # Under pytest-xdist a worker hands the answer to the controller, which prints it.
        workeroutput = getattr(request.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput["pg_origin"] = server.origin
        yield server


def pytest_testnodedown(node: object, error: object) -> None:
    """Collect which PostgreSQL a pytest-xdist worker used."""
    origin = getattr(node, "workeroutput", {}).get("pg_origin")
    if origin and not _used:
        _used.append(origin)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which PostgreSQL the run used: env, local (127.0.0.1:5432) or embedded."""
    if _used:
        terminalreporter.write_line(f"PostgreSQL used: {_used[0]}")


@pytest.fixture(scope="session")
def scratch_database(pg_server: Server) -> Iterator[ScratchDatabase]:
    """A factory of empty databases on the test server, all dropped at the end of the run."""
    created: list[str] = []

    def make() -> str:
        name = f"pomogator_test_{os.getpid()}_{secrets.token_hex(4)}"
        asyncio.run(create_database(pg_server, name))
        created.append(name)
        return pg_server.database_url(name)

    yield make
    for name in created:
        asyncio.run(drop_database(pg_server, name))


@pytest.fixture(scope="session")
def database_url(scratch_database: ScratchDatabase) -> str:
    """One database for the run, migrated to head once."""
    url = scratch_database()
    upgrade(url, configure_logging=False)
    return url

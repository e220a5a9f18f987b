"""A PostgreSQL server of a test module's own, which it may stop and start at will.

The shared server (127.0.0.1:5432, or the embedded one) serves every other test, so a module
that takes the database away runs its system against one of these instead: a fresh cluster
in a temporary directory on a free loopback port, trust authentication, no fsync.
"""

import asyncio
import contextlib
import os
import pwd
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import make_url

from scripts.local_db import Server, create_database

START_TIMEOUT_S = 60


def postgres_bin() -> Path:
    """The directory with initdb and pg_ctl: the system's newest, else pgserver's bundled."""
    system = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True
    )
    for candidate in system:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    import pgserver  # only when the system has no PostgreSQL binaries

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def server_account() -> str | None:
    """PostgreSQL refuses to run as root: as root, the account to run it as (None otherwise)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgserver"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    from pgserver.utils import ensure_user_exists  # creates the account pgserver itself uses

    ensure_user_exists("pgserver")
    return "pgserver"


class PrivatePostgres:
    """initdb'd on construction by `private_postgres()`; `stop()` and `start()` as an operator."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.bin = postgres_bin()
        self.account = server_account()
        self.server = Server(
            url=make_url(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"),
            origin="private",
        )

    async def _run(self, tool: str, *args: str) -> None:
        # Output to a file, not a pipe: the postmaster pg_ctl starts would inherit the pipe.
        with (self.root / f"{tool}.out").open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                str(self.bin / tool),
                *args,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                cwd=self.root,
                user=self.account,
            )
            async with asyncio.timeout(START_TIMEOUT_S + 10):
                code = await process.wait()
        if code != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            output = (self.root / f"{tool}.out").read_text(errors="replace")
            raise RuntimeError(f"{tool} {' '.join(args)} exited with {code}:\n{output}\n{log}")

    async def init(self) -> None:
        await self._run(
            "initdb",
            "-D",
            str(self.data),
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--no-sync",
        )

    async def start(self) -> None:
        """Start the server (again, on the same port) and wait until it accepts connections."""
        options = f"-p {self.port} -h 127.0.0.1 -k {self.root} -c fsync=off"
        await self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
            "-t", str(START_TIMEOUT_S), "start",
        )  # fmt: skip

    async def stop(self) -> None:
        """`pg_ctl stop -m fast`: open connections are cut, as in a crash or a failover."""
        await self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    async def create_database(self, name: str) -> str:
        """A new empty database on this server; its asyncpg URL."""
        await create_database(self.server, name)
        return self.server.database_url(name)


def _server_directory(account: str | None) -> Path:
    """A fresh directory the server's account owns (others may only look in)."""
    root = Path(tempfile.mkdtemp(prefix="pomogator-pg-"))
    root.chmod(0o755)
    if account is not None:
        entry = pwd.getpwnam(account)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    return root


@contextlib.asynccontextmanager
async def private_postgres(port: int) -> AsyncIterator[PrivatePostgres]:
    """A running private server for the duration of the block; deleted afterwards."""
    root = _server_directory(server_account())
    try:
        server = PrivatePostgres(root, port)
        await server.init()
        await server.start()
        try:
            yield server
        finally:
            with contextlib.suppress(RuntimeError):  # already stopped
                await server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)

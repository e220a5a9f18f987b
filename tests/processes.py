"""Service processes for the system and deployment tests: started, watched, stopped or killed."""

import asyncio
import os
import random
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 60.0


# Below Linux's ephemeral range (32768-60999): the kernel never hands out these ports for
# outgoing connections, so a port chosen here stays free until the process that is given it
# binds it, seconds later (port 0 would pick one the kernel may give a connection meanwhile).
LISTEN_PORTS = range(20_000, 32_768)


def free_port() -> int:
    """A loopback port nobody listens on, for a process to be started on."""
    while True:
        port = random.choice(LISTEN_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def service_env(**values: str) -> dict[str, str]:
    """Only what the service is given: nothing leaks in from the developer's shell."""
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    return {**keep, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **values}


@dataclass
class Process:
    """A process whose output is collected as it runs (and shown when a test fails)."""

    name: str
    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> "Process":
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        started = cls(name, process)
        started.reader = asyncio.create_task(started._read())
        return started

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.lines.append(line.decode(errors="replace").rstrip())

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def tail(self, count: int = 150) -> str:
        return "\n".join(self.lines[-count:])

    async def wait_healthy(self, url: str, client: httpx.AsyncClient) -> None:
        """Until GET url answers 200; fails with the output if the process exits first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT_S
        while loop.time() < deadline:
            if self.process.returncode is not None:
                assert self.reader is not None
                await self.reader
                pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{self.output}")
            try:
                if (await client.get(url, timeout=1)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            # A readiness probe, as a container healthcheck would poll; not test synchronisation.
            await asyncio.sleep(0.05)
        pytest.fail(f"{self.name} was not healthy within {STARTUP_TIMEOUT_S} s:\n{self.output}")

    async def kill(self) -> int:
        """SIGKILL: the process dies at once, mid-whatever (the OOM killer, a power cut)."""
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        return await self._finished()

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        """SIGTERM (as Docker sends it) or `signum`; killed if not exited within 30 s."""
        if self.process.returncode is None:
            self.process.send_signal(signum)
            try:
                async with asyncio.timeout(30):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return await self._finished()

    async def _finished(self) -> int:
        if self.reader is not None:
            await self.reader
        assert self.process.returncode is not None
        return self.process.returncode

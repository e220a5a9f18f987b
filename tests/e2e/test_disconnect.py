"""A caller that goes away mid-answer (the bot killed, a dropped connection) is not charged."""

import asyncio
import json
import subprocess
import sys
import time

import httpx

from tests.e2e.test_backend_process import ROOT, TOKEN, free_port, service_env
from tests.fakes.providers import start_fake_providers


async def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            assert process.poll() is None, "backend exited"
            try:
                if (await http.get(f"{url}/health", timeout=1)).status_code == 200:
                    return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise AssertionError("backend did not become healthy")


async def test_answer_abandoned_mid_stream_is_refunded(scratch_database):
    database_url = await asyncio.to_thread(scratch_database)
    init = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "scripts/init_db.py"],
        cwd=ROOT,
        env=service_env(DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stderr
    async with start_fake_providers() as fake:
        fake.script("openai", text="a slow answer " * 20, chunks=20, chunk_delay_s=0.2)
        port = free_port()
        env = service_env(
            APP_ENV="production",
            DATABASE_URL=database_url,
            INTERNAL_API_TOKEN=TOKEN,
            BACKEND_HOST="127.0.0.1",
            BACKEND_PORT=str(port),
            OPENAI_API_KEY="sk-test",
            OPENAI_BASE_URL=fake.base_url("openai"),
            PROVIDER_MAX_RETRIES="0",
        )
        process = subprocess.Popen(  # noqa: ASYNC220 - Popen returns at once
            [sys.executable, "-m", "backend"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(url, process)
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as api:
                await api.post("/api/v1/users", json={"telegram_id": 42, "first_name": "Gone"})
                async with api.stream(
                    "POST",
                    "/api/v1/messages",
                    json={"telegram_id": 42, "text": "hi", "stream": True},
                ) as response:
                    seen = []
                    async for line in response.aiter_lines():
                        seen.append(json.loads(line)["type"])
                        if "delta" in seen:
                            break  # the caller leaves after the first words
                assert seen[0] == "start"
                deadline = time.monotonic() + 10
                credits = {}
                while time.monotonic() < deadline:
                    credits = (await api.get("/api/v1/credits/42")).json()
                    if credits["entries"][0]["kind"] == "refund":
                        break
                    await asyncio.sleep(0.1)
            assert [e["kind"] for e in credits["entries"]] == ["refund", "use", "grant"]
            assert credits["free_messages_left"] == 10
            assert credits["entries"][0]["reason"] == "cancelled"
        finally:
            process.terminate()
            await asyncio.to_thread(process.wait, 30)

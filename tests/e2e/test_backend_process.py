"""The real `python -m backend` process against a database made by `scripts/init_db.py`."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "e2e-internal-token-5f0c9a7d3b1e4c2a"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(**values: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    return {**keep, **values}


@pytest.fixture(scope="module")
def backend_url(scratch_database) -> Iterator[str]:
    database_url = scratch_database()
    init = subprocess.run(
        [sys.executable, "scripts/init_db.py"],
        cwd=ROOT,
        env=service_env(DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stderr
    port = free_port()
    env = service_env(
        APP_ENV="production",
        DATABASE_URL=database_url,
        INTERNAL_API_TOKEN=TOKEN,
        BACKEND_HOST="127.0.0.1",
        BACKEND_PORT=str(port),
        LOG_FORMAT="json",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "backend"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"backend exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("backend did not become healthy in 30 s")
    yield url
    process.terminate()
    # uvicorn re-raises SIGTERM once it has shut down cleanly.
    assert process.wait(timeout=30) in (0, -15)
    output = process.stdout.read().decode() if process.stdout else ""
    assert '"event": "backend_stopped"' in output, output
    assert TOKEN not in output


def api(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)


def test_fresh_backend_is_healthy(backend_url):
    response = httpx.get(f"{backend_url}/health", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_fresh_backend_registers_a_user_with_ten_free_messages(backend_url):
    with api(backend_url) as client:
        missing = client.get("/api/v1/users/1")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "user_not_found"
        created = client.post("/api/v1/users", json={"telegram_id": 1, "first_name": "Ivan"})
        assert created.status_code == 201
        profile = client.get("/api/v1/users/1")
    assert profile.status_code == 200
    assert profile.json()["free_messages_left"] == 10


def test_backend_refuses_wrong_token_over_http(backend_url):
    response = httpx.get(
        f"{backend_url}/api/v1/users/1", headers={"Authorization": "Bearer nope"}, timeout=5
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_response_carries_a_request_id(backend_url):
    response = httpx.get(f"{backend_url}/health", headers={"X-Request-ID": "abc123"}, timeout=5)
    assert response.headers["x-request-id"] == "abc123"


def test_production_refuses_to_start_with_a_placeholder_token():
    done = subprocess.run(
        [sys.executable, "-m", "backend"],
        cwd=ROOT,
        env=service_env(APP_ENV="production", INTERNAL_API_TOKEN="change-me"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "INTERNAL_API_TOKEN" in done.stderr

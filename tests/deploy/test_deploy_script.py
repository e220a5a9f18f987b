"""scripts/deploy.sh against a stand-in `docker` (no engine here): order, health, rollback."""

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, service_env

OLD = {"pomogator-backend:latest": "sha-old-backend", "pomogator-bot:latest": "sha-old-bot"}


@dataclass
class Host:
    """A copy of the checkout as an operator has it (.env, certificate) and a fake Docker."""

    root: Path
    state_file: Path
    log_file: Path
    docker: Path

    def deploy(self, *args: str, **faults: str) -> subprocess.CompletedProcess[str]:
        env = service_env(DOCKER=str(self.docker), **faults)
        env |= {"FAKE_DOCKER_STATE": str(self.state_file), "FAKE_DOCKER_LOG": str(self.log_file)}
        return subprocess.run(
            ["bash", str(self.root / "scripts" / "deploy.sh"), *args],  # noqa: S607
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    @property
    def state(self) -> dict:
        return json.loads(self.state_file.read_text())

    def commands(self) -> list[str]:
        return self.log_file.read_text().splitlines() if self.log_file.exists() else []

    def index(self, fragment: str) -> int:
        """Position of the first command containing `fragment`."""
        return next(i for i, c in enumerate(self.commands()) if fragment in c)


def make_host(tmp_path: Path, images: dict[str, str]) -> Host:
    root = tmp_path / "pomogator"
    (root / "scripts").mkdir(parents=True)
    for script in ("deploy.sh", "backup.sh"):
        shutil.copy2(ROOT / "scripts" / script, root / "scripts" / script)
    env = (ROOT / ".env.example").read_text().replace("DEPLOY_HEALTH_TIMEOUT_S=180", "")
    (root / ".env").write_text(env + "DEPLOY_HEALTH_TIMEOUT_S=5\n")
    (root / "nginx" / "ssl").mkdir(parents=True)
    for name in ("fullchain.pem", "privkey.pem"):
        (root / "nginx" / "ssl" / name).write_text("pem")
    containers = {"postgres": "running", "redis": "running", "nginx": "running"}
    containers |= (
        {service: images[f"pomogator-{service}:latest"] for service in ("backend", "bot")}
        if images
        else {}
    )
    state = tmp_path / "docker-state.json"
    state.write_text(json.dumps({"images": dict(images), "containers": containers, "release": 0}))
    docker = tmp_path / "docker"
    docker.write_text(
        f'#!/bin/sh\nexec {sys.executable} -S {Path(__file__).parent / "fake_docker.py"} "$@"\n'
    )
    docker.chmod(0o755)
    return Host(root, state, tmp_path / "docker.log", docker)


@pytest.fixture
def host(tmp_path: Path) -> Host:
    """A host running the previous release."""
    return make_host(tmp_path, OLD)


def test_a_healthy_release_is_backed_up_migrated_and_started_in_order(host):
    done = host.deploy()
    assert done.returncode == 0, done.stderr
    state = host.state
    assert state["containers"]["backend"].startswith("sha-new-backend")
    assert state["containers"]["bot"].startswith("sha-new-bot")
    assert state["migrated_with"] == state["containers"]["backend"]
    # The previous images are kept for a rollback.
    assert state["images"]["pomogator-backend:rollback"] == "sha-old-backend"
    # A backup of the running database came before the migrations.
    [dump] = (host.root / "backups").glob("pomogator-*.dump")
    assert dump.read_text() == "PGDMP-fake-dump\n"
    order = [
        host.index("tag pomogator-backend:latest pomogator-backend:rollback"),
        host.index("compose build"),
        host.index("pg_dump"),
        host.index("compose up -d --no-build postgres redis"),
        host.index("compose run --rm --no-deps migrate"),
        host.index("up -d --no-deps --no-build backend bot"),
        host.index("--force-recreate nginx"),
    ]
    assert order == sorted(order)


def test_an_unhealthy_release_is_rolled_back_to_the_previous_images(host):
    done = host.deploy(FAKE_DOCKER_UNHEALTHY="bot")
    assert done.returncode != 0
    assert "rolling back" in done.stderr
    state = host.state
    assert {k: state["images"][k] for k in OLD} == OLD
    assert state["containers"]["backend"] == "sha-old-backend"
    assert state["containers"]["bot"] == "sha-old-bot"


def test_a_failed_migration_keeps_the_previous_release_running(host):
    done = host.deploy(FAKE_DOCKER_FAIL="migrate")
    assert done.returncode != 0
    assert "migration failed" in done.stderr
    state = host.state
    assert {k: state["images"][k] for k in OLD} == OLD
    assert state["containers"]["backend"] == "sha-old-backend"
    assert not any(
        "backend bot" in c and "--no-build" in c
        for c in host.commands()[: host.index("compose run")]
    )


def test_rollback_by_hand_restarts_the_previous_release(host):
    assert host.deploy().returncode == 0
    done = host.deploy("rollback")
    assert done.returncode == 0, done.stderr
    assert host.state["containers"]["bot"] == "sha-old-bot"


def test_pull_fetches_images_instead_of_building(host):
    done = host.deploy("pull")
    assert done.returncode == 0, done.stderr
    assert any(c.startswith("compose pull") for c in host.commands())
    assert not any(c.startswith("compose build") for c in host.commands())


def test_a_first_deploy_that_fails_says_there_is_nothing_to_go_back_to(tmp_path):
    first = make_host(tmp_path, {})
    done = first.deploy(FAKE_DOCKER_UNHEALTHY="backend")
    assert done.returncode != 0
    assert "nothing to roll back to" in done.stderr


def test_deploy_refuses_to_start_without_settings_or_certificate(host):
    (host.root / "nginx" / "ssl" / "privkey.pem").unlink()
    done = host.deploy()
    assert done.returncode != 0 and "certificate" in done.stderr
    (host.root / ".env").unlink()
    done = host.deploy()
    assert done.returncode != 0 and ".env" in done.stderr
    assert not any(c.startswith(("compose build", "compose up")) for c in host.commands())

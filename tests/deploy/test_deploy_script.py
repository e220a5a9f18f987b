"""scripts/deploy.sh against a stand-in `docker` (no engine): order, health, replicas, rollback."""

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import fake_docker
from tests.deploy.conftest import ROOT, service_env

OLD = {"pomogator-backend:latest": "sha-old-backend", "pomogator-bot:latest": "sha-old-bot"}
PROJECT = fake_docker.load_project(ROOT)
# What each service's containers get to finish after SIGTERM: docker-compose.yml's
# stop_grace_period, which Compose gives each container as its stop timeout.
GRACE = {service: PROJECT[service]["stop_timeout"] for service in ("backend", "bot")}
ENDING = {"kill", "die", "destroy", "health_status: unhealthy"}


@dataclass
class Host:
    """A copy of the checkout as an operator has it (.env, certificate) and a fake Docker."""

    root: Path
    state_file: Path
    log_file: Path
    docker: Path

    def deploy(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = service_env(DOCKER=str(self.docker), **env)
        environment |= {
            "FAKE_DOCKER_STATE": str(self.state_file),
            "FAKE_DOCKER_LOG": str(self.log_file),
        }
        return subprocess.run(
            ["bash", str(self.root / "scripts" / "deploy.sh"), *args],  # noqa: S607
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    @property
    def state(self) -> dict[str, Any]:
        return json.loads(self.state_file.read_text())

    def commands(self) -> list[str]:
        return self.log_file.read_text().splitlines() if self.log_file.exists() else []

    def index(self, fragment: str) -> int:
        """Position of the first command containing `fragment`."""
        return next(i for i, c in enumerate(self.commands()) if fragment in c)

    def containers(self, service: str) -> list[dict[str, Any]]:
        return fake_docker.containers_of(self.state, service)

    def ids(self, service: str) -> set[str]:
        return {c["Id"] for c in self.containers(service)}

    def events(self, service: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        every = self.state["events"][since:]
        return [e for e in every if service is None or e["service"] == service]

    def set_env(self, name: str, value: str | None) -> None:
        """Set (or with None, drop) a variable in the host's .env."""
        env = self.root / ".env"
        lines = [line for line in env.read_text().splitlines() if not line.startswith(name + "=")]
        env.write_text("\n".join(lines + ([f"{name}={value}"] if value is not None else [])) + "\n")


def make_host(tmp_path: Path, images: dict[str, str], **replicas: int) -> Host:
    """A host running `images` (none: a fresh host), `replicas` containers of each service."""
    root = tmp_path / "pomogator"
    (root / "scripts").mkdir(parents=True)
    for script in ("deploy.sh", "backup.sh"):
        shutil.copy2(ROOT / "scripts" / script, root / "scripts" / script)
    env = (ROOT / ".env.example").read_text().replace("DEPLOY_HEALTH_TIMEOUT_S=180", "")
    (root / ".env").write_text(env + "DEPLOY_HEALTH_TIMEOUT_S=5\nDEPLOY_POLL_S=0.1\n")
    (root / "nginx" / "ssl").mkdir(parents=True)
    for name in ("fullchain.pem", "privkey.pem"):
        (root / "nginx" / "ssl" / name).write_text("pem")
    state = fake_docker.initial_state(PROJECT, images)
    for service, count in replicas.items():
        fake_docker.scale(state, service, count)
    state_file = tmp_path / "docker-state.json"
    state_file.write_text(json.dumps(state))
    docker = tmp_path / "docker"
    docker.write_text(
        f'#!/bin/sh\nexec {sys.executable} -S {Path(__file__).parent / "fake_docker.py"} "$@"\n'
    )
    docker.chmod(0o755)
    return Host(root, state_file, tmp_path / "docker.log", docker)


def serving(host: Host, service: str, before: set[str], since: int = 0) -> list[int]:
    """How many containers of `service` were healthy and not being stopped, after each event.

    `before` are the healthy containers it had when the events start.
    """
    up = set(before)
    counts = [len(up)]
    for event in host.events(service, since):
        if event["action"] == "health_status: healthy":
            up.add(event["id"])
        elif event["action"] in ENDING:
            up.discard(event["id"])
        counts.append(len(up))
    return counts


def images_running(host: Host, service: str) -> list[str]:
    return sorted(
        c["Image"]
        for c in host.containers(service)
        if c["State"]["Status"] == "running" and c["State"]["Health"]["Status"] == "healthy"
    )


def stopped_gracefully(host: Host, service: str, ids: set[str]) -> bool:
    """Each of `ids` got SIGTERM and the service's grace from `docker stop`, then was removed."""
    commands = host.commands()
    kills = {e["id"]: e for e in host.events(service) if e["action"] == "kill"}
    removed = {e["id"] for e in host.events(service) if e["action"] == "destroy"}
    return all(
        f"stop -t {GRACE[service]} {cid}" in commands
        and f"rm {cid}" in commands
        and kills[cid]["signal"] == 15
        and kills[cid]["timeout"] == GRACE[service]
        and cid in removed
        for cid in ids
    )


@pytest.fixture
def host(tmp_path: Path) -> Host:
    """A host running the previous release, one container of each service."""
    return make_host(tmp_path, OLD)


@pytest.fixture
def host2(tmp_path: Path) -> Host:
    """A host running the previous release, two containers of each service."""
    return make_host(tmp_path, OLD, backend=2, bot=2)


TWO_EACH = {"BACKEND_REPLICAS": "2", "BOT_REPLICAS": "2"}


def test_a_healthy_release_is_backed_up_migrated_and_started_in_order(host):
    done = host.deploy()
    assert done.returncode == 0, done.stderr
    state = host.state
    [backend] = images_running(host, "backend")
    [bot] = images_running(host, "bot")
    assert backend.startswith("sha-new-backend") and bot.startswith("sha-new-bot")
    assert state["migrated_with"] == backend
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
        host.index("--no-recreate --scale backend=2 backend"),
        host.index("--no-recreate --scale bot=2 bot"),
        host.index("--force-recreate nginx"),
    ]
    assert order == sorted(order)


@dataclass
class Rolled:
    """A host that ran two containers of each service, after a deploy of two of each."""

    host: Host
    before: dict[str, set[str]]
    done: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def rolled(tmp_path_factory: pytest.TempPathFactory) -> Rolled:
    host = make_host(tmp_path_factory.mktemp("rolled"), OLD, backend=2, bot=2)
    before = {s: host.ids(s) for s in ("backend", "bot")}
    return Rolled(host, before, host.deploy(**TWO_EACH))


def test_every_replica_is_replaced_while_two_of_each_keep_serving(rolled):
    host, done = rolled.host, rolled.done
    assert done.returncode == 0, done.stderr
    for service in ("backend", "bot"):
        # Never fewer than two healthy: each new container is healthy before an old one stops.
        assert min(serving(host, service, rolled.before[service])) >= 2, service
        assert not host.ids(service) & rolled.before[service]
        [new_image] = set(images_running(host, service))
        assert images_running(host, service) == [new_image, new_image]
        assert new_image.startswith(f"sha-new-{service}")
        assert len(host.containers(service)) == 2


def test_the_backend_is_rolled_before_the_bot(rolled):
    assert rolled.done.returncode == 0, rolled.done.stderr
    changes = {"create", "kill"}
    backend = [e["call"] for e in rolled.host.events("backend") if e["action"] in changes]
    bot = [e["call"] for e in rolled.host.events("bot") if e["action"] in changes]
    assert backend and bot
    assert max(backend) < min(bot)


def test_old_replicas_get_sigterm_and_their_stop_grace_period(rolled):
    assert rolled.done.returncode == 0, rolled.done.stderr
    for service in ("backend", "bot"):
        assert stopped_gracefully(rolled.host, service, rolled.before[service]), service


def test_scaling_from_one_to_three_keeps_the_old_one_until_new_ones_serve(host):
    old = host.ids("bot")
    host.set_env("BOT_REPLICAS", "3")
    done = host.deploy()
    assert done.returncode == 0, done.stderr
    assert min(serving(host, "bot", old)) >= 1
    assert serving(host, "bot", old)[-1] == 3
    assert len(host.containers("bot")) == 3 and not host.ids("bot") & old
    assert all(image.startswith("sha-new-bot") for image in images_running(host, "bot"))
    assert stopped_gracefully(host, "bot", old)
    assert {e["id"] for e in host.events("bot") if e["action"] == "kill"} == old
    assert len(host.containers("backend")) == 1


def test_scaling_from_three_to_one_stops_the_surplus_gracefully(tmp_path):
    host = make_host(tmp_path, OLD, bot=3)
    old = host.ids("bot")
    done = host.deploy(BOT_REPLICAS="1")
    assert done.returncode == 0, done.stderr
    assert min(serving(host, "bot", old)) >= 1
    [image] = images_running(host, "bot")
    assert image.startswith("sha-new-bot") and len(host.containers("bot")) == 1
    assert stopped_gracefully(host, "bot", old)
    # The surplus is old containers stopped, not new ones started and stopped again.
    assert [e["action"] for e in host.events("bot")].count("create") == 1
    assert {e["id"] for e in host.events("bot") if e["action"] == "kill"} == old


def test_each_service_runs_one_replica_by_default(tmp_path):
    host = make_host(tmp_path, OLD, backend=2, bot=2)
    host.set_env("BACKEND_REPLICAS", None)
    host.set_env("BOT_REPLICAS", None)
    done = host.deploy()
    assert done.returncode == 0, done.stderr
    assert len(images_running(host, "backend")) == len(host.containers("backend")) == 1
    assert len(images_running(host, "bot")) == len(host.containers("bot")) == 1


def test_a_first_deploy_starts_every_replica_and_waits_until_each_is_healthy(tmp_path):
    fresh = make_host(tmp_path, {})
    done = fresh.deploy(BACKEND_REPLICAS="2", BOT_REPLICAS="3")
    assert done.returncode == 0, done.stderr
    nginx = next(e["call"] for e in fresh.events("nginx") if e["action"] == "create")
    for service, count in (("backend", 2), ("bot", 3)):
        assert len(images_running(fresh, service)) == len(fresh.containers(service)) == count
        healthy = {
            e["id"]
            for e in fresh.events(service)
            if e["action"] == "health_status: healthy" and e["call"] < nginx
        }
        assert healthy == fresh.ids(service), service


def test_an_unhealthy_new_bot_mid_roll_keeps_the_old_bots_and_tags_the_images_back(host2):
    before = {s: host2.ids(s) for s in ("backend", "bot")}
    # The first new bot container is healthy, the second is not.
    done = host2.deploy(**TWO_EACH, FAKE_DOCKER_UNHEALTHY="bot", FAKE_DOCKER_UNHEALTHY_FROM="2")
    assert done.returncode != 0
    assert "deploy failed; the previous release runs again" in done.stderr
    state = host2.state
    assert {k: state["images"][k] for k in OLD} == OLD
    bot_events = host2.events("bot")
    [unhealthy] = [e["id"] for e in bot_events if e["action"] == "health_status: unhealthy"]
    assert unhealthy not in state["containers"]
    assert any(e["action"] == "destroy" and e["id"] == unhealthy for e in bot_events)
    # The old bot that was not yet replaced ran throughout; the replaced one was given back.
    stopped = {e["id"] for e in bot_events if e["action"] == "kill"}
    untouched = before["bot"] - stopped
    assert len(untouched) == 1 and untouched <= host2.ids("bot")
    for service in ("backend", "bot"):
        assert images_running(host2, service) == [OLD[f"pomogator-{service}:latest"]] * 2
        assert len(host2.containers(service)) == 2
        # The rollback is one at a time too.
        assert min(serving(host2, service, before[service])) >= 2, service


def test_an_unhealthy_release_is_rolled_back_to_the_previous_images(host):
    old_bot = host.ids("bot")
    done = host.deploy(FAKE_DOCKER_UNHEALTHY="bot")
    assert done.returncode != 0
    assert "rolling back" in done.stderr
    state = host.state
    assert {k: state["images"][k] for k in OLD} == OLD
    assert images_running(host, "backend") == ["sha-old-backend"]
    # The first new bot never became healthy, so the old one was never stopped.
    assert host.ids("bot") == old_bot
    assert images_running(host, "bot") == ["sha-old-bot"]
    assert not any(e["action"] == "kill" and e["id"] in old_bot for e in host.events("bot"))


def test_a_failing_backend_leaves_the_bot_replicas_alone(host2):
    before = {s: host2.ids(s) for s in ("backend", "bot")}
    done = host2.deploy(**TWO_EACH, FAKE_DOCKER_UNHEALTHY="backend", FAKE_DOCKER_UNHEALTHY_FROM="2")
    assert done.returncode != 0
    assert "the previous release runs again" in done.stderr
    assert host2.ids("bot") == before["bot"]
    assert host2.events("bot") == []
    assert images_running(host2, "backend") == ["sha-old-backend"] * 2
    assert min(serving(host2, "backend", before["backend"])) >= 2


def test_a_failed_migration_keeps_the_previous_release_running(host):
    before = {s: host.ids(s) for s in ("backend", "bot")}
    done = host.deploy(FAKE_DOCKER_FAIL="migrate")
    assert done.returncode != 0
    assert "migration failed" in done.stderr
    state = host.state
    assert {k: state["images"][k] for k in OLD} == OLD
    assert {s: host.ids(s) for s in ("backend", "bot")} == before
    assert not any(
        e["action"] in {"create", "kill"} for s in ("backend", "bot") for e in host.events(s)
    )


def test_rollback_by_hand_restarts_the_previous_release_one_at_a_time(host2):
    assert host2.deploy(**TWO_EACH).returncode == 0
    since = len(host2.state["events"])
    new = {s: host2.ids(s) for s in ("backend", "bot")}
    done = host2.deploy("rollback", **TWO_EACH)
    assert done.returncode == 0, done.stderr
    for service in ("backend", "bot"):
        assert images_running(host2, service) == [OLD[f"pomogator-{service}:latest"]] * 2
        assert min(serving(host2, service, new[service], since)) >= 2, service
        assert stopped_gracefully(host2, service, new[service]), service


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
    assert first.containers("backend") == []


@pytest.mark.parametrize("count", ["0", "two", "-1"])
def test_a_replica_count_that_is_not_a_whole_number_from_one_is_refused(host, count):
    done = host.deploy(BOT_REPLICAS=count)
    assert done.returncode != 0
    assert re.search(r"BOT_REPLICAS must be a whole number", done.stderr)
    assert not any(c.startswith(("compose build", "compose up", "tag")) for c in host.commands())


def test_deploy_refuses_to_start_without_settings_or_certificate(host):
    (host.root / "nginx" / "ssl" / "privkey.pem").unlink()
    done = host.deploy()
    assert done.returncode != 0 and "certificate" in done.stderr
    (host.root / ".env").unlink()
    done = host.deploy()
    assert done.returncode != 0 and ".env" in done.stderr
    assert not any(c.startswith(("compose build", "compose up")) for c in host.commands())

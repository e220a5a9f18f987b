"""A stand-in for the `docker` CLI, for testing scripts/deploy.sh and backup.sh without an engine.

It keeps images (tag -> id) and containers (id -> what `docker inspect` shows, several per
service) in a JSON file ($FAKE_DOCKER_STATE), appends every command line to $FAKE_DOCKER_LOG,
records what the engine would report in `docker events` (start, health_status, kill, die,
destroy) in the state's "events", and answers the commands the scripts use the way Docker and
Compose v2 would: `compose up` converges each named service to its `--scale` (else 1),
`--no-recreate` leaves existing containers alone, `compose ps` lists running containers (all
with `-a`), `docker stop -t N` sends SIGTERM, `docker rm` refuses a running container.

A new container with a healthcheck reports `starting` the first $FAKE_DOCKER_STARTING times it
is inspected (default 1), then `healthy`, as if its first checks passed meanwhile. Faults:
FAKE_DOCKER_FAIL=migrate makes `compose run migrate` fail; FAKE_DOCKER_UNHEALTHY=<service>
makes that service's containers unhealthy whenever they run a newly built or pulled image, from
the FAKE_DOCKER_UNHEALTHY_FROM-th such container on (default 1: all of them).
"""

import hashlib
import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

PROJECT = "pomogator"
APP_SERVICES = ("backend", "bot")
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"
STOP_SIGNAL = 15  # SIGTERM: neither image sets STOPSIGNAL, nor Compose stop_signal
DEFAULT_STOP_TIMEOUT_S = 10  # Docker's, for a container created without one


def image_of(service: str) -> str:
    return f"{PROJECT}-{service}:latest"


def seconds(duration: str | None) -> int | None:
    """A Compose duration ("40s", "1m30s") in whole seconds, as Compose gives it to the engine."""
    if duration is None:
        return None
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", str(duration))
    return int(sum(float(number) * units[unit] for number, unit in parts))


def load_project(root: Path) -> dict[str, dict[str, Any]]:
    """What the fake Compose needs of docker-compose.yml: image, stop grace and healthcheck.

    Called by the tests (PyYAML is there); the fake itself runs without site packages.
    """
    import yaml

    services = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]
    project = {}
    for name, service in services.items():
        image = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", service.get("image", f"{name}:latest"))
        dockerfile = service.get("build", {}).get("dockerfile")
        built_check = dockerfile and "HEALTHCHECK" in (root / dockerfile).read_text()
        project[name] = {
            "image": image,
            "stop_timeout": seconds(service.get("stop_grace_period")),
            "healthcheck": bool(service.get("healthcheck") or built_check),
        }
    return project


def initial_state(project: dict[str, dict[str, Any]], images: dict[str, str]) -> dict[str, Any]:
    """A host on which postgres, redis and nginx run, and backend and bot when `images` has
    theirs (one container each, healthy)."""
    state: dict[str, Any] = {
        "images": dict(images),
        "containers": {},
        "project": project,
        "events": [],
        "calls": 0,
        "release": 0,
        "serial": 0,
        "new_created": {},
    }
    running = ["postgres", "redis", "nginx"]
    running += [s for s in APP_SERVICES if image_of(s) in images]
    for service in running:
        container = create(state, service)
        start(state, container, healthy=True)
    state["events"] = []
    return state


def scale(state: dict[str, Any], service: str, count: int) -> None:
    """Give `service` `count` healthy containers on its current image (a host's past)."""
    mine = containers_of(state, service)
    for container in mine[count:]:
        del state["containers"][container["Id"]]
    for _ in range(count - len(mine[:count])):
        start(state, create(state, service), healthy=True)
    state["events"] = []


def main(argv: list[str]) -> int:
    state_path = Path(os.environ["FAKE_DOCKER_STATE"])
    state: dict[str, Any] = json.loads(state_path.read_text())
    with Path(os.environ["FAKE_DOCKER_LOG"]).open("a") as log:
        log.write(shlex.join(argv) + "\n")
    state["calls"] += 1
    try:
        return run(argv, state)
    finally:
        state_path.write_text(json.dumps(state))


# --- the engine ------------------------------------------------------------------------------


def containers_of(state: dict[str, Any], service: str) -> list[dict[str, Any]]:
    """The service's containers by number, as Compose finds them by label."""
    found = [
        c for c in state["containers"].values() if c["Config"]["Labels"][SERVICE_LABEL] == service
    ]
    return sorted(found, key=number_of)


def number_of(container: dict[str, Any]) -> int:
    return int(container["Config"]["Labels"][NUMBER_LABEL])


def event(state: dict[str, Any], action: str, container: dict[str, Any], **extra: Any) -> None:
    state["events"].append(
        {
            "call": state["calls"],
            "action": action,
            "id": container["Id"],
            "service": container["Config"]["Labels"][SERVICE_LABEL],
            "image": container["Image"],
            **extra,
        }
    )


def create(state: dict[str, Any], service: str, number: int | None = None) -> dict[str, Any]:
    config = state["project"][service]
    ref = config["image"]
    image_id = state["images"].get(ref, f"sha-{ref}")
    if number is None:
        number = max((number_of(c) for c in containers_of(state, service)), default=0) + 1
    state["serial"] += 1
    cid = hashlib.sha256(f"{PROJECT}-{service}-{state['serial']}".encode()).hexdigest()
    unhealthy = False
    if "-new-" in image_id:
        made = state["new_created"][service] = state["new_created"].get(service, 0) + 1
        faulty = os.environ.get("FAKE_DOCKER_UNHEALTHY") == service
        unhealthy = faulty and made >= int(os.environ.get("FAKE_DOCKER_UNHEALTHY_FROM", "1"))
    container = {
        "Id": cid,
        "Name": f"/{PROJECT}-{service}-{number}",
        "Image": image_id,
        "Config": {
            "Image": ref,
            "StopTimeout": config["stop_timeout"],
            "Labels": {
                "com.docker.compose.project": PROJECT,
                SERVICE_LABEL: service,
                NUMBER_LABEL: str(number),
            },
        },
        "State": {"Status": "created", "Health": None},
        "Fake": {"looks": 0, "unhealthy": unhealthy, "healthcheck": config["healthcheck"]},
    }
    state["containers"][cid] = container
    event(state, "create", container)
    return container


def start(state: dict[str, Any], container: dict[str, Any], healthy: bool = False) -> None:
    container["State"]["Status"] = "running"
    if container["Fake"]["healthcheck"]:
        container["State"]["Health"] = {"Status": "healthy" if healthy else "starting"}
    event(state, "start", container)


def look(state: dict[str, Any], container: dict[str, Any]) -> None:
    """Time passes for a container each time it is inspected: its first checks complete."""
    container["Fake"]["looks"] += 1
    health = container["State"]["Health"]
    starting = health and health["Status"] == "starting"
    checked = container["Fake"]["looks"] > int(os.environ.get("FAKE_DOCKER_STARTING", "1"))
    if starting and checked and container["State"]["Status"] == "running":
        health["Status"] = "unhealthy" if container["Fake"]["unhealthy"] else "healthy"
        event(state, f"health_status: {health['Status']}", container)


def stop(state: dict[str, Any], container: dict[str, Any], timeout: int | None) -> None:
    if container["State"]["Status"] != "running":
        return
    if timeout is None:
        timeout = container["Config"]["StopTimeout"]
    if timeout is None:
        timeout = DEFAULT_STOP_TIMEOUT_S
    event(state, "kill", container, signal=STOP_SIGNAL, timeout=timeout)
    container["State"]["Status"] = "exited"
    event(state, "die", container)
    event(state, "stop", container)


def remove(state: dict[str, Any], container: dict[str, Any]) -> None:
    del state["containers"][container["Id"]]
    event(state, "destroy", container)


def find(state: dict[str, Any], ref: str) -> dict[str, Any] | None:
    """A container by id, unique id prefix or name, as the engine resolves them."""
    for container in state["containers"].values():
        if ref in (container["Id"], container["Name"], container["Name"].lstrip("/")):
            return container
    matches = [c for c in state["containers"].values() if c["Id"].startswith(ref)]
    return matches[0] if len(matches) == 1 else None


def render(template: str, data: dict[str, Any]) -> str:
    """The Go templates the scripts pass to --format: fields, and {{if}}…{{else}}…{{end}}."""

    def field(path: str) -> Any:
        value: Any = data
        for key in path.strip(".").split("."):
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def branch(match: re.Match[str]) -> str:
        return match.group(2) if field(match.group(1)) else match.group(3)

    def show(match: re.Match[str]) -> str:
        value = field(match.group(1))
        return "<nil>" if value is None else str(value)

    text = re.sub(r"\{\{if (\.[\w.]+)\}\}(.*?)\{\{else\}\}(.*?)\{\{end\}\}", branch, template)
    text = re.sub(r"\{\{(\.[\w.]+)\}\}", show, text)
    if "{{" in text:
        raise ValueError(f"fake docker: unsupported template {template!r}")
    return text


def option(args: list[str], *names: str) -> str | None:
    """The value of `--name value` or `--name=value`."""
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def positional(args: list[str], with_values: set[str]) -> list[str]:
    """Arguments that are neither flags nor the values of `with_values` flags."""
    found, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in with_values:
            skip = True
        elif not arg.startswith("-"):
            found.append(arg)
    return found


def run(argv: list[str], state: dict[str, Any]) -> int:
    images: dict[str, str] = state["images"]
    if argv[:2] == ["image", "inspect"]:
        ref = argv[-1]
        if ref not in images:
            print(f"Error: No such image: {ref}", file=sys.stderr)
            return 1
        print(images[ref])
        return 0
    if argv[0] == "tag":
        source, target = argv[1], argv[2]
        if source not in images:
            return 1
        images[target] = images[source]
        return 0
    if argv[0] in {"inspect", "stop", "rm", "logs"}:
        return engine(argv, state)
    if argv[0] != "compose":
        print(f"fake docker: unexpected {argv}", file=sys.stderr)
        return 2
    return compose(argv[1:], state)


def engine(argv: list[str], state: dict[str, Any]) -> int:
    command, args = argv[0], argv[1:]
    flags = {"--format", "-f", "--time", "--timeout", "-t", "--tail", "-n", "--signal", "-s"}
    refs = positional(args, flags)
    status = 0
    for ref in refs:
        container = find(state, ref)
        if container is None:
            print(f"Error response from daemon: No such container: {ref}", file=sys.stderr)
            status = 1
            continue
        if command == "inspect":
            look(state, container)
            shown = {k: v for k, v in container.items() if k != "Fake"}
            template = option(args, "--format", "-f")
            print(render(template, shown) if template else json.dumps([shown], indent=4))
        elif command == "stop":
            timeout = option(args, "--timeout", "--time", "-t")
            stop(state, container, int(timeout) if timeout is not None else None)
            print(ref)
        elif command == "rm":
            running = container["State"]["Status"] == "running"
            if running and not {"-f", "--force"} & set(args):
                print(
                    f'Error response from daemon: cannot remove container "{container["Name"]}":'
                    " container is running: stop the container before removing or force remove",
                    file=sys.stderr,
                )
                status = 1
                continue
            if running:
                event(state, "kill", container, signal=9, timeout=0)
                container["State"]["Status"] = "exited"
                event(state, "die", container)
            remove(state, container)
            print(ref)
        else:
            print(f"(logs of {container['Name'].lstrip('/')})")
    return status


# --- Compose ---------------------------------------------------------------------------------


def compose(args: list[str], state: dict[str, Any]) -> int:
    images: dict[str, str] = state["images"]
    command = args[0]
    named = positional(args[1:], {"--scale", "--status", "--format", "--tail", "-t", "--timeout"})
    if command == "version":
        print("Docker Compose version v2.99.0-fake")
    elif command in {"build", "pull"}:
        state["release"] += 1
        for service in APP_SERVICES:
            if service in named:
                images[image_of(service)] = f"sha-new-{service}-{state['release']}"
    elif command == "up":
        up(args[1:], named, state)
    elif command == "run":
        if os.environ.get("FAKE_DOCKER_FAIL") == "migrate":
            print("alembic: migration failed", file=sys.stderr)
            return 1
        state["migrated_with"] = images.get(image_of("backend"))
    elif command == "ps":
        ps(args[1:], named, state)
    elif command == "exec":
        # scripts/backup.sh through the postgres container.
        if "pg_dump" in " ".join(args):
            sys.stdout.write("PGDMP-fake-dump\n")
    elif command == "logs":
        print("(logs)")
    else:
        print(f"fake docker: unexpected compose {args}", file=sys.stderr)
        return 2
    return 0


def up(args: list[str], named: list[str], state: dict[str, Any]) -> None:
    """Converge each named service to its scale, as `docker compose up -d` does."""
    scales = dict(
        (arg.split("=", 1)[0], int(arg.split("=", 1)[1]))
        for i, arg in enumerate(args)
        if i > 0 and args[i - 1] == "--scale"
    )
    no_recreate, force = "--no-recreate" in args, "--force-recreate" in args
    for service in named:
        want = scales.get(service, 1)
        current_image = state["images"].get(state["project"][service]["image"])
        mine = containers_of(state, service)
        # Scaling down removes the highest numbers first, each stopped like `docker stop`.
        for container in sorted(mine, key=number_of)[want:]:
            stop(state, container, None)
            remove(state, container)
        for container in containers_of(state, service):
            diverged = current_image is not None and container["Image"] != current_image
            if force or (diverged and not no_recreate):
                number = number_of(container)
                stop(state, container, None)
                remove(state, container)
                start(state, create(state, service, number))
            elif container["State"]["Status"] != "running":
                start(state, container)
        for _ in range(want - len(containers_of(state, service))):
            start(state, create(state, service))


def ps(args: list[str], named: list[str], state: dict[str, Any]) -> None:
    statuses = {args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--status"}
    every = bool({"-a", "--all"} & set(args))
    shown = []
    for container in sorted(state["containers"].values(), key=lambda c: c["Name"]):
        service = container["Config"]["Labels"][SERVICE_LABEL]
        status = container["State"]["Status"]
        if named and service not in named:
            continue
        wanted = status in statuses if statuses else every or status == "running"
        if not wanted:
            continue
        shown.append(container)
    template = option(args, "--format")
    for container in shown:
        if {"-q", "--quiet"} & set(args):
            print(container["Id"])
        else:
            health = (container["State"]["Health"] or {}).get("Status")
            row = {
                "ID": container["Id"][:12],
                "Name": container["Name"].lstrip("/"),
                "Service": container["Config"]["Labels"][SERVICE_LABEL],
                "State": container["State"]["Status"],
                "Health": health or "",
                "Status": ("Up" if container["State"]["Status"] == "running" else "Exited (0)")
                + (f" ({health})" if health else ""),
            }
            print(render(template, row) if template else f"{row['Name']} {row['Status']}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

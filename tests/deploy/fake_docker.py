"""A stand-in for the `docker` CLI, for testing scripts/deploy.sh and backup.sh without an engine.

It keeps images (tag -> id) and containers (service -> image id) in a JSON file
($FAKE_DOCKER_STATE), appends every command line to $FAKE_DOCKER_LOG, and answers the commands
the scripts use the way Docker would. Faults: FAKE_DOCKER_FAIL=migrate makes `compose run
migrate` fail; FAKE_DOCKER_UNHEALTHY=<service> makes that service's container unhealthy
whenever it runs a newly built or pulled image.
"""

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

APP_SERVICES = ("backend", "bot")


def image_of(service: str) -> str:
    return f"pomogator-{service}:latest"


def main(argv: list[str]) -> int:
    state_path = Path(os.environ["FAKE_DOCKER_STATE"])
    state: dict[str, Any] = json.loads(state_path.read_text())
    with Path(os.environ["FAKE_DOCKER_LOG"]).open("a") as log:
        log.write(shlex.join(argv) + "\n")
    try:
        return run(argv, state)
    finally:
        state_path.write_text(json.dumps(state))


def run(argv: list[str], state: dict[str, Any]) -> int:
    images: dict[str, str] = state["images"]
    containers: dict[str, str] = state["containers"]
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
    if argv[0] == "inspect":
        service = argv[-1].removeprefix("cid-")
        running = containers.get(service, "")
        unhealthy = os.environ.get("FAKE_DOCKER_UNHEALTHY") == service
        print("unhealthy" if unhealthy and "-new-" in running else "healthy")
        return 0
    if argv[0] != "compose":
        print(f"fake docker: unexpected {argv}", file=sys.stderr)
        return 2
    return compose(argv[1:], state)


def compose(args: list[str], state: dict[str, Any]) -> int:
    images: dict[str, str] = state["images"]
    containers: dict[str, str] = state["containers"]
    command = args[0]
    named = [a for a in args[1:] if not a.startswith("-")]
    if command == "version":
        print("Docker Compose version v2.99.0-fake")
    elif command in {"build", "pull"}:
        state["release"] += 1
        for service in APP_SERVICES:
            if service in named:
                images[image_of(service)] = f"sha-new-{service}-{state['release']}"
    elif command == "up":
        for service in named:
            containers[service] = images.get(image_of(service), "running")
    elif command == "run":
        if os.environ.get("FAKE_DOCKER_FAIL") == "migrate":
            print("alembic: migration failed", file=sys.stderr)
            return 1
        state["migrated_with"] = images.get(image_of("backend"))
    elif command == "ps":
        if "--format" in args:
            print("\n".join(f"{name} Up" for name in containers))
        else:
            wanted = [n for n in named if n not in {"running"}]
            for service in wanted:
                if service in containers:
                    print(f"cid-{service}")
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The deployment files agree with the code: every variable, path, port, module and command."""

import copy
import json
import re
import shlex
import stat
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import SecretStr

from backend.__main__ import KEEP_ALIVE_S
from backend.config import PLACEHOLDER_SECRETS, Settings
from backend.main import create_app
from bot.config import BotSettings
from bot.services.backend import KEEPALIVE_EXPIRY_S
from tests.deploy.conftest import ROOT, SERVER_OPTIONS

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
README = (ROOT / "README.md").read_text()
TEMPLATE = (ROOT / "nginx" / "templates" / "default.conf.template").read_text()
DOCKERFILES = {"backend": ROOT / "backend" / "Dockerfile", "bot": ROOT / "bot" / "Dockerfile"}

SETTINGS = {name.upper() for name in Settings.model_fields}
BOT_SETTINGS = {name.upper() for name in BotSettings.model_fields}
# Variables that are not a service setting, and the file that reads each family.
OTHER_VARIABLES = {
    "POSTGRES_": "docker-compose.yml",
    "IMAGE_": "scripts/deploy.sh",
    "NGINX_": "docker-compose.yml",
    "DEPLOY_": "scripts/deploy.sh",
    "BACKUP_": "scripts/backup.sh",
    "RESTORE_": "scripts/backup.sh",
    "PG_BIN": "scripts/backup.sh",
    "GRAFANA_": "docker-compose.yml",
    "BACKEND_REPLICAS": "scripts/deploy.sh",
    "BOT_REPLICAS": "scripts/deploy.sh",
}


def env_example() -> dict[str, str]:
    """Variables of .env.example (also the commented-out optional ones) and their values."""
    found = re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE, re.M)
    return dict(found)


def compose_variables() -> set[str]:
    """Names interpolated in docker-compose.yml: ${NAME}, ${NAME:-x}, ${NAME:?x} ($$ escapes)."""
    raw = (ROOT / "docker-compose.yml").read_text().replace("$$", "")
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", raw))


def compose_default(name: str) -> str:
    match = re.search(r"\$\{" + name + r":-([^}]*)\}", (ROOT / "docker-compose.yml").read_text())
    assert match, f"{name} has no default in docker-compose.yml"
    return match.group(1)


def known(name: str) -> bool:
    return name in SETTINGS | BOT_SETTINGS or any(name.startswith(p) for p in OTHER_VARIABLES)


def dockerfile(name: str) -> list[tuple[str, str]]:
    """(instruction, arguments) of a Dockerfile, continuation lines joined."""
    text = DOCKERFILES[name].read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def last_stage(name: str) -> list[tuple[str, str]]:
    instructions = dockerfile(name)
    start = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[start:]


# --- Compose ---------------------------------------------------------------------------------


def compose_schema() -> dict[str, Any]:
    """The compose-spec JSON schema, as shipped (vendored) by check-jsonschema."""
    path = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    return json.loads(path.read_text())


def test_the_compose_file_follows_the_compose_specification():
    schema = compose_schema()
    jsonschema.validators.validator_for(schema)(schema).validate(COMPOSE)


def test_the_schema_check_catches_a_misspelt_key():
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["bot"]["depend_on"] = broken["services"]["bot"].pop("depends_on")
    schema = compose_schema()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validators.validator_for(schema)(schema).validate(broken)


def test_services_start_in_order_of_health():
    def needs(service: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in SERVICES[service]["depends_on"].items()}

    assert needs("migrate") == {"postgres": "service_healthy"}
    assert needs("backend") == {
        "migrate": "service_completed_successfully",
        "postgres": "service_healthy",
    }
    assert needs("bot")["backend"] == "service_healthy"
    assert needs("nginx") == {"bot": "service_healthy", "backend": "service_healthy"}
    for service in SERVICES.values():
        for dependency in service.get("depends_on", {}):
            assert dependency in SERVICES


def test_every_dependency_that_must_be_healthy_has_a_healthcheck():
    with_image_check = {"backend", "bot"}  # their Dockerfiles' HEALTHCHECK
    for name in with_image_check:
        assert any(op == "HEALTHCHECK" for op, _ in last_stage(name))
    for service in SERVICES.values():
        for dependency, rule in service.get("depends_on", {}).items():
            if rule["condition"] == "service_healthy":
                assert dependency in with_image_check or "healthcheck" in SERVICES[dependency]


def test_only_nginx_publishes_ports_and_only_ports_telegram_accepts():
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    assert published == {"nginx", "grafana"}
    # Grafana (the `monitoring` profile) only on the host's loopback: operators tunnel to it.
    assert all(str(p).startswith("127.0.0.1:") for p in SERVICES["grafana"]["ports"])
    ports = {int(str(p).split(":")[0]) for p in SERVICES["nginx"]["ports"]}
    assert 80 in ports and ports & {443, 8443}
    assert ports <= {80, 88, 443, 8443}
    for port in ("NGINX_HTTP_PORT", "NGINX_HTTPS_PORT", "NGINX_ALT_HTTPS_PORT"):
        container_port = int(SERVICES["nginx"]["environment"][port])
        assert f"{container_port}:{container_port}" in SERVICES["nginx"]["ports"]


def test_the_database_and_redis_have_no_way_out():
    assert COMPOSE["networks"]["internal"]["internal"] is True
    assert SERVICES["postgres"]["networks"] == ["internal"]
    assert SERVICES["redis"]["networks"] == ["internal"]
    assert SERVICES["migrate"]["networks"] == ["internal"]
    for service in SERVICES.values():
        assert set(service.get("networks", [])) <= set(COMPOSE["networks"])


def test_postgres_keeps_its_data_in_a_named_volume():
    [volume] = SERVICES["postgres"]["volumes"]
    name, target = volume.split(":")
    assert name in COMPOSE["volumes"] and target == "/var/lib/postgresql/data"


def test_every_long_running_service_restarts_and_is_bounded():
    for name, service in SERVICES.items():
        expected = "no" if name == "migrate" else "unless-stopped"
        assert service["restart"] == expected, name
        assert service["deploy"]["resources"]["limits"]["memory"], name
        assert "logging" in service, name


def test_the_bot_runs_as_a_webhook_with_its_certificate_mounted():
    bot = SERVICES["bot"]
    assert bot["environment"]["BOT_MODE"] == "webhook"
    [mount] = bot["volumes"]
    assert mount["source"] == "./nginx/ssl/fullchain.pem"
    assert (ROOT / "nginx" / "ssl").is_dir()
    # The path operators are told to put in WEBHOOK_CERT.
    assert f"WEBHOOK_CERT={mount['target']}" in ENV_EXAMPLE
    assert f"WEBHOOK_CERT={mount['target']}" in README


def test_services_get_their_settings_from_the_env_file():
    for name in ("migrate", "backend", "bot"):
        assert SERVICES[name]["env_file"] == ".env"
    assert "env_file" not in SERVICES["nginx"]  # nginx gets only what its templates need


def test_every_compose_variable_is_a_setting_or_a_deployment_variable():
    unknown = {name for name in compose_variables() if not known(name)}
    assert not unknown
    # ...and each is listed in .env.example, so operators know it exists.
    assert compose_variables() <= set(env_example())


def test_the_migrate_service_runs_the_init_script_shipped_in_the_backend_image():
    command = SERVICES["migrate"]["command"]
    assert command == ["python", "scripts/init_db.py"]
    copied = [args.split() for op, args in last_stage("backend") if op == "COPY"]
    assert ["scripts/init_db.py", "scripts/init_db.py"] in copied
    assert (ROOT / command[1]).is_file()


def test_compose_builds_from_the_repository_root_with_existing_dockerfiles():
    for name in ("migrate", "backend", "bot"):
        build = SERVICES[name]["build"]
        assert build["context"] == "."
        assert (ROOT / build["dockerfile"]).is_file()
    assert SERVICES["migrate"]["image"] == SERVICES["backend"]["image"]


# --- .env.example ----------------------------------------------------------------------------


def test_env_example_lists_every_setting_of_both_services():
    missing = (SETTINGS | BOT_SETTINGS) - set(env_example())
    assert not missing


def test_env_example_has_nothing_unknown():
    unknown = {name for name in env_example() if not known(name)}
    assert not unknown


@pytest.mark.parametrize("family", sorted(OTHER_VARIABLES))
def test_every_deployment_variable_is_read_where_documented(family):
    reader = (ROOT / OTHER_VARIABLES[family]).read_text()
    names = [name for name in env_example() if name.startswith(family)]
    assert names
    for name in names:
        assert name in reader, f"{name} is in .env.example but {OTHER_VARIABLES[family]} ignores it"


def test_every_variable_has_a_comment_above_it():
    # A comment may cover a group right below it (BACKEND_HOST and BACKEND_PORT).
    lines = ENV_EXAMPLE.splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]*=", line):
            above = number - 1
            while above >= 0 and re.match(r"^[A-Z][A-Z0-9_]*=", lines[above]):
                above -= 1
            assert above >= 0 and lines[above].startswith("#"), f"{line!r} has no comment"


def test_env_example_holds_no_secret():
    values = env_example()
    secret_fields = {
        name.upper()
        for model in (Settings, BotSettings)
        for name, field in model.model_fields.items()
        if field.annotation is SecretStr
    }
    assert secret_fields
    for name in secret_fields:
        assert values[name].strip().lower() in PLACEHOLDER_SECRETS, name
    assert values["POSTGRES_PASSWORD"] in values["DATABASE_URL"]  # the same placeholder twice


def test_a_filled_in_env_example_starts_both_services(tmp_path):
    # What an operator does: copy it and set the secrets; everything else stays as shipped.
    filled = ENV_EXAMPLE
    for name, value in {
        "INTERNAL_API_TOKEN": "i" * 64,
        "WEBHOOK_SECRET": "w" * 64,
        "BOT_TOKEN": "123456:ABCDEF",
    }.items():
        filled = re.sub(rf"^{name}=.*$", f"{name}={value}", filled, flags=re.M)
    env = tmp_path / ".env"
    env.write_text(filled)
    backend = Settings(_env_file=env)  # type: ignore[call-arg]
    bot = BotSettings(_env_file=env)  # type: ignore[call-arg]
    assert backend.is_production and backend.model_catalog_path is None
    assert bot.webhook_cert is None and bot.webhook_base_url.startswith("https://")


# --- Dockerfiles -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_the_image_runs_the_service_module(name):
    [cmd] = [json.loads(args) for op, args in last_stage(name) if op == "CMD"]
    assert cmd == ["python", "-m", name]
    assert (ROOT / name / "__main__.py").is_file()


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_the_image_installs_the_services_pinned_lock(name):
    copies = [args.split() for op, args in dockerfile(name) if op == "COPY"]
    assert [f"{name}/requirements.txt", "/tmp/requirements.txt"] in copies  # noqa: S108
    lock = (ROOT / name / "requirements.txt").read_text().splitlines()
    pins = [line for line in lock if line and not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[\w.]+", line) for line in pins)
    for words in copies:
        if not words[0].startswith("--from="):
            assert all((ROOT / source).exists() for source in words[:-1]), words


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_the_image_is_pinned_slim_and_unprivileged(name):
    bases = [args.split()[0] for op, args in dockerfile(name) if op == "FROM"]
    assert len(bases) == 2  # build stage, then a runtime stage without pip's leftovers
    for base in bases:
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base
    [user] = [args for op, args in last_stage(name) if op == "USER"]
    assert user.split(":")[0] not in {"0", "root"}


@pytest.mark.parametrize(
    ("name", "settings", "port"),
    [("backend", Settings, "BACKEND_PORT"), ("bot", BotSettings, "BOT_PORT")],
)
def test_the_healthcheck_asks_health_on_the_services_port(name, settings, port):
    [check] = [args for op, args in last_stage(name) if op == "HEALTHCHECK"]
    assert "/health" in check and port in check
    default = settings.model_fields[port.lower()].default
    assert f"'{port}', '{default}'" in check
    [exposed] = [args for op, args in last_stage(name) if op == "EXPOSE"]
    assert int(exposed) == default
    assert f"{port}={default}" in ENV_EXAMPLE


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_no_secret_is_baked_into_the_image(name):
    secrets = {"TOKEN", "SECRET", "PASSWORD", "KEY"}
    for op, args in dockerfile(name):
        if op in {"ENV", "ARG"}:
            assert not any(word in args.upper() for word in secrets), args
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for path in (".env", "nginx", ".git", "backups"):
        assert path in ignored


# --- nginx -----------------------------------------------------------------------------------


def nginx_environment() -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES["nginx"]["environment"].items()}


def test_nginx_routes_exactly_the_webhook_path_and_the_payment_webhook():
    https_server = TEMPLATE[TEMPLATE.index("ssl default_server") :]
    locations = re.findall(r"^\s*location\s+(=?)\s*(\S+)\s*\{", https_server, re.M)
    assert locations == [
        ("=", "${WEBHOOK_PATH}"),
        ("=", "/api/v1/webhooks/payments"),
        ("", "/"),
    ]
    catch_all = TEMPLATE[TEMPLATE.rindex("location / {") :]
    assert "return 404;" in catch_all.split("}")[0]


def test_nginx_webhook_path_is_the_bots_default():
    default = BotSettings.model_fields["webhook_path"].default
    assert compose_default("WEBHOOK_PATH") == default
    assert f"WEBHOOK_PATH={default}" in ENV_EXAMPLE


def test_the_payment_route_exists_in_the_backend():
    settings = Settings(_env_file=None, app_env="development", internal_api_token="x")  # type: ignore[call-arg]
    paths = create_app(settings).openapi()["paths"]
    assert "post" in paths["/api/v1/webhooks/payments"]


def test_nginx_upstreams_are_every_replica_on_the_services_ports():
    env = nginx_environment()
    bot_port = BotSettings.model_fields["bot_port"].default
    backend_port = Settings.model_fields["backend_port"].default
    # `resolve`: Docker's DNS name stands for every replica, looked up again as they change;
    # the passive health check is the one the nginx tests run with.
    bot = "bot:${BOT_PORT:-" + str(bot_port) + "}"
    backend = "backend:${BACKEND_PORT:-" + str(backend_port) + "}"
    assert env["NGINX_BOT_SERVERS"] == f"server {bot} resolve {SERVER_OPTIONS};"
    assert env["NGINX_BACKEND_SERVERS"] == f"server {backend} resolve {SERVER_OPTIONS};"
    assert f"BACKEND_URL=http://backend:{backend_port}" in ENV_EXAMPLE
    assert BotSettings.model_fields["backend_url"].default == f"http://backend:{backend_port}"


def test_every_template_variable_is_given_to_nginx_and_passes_the_filter():
    used = set(re.findall(r"\$\{([A-Z_]+)\}", TEMPLATE))
    env = nginx_environment()
    assert used <= set(env)
    pattern = env["NGINX_ENVSUBST_FILTER"].replace("$$", "$")
    assert all(re.search(pattern, name) for name in used)
    # nginx's own variables must not be caught by the filter (envsubst would blank them).
    own = set(re.findall(r"\$([a-z_][a-z0-9_]*)", TEMPLATE))
    assert own and not any(re.search(pattern, name) for name in own)


def test_nginx_files_are_mounted_where_the_configuration_looks_for_them():
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in SERVICES["nginx"]["volumes"])
    assert mounts == {
        "./nginx/nginx.conf": "/etc/nginx/nginx.conf",
        "./nginx/templates": "/etc/nginx/templates",
        "./nginx/ssl": "/etc/nginx/ssl",
    }
    # Relative to /etc/nginx, the configuration directory.
    assert "ssl_certificate ssl/fullchain.pem;" in TEMPLATE
    assert "ssl_certificate_key ssl/privkey.pem;" in TEMPLATE
    assert "include conf.d/*.conf;" in (ROOT / "nginx" / "nginx.conf").read_text()


# --- README ----------------------------------------------------------------------------------


def production_section() -> str:
    start = README.index("## Running in production")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def shell_commands() -> list[list[str]]:
    """Commands of the section: its ```sh blocks (comments dropped) and inline `commands`."""
    section = production_section()
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    lines += re.findall(r"(?<!`)`((?:docker compose|scripts/)[^`]+)`", section)
    commands = []
    for line in lines:
        line = line.split("  #")[0].strip()
        if line and not line.startswith("#"):
            commands.append(shlex.split(line, comments=True))
    return commands


def test_readme_scripts_exist_and_are_executable():
    named = set(re.findall(r"scripts/[a-z_]+\.(?:sh|py)", README))
    assert {"scripts/deploy.sh", "scripts/backup.sh", "scripts/self_signed_cert.sh"} <= named
    for script in named:
        path = ROOT / script
        assert path.is_file(), script
        if script.endswith(".sh"):
            assert path.stat().st_mode & stat.S_IXUSR, f"{script} is not executable"


def test_readme_script_subcommands_exist():
    for words in shell_commands():
        scripts = [w for w in words if w.startswith("scripts/")]
        for script in scripts:
            after = words[words.index(script) + 1 :]
            if after and re.fullmatch(r"[a-z]+", after[0]):
                assert re.search(
                    rf"^\s*(?:\S+ \| )*{after[0]}\)", (ROOT / script).read_text(), re.M
                ), f"{script} has no subcommand {after[0]}"


# Options of `docker compose` and its subcommands that take a value (`--scale bot=3`).
VALUED_OPTIONS = {"--scale", "--profile", "-f", "--file", "--tail", "--time", "-t"}


def compose_arguments(words: list[str]) -> list[str]:
    """The subcommand and service names of a `docker compose` command line, options dropped."""
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = word in VALUED_OPTIONS
        else:
            kept.append(word)
    return kept


def test_readme_compose_commands_name_existing_services():
    subcommands = {
        "ps",
        "logs",
        "exec",
        "stop",
        "start",
        "up",
        "restart",
        "down",
        "run",
        "pull",
        "build",
        "version",
    }
    for words in shell_commands():
        if words[:2] != ["docker", "compose"]:
            continue
        rest = compose_arguments(words[2:])
        assert rest and rest[0] in subcommands, words
        if rest[0] == "exec":
            assert rest[1] in SERVICES, words
        elif rest[0] in {"logs", "stop", "start", "up", "restart"}:
            assert all(name in SERVICES for name in rest[1:] if not name[0].isdigit()), words


def test_readme_make_targets_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z]+):", makefile, re.M))
    for target in re.findall(r"`make ([a-z]+)", README):
        assert target in targets, target


def test_readme_variables_exist():
    mentioned = set(re.findall(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+)", production_section()))
    assert mentioned
    listed = set(env_example())
    unknown = {name for name in mentioned if name not in listed}
    assert not unknown


def test_readme_health_command_uses_the_backend_port():
    port = Settings.model_fields["backend_port"].default
    assert f"http://127.0.0.1:{port}/health" in production_section()


def test_scripts_are_executable():
    for script in Path(ROOT / "scripts").glob("*.sh"):
        assert script.stat().st_mode & stat.S_IXUSR, script


def test_the_bot_drops_idle_backend_connections_before_the_backend_does():
    # Otherwise the backend may close a connection just as the bot sends a request on it.
    assert KEEPALIVE_EXPIRY_S < KEEP_ALIVE_S

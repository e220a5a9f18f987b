"""The Kubernetes manifests (deploy/k8s) are valid and agree with the code, Compose and nginx.

The overlay is rendered here the way `kubectl kustomize` renders it (resources, namespace,
images, env-file generators; nothing else is allowed in a kustomization), except that generated
names keep no hash suffix. Every rendered document is validated offline against the schemas
kubernetes-validate bundles, in strict mode (unknown fields are errors).
"""

import ast
import base64
import copy
import inspect
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr
from pydantic_settings import BaseSettings
from starlette.routing import Match

import backend.__main__ as backend_main
from backend.config import PLACEHOLDER_SECRETS, DatabaseSettings, Settings
from backend.main import create_app
from bot.config import BotSettings
from bot.main import (
    create_backend,
    create_bot,
    create_dispatcher,
    create_limits,
    create_webhook_app,
)
from tests.deploy.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
OVERLAY = K8S / "overlays" / "production"
K8S_README = (K8S / "README.md").read_text()
KUBERNETES_VERSION = "1.37"
# The operator's secrets.env is git-ignored: the render always uses the committed example.
EXAMPLES = {"secrets.env": "secrets.env.example"}
KUSTOMIZATION_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "images",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
}
CLUSTER_SCOPED = {"Namespace"}

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
TEMPLATE = (ROOT / "nginx" / "templates" / "default.conf.template").read_text()
WORKLOADS: dict[str, type[BaseSettings]] = {
    "backend": Settings,
    "bot": BotSettings,
    "migrate": DatabaseSettings,
}
SECRET_SETTINGS = {"DATABASE_URL", "REDIS_URL"}  # plain strings that carry a password
# Telegram's limit for the whole bot (the bot's default), and PostgreSQL's default
# max_connections less the connections reserved for superusers.
TELEGRAM_MESSAGES_PER_SECOND = BotSettings.model_fields["telegram_global_rate"].default
POSTGRES_CONNECTIONS = 100 - 3


# --- rendering -------------------------------------------------------------------------------


@dataclass
class Render:
    documents: list[dict[str, Any]] = field(default_factory=list)
    files: set[Path] = field(default_factory=set)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.documents if doc["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        [doc] = [doc for doc in self.all(kind) if doc["metadata"]["name"] == name]
        return doc


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines as kustomize reads them: no quoting, `#` lines and blank lines skipped."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assert "=" in line, f"{path}: {line!r} has no value (kustomize would read the shell's)"
        name, value = line.split("=", 1)
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name), f"{path}: {name!r}"
        assert name not in values, f"{path}: {name} twice"
        values[name] = value
    return values


def split_image(image: str) -> tuple[str, str | None]:
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return image, None
    return name, tag


def pod_specs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] in {"Deployment", "Job"}:
        return [doc["spec"]["template"]["spec"]]
    return []


def build(directory: Path, render: Render | None = None) -> Render:
    """The documents `kubectl kustomize directory` prints (generated names without the hash)."""
    render = render or Render()
    kustomization_file = directory / "kustomization.yaml"
    kustomization = yaml.safe_load(kustomization_file.read_text())
    render.files.add(kustomization_file.resolve())
    unknown = set(kustomization) - KUSTOMIZATION_FIELDS
    assert not unknown, f"{kustomization_file}: this render does not apply {unknown}"
    documents: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            documents += build(path, Render(files=render.files)).documents
        else:
            render.files.add(path.resolve())
            documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    options = kustomization.get("generatorOptions", {})
    assert set(options) <= {"labels", "disableNameSuffixHash"}, options
    for key, kind in (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")):
        for generator in kustomization.get(key, []):
            assert set(generator) <= {"name", "envs"}, generator
            data: dict[str, str] = {}
            for env in generator["envs"]:
                path = directory / EXAMPLES.get(env, env)
                render.files.add(path.resolve())
                data.update(read_env_file(path))
            metadata = {"name": generator["name"], "labels": dict(options.get("labels", {}))}
            doc: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": metadata}
            if kind == "Secret":
                doc["type"] = "Opaque"
                data = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
            doc["data"] = data
            documents.append(doc)
    namespace = kustomization.get("namespace")
    for doc in documents:
        if namespace and doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = namespace
        for image in kustomization.get("images", []):
            assert set(image) <= {"name", "newName", "newTag"}, image
            for spec in pod_specs(doc):
                for container in spec.get("initContainers", []) + spec["containers"]:
                    name, tag = split_image(container["image"])
                    if name == image["name"]:
                        name = image.get("newName", name)
                        tag = image.get("newTag", tag)
                        container["image"] = f"{name}:{tag}" if tag else name
    render.documents += documents
    return render


RENDER = build(OVERLAY)


def names(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def container(workload: str) -> dict[str, Any]:
    kind = "Job" if workload == "migrate" else "Deployment"
    [main] = RENDER.one(kind, workload)["spec"]["template"]["spec"]["containers"]
    return main


def secret_data(name: str) -> dict[str, str]:
    return {
        key: base64.b64decode(value).decode()
        for key, value in RENDER.one("Secret", name).get("data", {}).items()
    }


def pod_environment(workload: str) -> dict[str, str]:
    """The environment the workload's container starts with, resolved from the render."""
    main = container(workload)
    env: dict[str, str] = {}
    for source in main.get("envFrom", []):
        if "configMapRef" in source:
            env.update(RENDER.one("ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            env.update(secret_data(source["secretRef"]["name"]))
    for variable in main.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            [(kind, ref)] = variable["valueFrom"].items()
            assert kind == "secretKeyRef", variable
            env[variable["name"]] = secret_data(ref["name"])[ref["key"]]
    return env


def secret_refs(workload: str) -> set[str]:
    """Variables the container takes from a Secret."""
    main = container(workload)
    return {v["name"] for v in main.get("env", []) if "secretKeyRef" in v.get("valueFrom", {})}


def setting_names(model: type[BaseSettings]) -> set[str]:
    return {name.upper() for name in model.model_fields}


def secret_fields(model: type[BaseSettings]) -> set[str]:
    secret = {n.upper() for n, f in model.model_fields.items() if f.annotation is SecretStr}
    return secret | (setting_names(model) & SECRET_SETTINGS)


def env_example() -> set[str]:
    """Variables of .env.example, also the commented-out optional ones."""
    return set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE, re.M))


def readme_section(title: str) -> str:
    start = K8S_README.index(f"\n## {title}\n")
    end = K8S_README.find("\n## ", start + 1)
    return K8S_README[start : end if end > 0 else None]


def readme_names(title: str) -> set[str]:
    """Backticked variable names in the README section's table (the first column)."""
    rows = [line.split("|")[1] for line in readme_section(title).splitlines() if "|" in line]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row)}


DEFAULTED = readme_names("Settings left at their defaults")
EXCLUDED = readme_names("Variables the pods do not need")


def filled(env: dict[str, str]) -> dict[str, str]:
    """The pod's environment with the placeholders replaced, as an operator fills them in."""
    values = {
        "BOT_TOKEN": "123456:" + secrets.token_hex(16),
        "INTERNAL_API_TOKEN": secrets.token_hex(32),
        "WEBHOOK_SECRET": secrets.token_hex(32),
    }
    return {**env, **{k: v for k, v in values.items() if k in env}}


def load_settings(
    workload: str, model: type[BaseSettings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Any:
    """The settings the workload's process reads from exactly its pod's environment."""
    every = set().union(*(setting_names(m) for m in WORKLOADS.values()))
    for name in list(os.environ):
        if name.upper() in every:
            monkeypatch.delenv(name)
    for name, value in filled(pod_environment(workload)).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no developer .env in reach
    return model(_env_file=None)  # type: ignore[call-arg]


def memory(value: str, units: dict[str, int]) -> float:
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", value)
    assert match and match.group(2) in units, value
    return float(match.group(1)) * units[match.group(2)]


def k8s_memory(value: str) -> float:
    """A Kubernetes memory quantity (`512Mi`) in bytes."""
    return memory(value, {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30})


def compose_memory(value: str) -> float:
    """A Compose memory limit (`512m`: Docker's units are binary) in bytes."""
    return memory(value, {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30})


def cpu(value: str | int | float) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def seconds(duration: str) -> float:
    """A Compose duration such as `40s` or `1m30s`."""
    parts = re.findall(r"([0-9.]+)(h|ms|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def container_port(workload: str, port: str | int) -> int:
    """A named or numbered port of the workload's container, as a number."""
    ports = {p["name"]: p["containerPort"] for p in container(workload)["ports"]}
    return ports[port] if isinstance(port, str) else port


def service_for(workload: str) -> dict[str, Any]:
    labels = RENDER.one("Deployment", workload)["spec"]["template"]["metadata"]["labels"]
    matching = [
        service
        for service in RENDER.all("Service")
        if service["spec"].get("selector") and service["spec"]["selector"].items() <= labels.items()
    ]
    [service] = matching
    return service


def dockerfile_instructions(name: str) -> list[tuple[str, str]]:
    """(instruction, arguments) of the image's last stage, continuation lines joined."""
    text = (ROOT / name / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    instructions = [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if not line.startswith("#")
    ]
    start = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[start:]


def uvicorn_graceful_shutdown_s() -> float:
    """`timeout_graceful_shutdown` that `python -m backend` gives uvicorn."""
    tree = ast.parse(Path(backend_main.__file__).read_text())
    [value] = [
        keyword.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg == "timeout_graceful_shutdown"
    ]
    if isinstance(value, ast.Name):
        return float(getattr(backend_main, value.id))
    return float(ast.literal_eval(value))


def prestop_pause_s(workload: str) -> float:
    hook = container(workload).get("lifecycle", {}).get("preStop")
    if hook is None:
        return 0.0
    command = hook["exec"]["command"]
    assert command[0] == "sleep", command
    return float(command[1])


# --- validity --------------------------------------------------------------------------------


def test_the_schemas_of_the_kubernetes_version_are_bundled():
    bundled = kubernetes_validate.utils.all_versions()
    assert any(version.startswith(KUBERNETES_VERSION + ".") for version in bundled), bundled


@pytest.mark.parametrize("document", RENDER.documents, ids=names)
def test_every_document_is_valid_kubernetes(document):
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_strict_validation_refuses_a_misspelt_field():
    broken = copy.deepcopy(RENDER.one("Deployment", "backend"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_manifest_file_is_part_of_the_render():
    written = {
        path.resolve()
        for pattern in ("*.yaml", "*.env", "*.env.example")
        for path in K8S.rglob(pattern)
        if path.name != "kustomization.yaml" and path.name not in EXAMPLES
    }
    assert written
    assert written - {p.resolve() for p in RENDER.files} == set()


def test_every_name_is_unique():
    seen = [(doc["kind"], doc["metadata"]["name"]) for doc in RENDER.documents]
    assert len(seen) == len(set(seen))


def test_the_render_is_what_kustomize_builds(tmp_path):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the render is checked against the schemas only")
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    overlay = tree / OVERLAY.relative_to(K8S)
    for env, example in EXAMPLES.items():
        shutil.copy(overlay / example, overlay / env)
    done = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    built = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    generated = {doc["metadata"]["name"] for doc in RENDER.all("ConfigMap") + RENDER.all("Secret")}
    hashed = {
        doc["metadata"]["name"]: base
        for doc in built
        for base in generated
        if re.fullmatch(re.escape(base) + r"-[a-z0-9]{10}", doc["metadata"]["name"])
    }
    assert len(hashed) == len(generated)

    def normal(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: normal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [normal(v) for v in value]
        return hashed.get(value, value) if isinstance(value, str) else value

    def decoded(doc: dict[str, Any]) -> dict[str, Any]:
        if doc["kind"] == "Secret":
            doc = {**doc, "data": {k: base64.b64decode(v) for k, v in doc["data"].items()}}
        return doc

    ours = sorted((decoded(doc) for doc in RENDER.documents), key=names)
    theirs = sorted((decoded(normal(doc)) for doc in built), key=names)
    assert theirs == ours


# --- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_every_setting_the_service_reads_reaches_its_pods_or_is_defaulted(workload):
    missing = setting_names(WORKLOADS[workload]) - set(pod_environment(workload)) - DEFAULTED
    assert not missing


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_the_pods_environment_makes_valid_production_settings(workload, monkeypatch, tmp_path):
    # A placeholder left, a value the service refuses or a missing variable raises here.
    settings = load_settings(workload, WORKLOADS[workload], monkeypatch, tmp_path)
    if workload == "migrate":
        assert urlsplit(settings.database_url).hostname == "postgres"
    else:
        assert settings.app_env == "production"


def test_the_bot_runs_as_a_webhook_like_in_compose():
    assert pod_environment("bot")["BOT_MODE"] == "webhook"
    assert SERVICES["bot"]["environment"]["BOT_MODE"] == "webhook"


def test_every_variable_given_to_the_pods_is_a_setting_listed_in_env_example():
    read = setting_names(Settings) | setting_names(BotSettings)
    for workload in WORKLOADS:
        given = set(pod_environment(workload))
        assert given <= env_example(), workload
        assert given <= read, workload
    generated = RENDER.all("ConfigMap") + RENDER.all("Secret")
    assert {key for doc in generated for key in doc["data"]} <= env_example() & read


def test_every_env_example_variable_is_wired_defaulted_or_excluded():
    wired = {name for workload in WORKLOADS for name in pod_environment(workload)}
    assert env_example() - wired - DEFAULTED - EXCLUDED == set()
    # ...and the README's lists name real variables, none of them given to a pod.
    assert (DEFAULTED | EXCLUDED) - env_example() == set()
    assert not (DEFAULTED | EXCLUDED) & wired


def test_the_excluded_variables_are_read_by_neither_service():
    read = setting_names(Settings) | setting_names(BotSettings)
    assert EXCLUDED and not EXCLUDED & read


def test_secrets_come_from_the_secret_and_the_configmap_holds_none():
    for workload, model in WORKLOADS.items():
        assert secret_fields(model) & set(pod_environment(workload)) <= secret_refs(workload)
    config = {key for doc in RENDER.all("ConfigMap") for key in doc["data"]}
    everything = secret_fields(Settings) | secret_fields(BotSettings)
    assert config and not config & everything
    assert {key for doc in RENDER.all("Secret") for key in doc["data"]} <= everything


def test_each_pod_gets_only_the_secrets_its_service_reads():
    for workload, model in WORKLOADS.items():
        assert secret_refs(workload) <= secret_fields(model), workload
        assert not [s for s in container(workload).get("envFrom", []) if "secretRef" in s]


def test_the_secret_example_holds_only_placeholders():
    values = read_env_file(OVERLAY / EXAMPLES["secrets.env"])
    for name, value in values.items():
        if name in SECRET_SETTINGS:
            password = urlsplit(value).password or ""
            assert password.lower() in PLACEHOLDER_SECRETS, name
        else:
            assert value.strip().lower() in PLACEHOLDER_SECRETS, name
    assert (OVERLAY / ".gitignore").read_text().split() == list(EXAMPLES)


def test_the_database_and_redis_addresses_are_services_of_the_render():
    secret = read_env_file(OVERLAY / EXAMPLES["secrets.env"])
    for variable, port in (("DATABASE_URL", 5432), ("REDIS_URL", 6379)):
        if variable == "REDIS_URL" and not secret[variable]:
            continue  # no Redis: update claims go through the backend
        address = urlsplit(secret[variable])
        service = RENDER.one("Service", address.hostname)
        assert service["spec"]["type"] == "ExternalName"
        assert service["spec"]["externalName"]
        assert (address.port or port) in {p["port"] for p in service["spec"]["ports"]}


# --- ports, probes, routes -------------------------------------------------------------------


PORTS = {"backend": ("BACKEND_PORT", Settings), "bot": ("BOT_PORT", BotSettings)}


@pytest.mark.parametrize("workload", sorted(PORTS))
def test_the_container_listens_on_the_default_port(workload):
    variable, model = PORTS[workload]
    default = model.model_fields[variable.lower()].default
    assert container_port(workload, "http") == default
    assert pod_environment(workload)[variable] == str(default)
    [exposed] = [args for op, args in dockerfile_instructions(workload) if op == "EXPOSE"]
    assert int(exposed) == default


@pytest.mark.parametrize("workload", sorted(PORTS))
def test_the_service_forwards_its_port_to_the_containers(workload):
    service = service_for(workload)
    assert service["metadata"]["name"] == workload
    assert service["spec"]["type"] == "ClusterIP"
    [port] = service["spec"]["ports"]
    assert (
        container_port(workload, port["targetPort"])
        == port["port"]
        == container_port(workload, "http")
    )


def test_the_bot_reaches_the_backend_service():
    port = service_for("backend")["spec"]["ports"][0]["port"]
    url = f"http://{service_for('backend')['metadata']['name']}:{port}"
    assert pod_environment("bot")["BACKEND_URL"] == url
    assert BotSettings.model_fields["backend_url"].default == url


def probes(workload: str) -> dict[str, dict[str, Any]]:
    main = container(workload)
    kinds = ("startupProbe", "readinessProbe", "livenessProbe")
    found = {kind: main[kind] for kind in kinds if kind in main}
    assert set(found) >= {"readinessProbe", "livenessProbe"}
    return found


def backend_routes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str, str], bool]:
    """Whether the API built from the backend pod's own settings serves a method and path."""
    app = create_app(load_settings("backend", Settings, monkeypatch, tmp_path))

    def serves(method: str, path: str) -> bool:
        scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
        return any(route.matches(scope)[0] is Match.FULL for route in app.router.routes)

    return serves


async def bot_routes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str, str], bool]:
    """Whether the webhook server built from the bot pod's own settings serves a method and path."""
    settings = load_settings("bot", BotSettings, monkeypatch, tmp_path)
    backend = create_backend(settings)
    bot = create_bot(settings)
    try:
        dp = create_dispatcher(settings, backend)
        app = create_webhook_app(settings, bot, dp, backend)
        routes = {(route.method, route.resource.canonical) for route in app.router.routes()}
        return lambda method, path: (method, path) in routes
    finally:
        await backend.aclose()
        await bot.session.close()


@pytest.mark.parametrize("workload", sorted(PORTS))
def test_probes_ask_the_containers_port(workload):
    for kind, probe in probes(workload).items():
        assert container_port(workload, probe["httpGet"]["port"]) == container_port(
            workload, "http"
        ), kind


def test_the_backend_probes_ask_routes_the_backend_serves(monkeypatch, tmp_path):
    served = backend_routes(monkeypatch, tmp_path)
    found = probes("backend")
    assert found["readinessProbe"]["httpGet"]["path"] == "/health"
    for kind, probe in found.items():
        assert served("GET", probe["httpGet"]["path"]), kind


async def test_the_bot_probes_ask_routes_the_bot_serves(monkeypatch, tmp_path):
    served = await bot_routes(monkeypatch, tmp_path)
    found = probes("bot")
    assert found["readinessProbe"]["httpGet"]["path"] == "/health"
    for kind, probe in found.items():
        assert served("GET", probe["httpGet"]["path"]), kind


def test_the_healthchecks_of_the_images_ask_the_same_paths():
    for workload in PORTS:
        [check] = [args for op, args in dockerfile_instructions(workload) if op == "HEALTHCHECK"]
        assert probes(workload)["readinessProbe"]["httpGet"]["path"] in check


# --- Ingress ---------------------------------------------------------------------------------


def ingress_paths() -> list[tuple[str, str, str, int]]:
    [ingress] = RENDER.all("Ingress")
    return [
        (
            path["path"],
            path["pathType"],
            path["backend"]["service"]["name"],
            path["backend"]["service"]["port"]["number"],
        )
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]


def nginx_exact_locations() -> dict[str, str]:
    """Exact locations of the nginx template and the service (bot, backend) each proxies to."""
    webhook_path = SERVICES["nginx"]["environment"]["WEBHOOK_PATH"]
    default = re.fullmatch(r"\$\{WEBHOOK_PATH:-(.+)\}", webhook_path)
    assert default
    upstreams = dict(re.findall(r"^upstream (\S+) \{(.*?)^\}", TEMPLATE, re.M | re.S))
    https_server = TEMPLATE[TEMPLATE.index("ssl default_server") :]
    found = {}
    for block in https_server.split("location = ")[1:]:
        path = block.split()[0].replace("${WEBHOOK_PATH}", default.group(1))
        [target] = re.findall(r"proxy_pass (\S+);", block.split("location ")[0])
        upstream = upstreams.get(target.removeprefix("http://"), "")
        named = re.findall(r"(?i)(?<![a-z])(bot|backend)(?![a-z])", target + upstream)
        [service] = {name.lower() for name in named}
        found[path] = service
    return found


def test_the_ingress_exposes_exactly_the_two_webhooks():
    webhook_path = BotSettings.model_fields["webhook_path"].default
    assert ingress_paths() == [
        (webhook_path, "Exact", "bot", container_port("bot", "http")),
        ("/api/v1/webhooks/payments", "Exact", "backend", container_port("backend", "http")),
    ]
    assert pod_environment("bot")["WEBHOOK_PATH"] == webhook_path


def test_the_ingress_routes_what_nginx_routes():
    assert {path: service for path, _, service, _ in ingress_paths()} == nginx_exact_locations()


def test_the_ingress_targets_service_ports():
    for _, _, name, port in ingress_paths():
        assert port in {p["port"] for p in RENDER.one("Service", name)["spec"]["ports"]}


def test_nothing_else_is_exposed():
    assert len(RENDER.all("Ingress")) == 1
    for service in RENDER.all("Service"):
        assert service["spec"]["type"] in {"ClusterIP", "ExternalName"}, names(service)
    for workload in PORTS:
        assert all("hostPort" not in p for p in container(workload)["ports"])


async def test_the_ingress_paths_are_served_by_the_apps(monkeypatch, tmp_path):
    served = {
        "backend": backend_routes(monkeypatch, tmp_path),
        "bot": await bot_routes(monkeypatch, tmp_path),
    }
    for path, _, service, _ in ingress_paths():
        assert served[service]("POST", path), path


def test_the_ingress_is_tls_for_the_webhook_host():
    [ingress] = RENDER.all("Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    [tls] = ingress["spec"]["tls"]
    assert tls["secretName"]
    base_url = urlsplit(pod_environment("bot")["WEBHOOK_BASE_URL"])
    assert base_url.scheme == "https" and base_url.port in {None, 443}
    for rule in ingress["spec"]["rules"]:
        assert rule["host"] == base_url.hostname
        assert rule["host"] in tls["hosts"]
    assert "cert-manager.io/cluster-issuer" in (OVERLAY / "ingress.yaml").read_text()


# --- images, commands, the migration ---------------------------------------------------------


def compose_image(service: str) -> str:
    """The image name with Compose's default IMAGE_PREFIX, without the tag."""
    image = SERVICES[service]["image"]
    return re.sub(r"\$\{IMAGE_PREFIX:-([^}]*)\}", r"\1", image).split(":")[0]


def test_the_base_uses_the_images_compose_builds():
    base = build(K8S / "base")
    images = {
        doc["metadata"]["name"]: [c["image"] for c in spec["containers"]]
        for doc in base.documents
        for spec in pod_specs(doc)
    }
    assert images == {
        "backend": [compose_image("backend")],
        "bot": [compose_image("bot")],
        "migrate": [compose_image("migrate")],
    }


def test_the_overlay_pins_a_tag_for_each_image():
    for workload in WORKLOADS:
        name, tag = split_image(container(workload)["image"])
        assert tag and tag != "latest", workload
        assert name.endswith("-" + ("backend" if workload == "migrate" else workload))


@pytest.mark.parametrize("workload", sorted(PORTS))
def test_the_deployments_run_the_images_command(workload):
    main = container(workload)
    assert "command" not in main and "args" not in main
    [cmd] = [args for op, args in dockerfile_instructions(workload) if op == "CMD"]
    assert yaml.safe_load(cmd) == ["python", "-m", workload]


def test_the_migration_job_runs_composes_migrate_command_with_the_backend_image():
    job = container("migrate")
    assert "command" not in job  # Compose's `command` replaces the image's CMD, as `args` does
    assert job["args"] == SERVICES["migrate"]["command"]
    assert job["image"] == container("backend")["image"]
    spec = RENDER.one("Job", "migrate")["spec"]
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert spec["backoffLimit"] >= 1 and spec["activeDeadlineSeconds"]


def step_selector() -> tuple[str, str]:
    """The label of `kubectl apply -k ... -l key=value` in the README's commands."""
    match = re.search(r"kubectl apply -k deploy/k8s/overlays/production -l (\S+)=(\S+)", K8S_README)
    assert match, "the README applies the migration step first"
    return match.group(1), match.group(2)


def test_the_first_step_applies_everything_the_migration_needs():
    key, value = step_selector()
    step = {names(doc) for doc in RENDER.documents if doc["metadata"]["labels"].get(key) == value}
    job = container("migrate")
    needed = {"Namespace/pomogator", "Job/migrate"}
    needed |= {f"Secret/{v['valueFrom']['secretKeyRef']['name']}" for v in job["env"]}
    needed |= {f"ConfigMap/{s['configMapRef']['name']}" for s in job.get("envFrom", [])}
    needed.add(f"Service/{urlsplit(pod_environment('migrate')['DATABASE_URL']).hostname}")
    assert needed <= step
    assert not {name for name in step if name.split("/")[0] in {"Deployment", "Ingress"}}


def test_the_readme_commands_name_the_real_namespace_job_and_overlay():
    [namespace] = RENDER.all("Namespace")
    assert f"kubectl apply -k {OVERLAY.relative_to(ROOT)}\n" in K8S_README
    for used in re.findall(r"-n (\S+)", K8S_README):
        assert used == namespace["metadata"]["name"]
    for job in re.findall(r"job/([a-z-]+)", K8S_README):
        RENDER.one("Job", job)
    assert "deploy/k8s/README.md" in (ROOT / "README.md").read_text()


# --- shutdown, resources, scaling ------------------------------------------------------------


def shutdown_grace_s(workload: str) -> float:
    """How long the service finishes its work after SIGTERM (the bot: the longer of its pod's
    SHUTDOWN_GRACE_S and the default)."""
    if workload == "bot":
        configured = pod_environment("bot").get("SHUTDOWN_GRACE_S")
        default = BotSettings.model_fields["shutdown_grace_s"].default
        return max(float(configured or 0), default)
    return uvicorn_graceful_shutdown_s()


@pytest.mark.parametrize("workload", sorted(PORTS))
def test_the_grace_period_outlasts_the_services_own_shutdown(workload):
    spec = RENDER.one("Deployment", workload)["spec"]["template"]["spec"]
    grace = spec["terminationGracePeriodSeconds"]
    assert grace > prestop_pause_s(workload) + shutdown_grace_s(workload)
    assert grace >= seconds(SERVICES[workload]["stop_grace_period"])


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_the_pod_is_unprivileged_with_a_read_only_root(workload):
    kind = "Job" if workload == "migrate" else "Deployment"
    spec = RENDER.one(kind, workload)["spec"]["template"]["spec"]
    image = "backend" if workload == "migrate" else workload
    [user] = [args for op, args in dockerfile_instructions(image) if op == "USER"]
    uid, gid = (int(part) for part in user.split(":"))
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert (pod["runAsUser"], pod["runAsGroup"]) == (uid, gid)
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    # Service links would put e.g. BACKEND_PORT=tcp://... into the environment.
    assert spec["enableServiceLinks"] is False
    main = container(workload)
    own = main["securityContext"]
    assert own["readOnlyRootFilesystem"] is True
    assert own["allowPrivilegeEscalation"] is False
    assert own["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    [tmp] = [m for m in main["volumeMounts"] if m["mountPath"] == "/tmp"]  # noqa: S108
    assert "emptyDir" in volumes[tmp["name"]]


def test_the_namespace_enforces_the_restricted_pod_security_level():
    [namespace] = RENDER.all("Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_resources_are_bounded_as_in_compose(workload):
    resources = container(workload)["resources"]
    limits = SERVICES[workload]["deploy"]["resources"]["limits"]
    assert k8s_memory(resources["limits"]["memory"]) == compose_memory(limits["memory"])
    assert cpu(resources["limits"]["cpu"]) == cpu(limits["cpus"])
    assert k8s_memory(resources["requests"]["memory"]) <= k8s_memory(resources["limits"]["memory"])
    assert cpu(resources["requests"]["cpu"]) <= cpu(resources["limits"]["cpu"])


@pytest.mark.parametrize("workload", sorted(PORTS))
def test_rolling_updates_keep_every_replica_serving(workload):
    strategy = RENDER.one("Deployment", workload)["spec"]["strategy"]
    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }


def autoscaler(workload: str) -> dict[str, Any]:
    [hpa] = [
        hpa
        for hpa in RENDER.all("HorizontalPodAutoscaler")
        if hpa["spec"]["scaleTargetRef"]
        == {"apiVersion": "apps/v1", "kind": "Deployment", "name": workload}
    ]
    return hpa


@pytest.mark.parametrize("workload", sorted(PORTS))
def test_each_deployment_scales_on_cpu_from_two_replicas(workload):
    hpa = autoscaler(workload)["spec"]
    assert hpa["minReplicas"] >= 2 and hpa["maxReplicas"] >= hpa["minReplicas"]
    [metric] = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    # The autoscaler owns the count: a `replicas` in the manifest would be reset on every apply.
    assert "replicas" not in RENDER.one("Deployment", workload)["spec"]
    assert container(workload)["resources"]["requests"]["cpu"]


@pytest.mark.parametrize("workload", sorted(PORTS))
def test_each_deployment_keeps_one_pod_through_disruptions(workload):
    deployment = RENDER.one("Deployment", workload)["spec"]
    labels = deployment["template"]["metadata"]["labels"]
    [pdb] = [
        pdb
        for pdb in RENDER.all("PodDisruptionBudget")
        if pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == deployment["selector"]
    assert deployment["selector"]["matchLabels"].items() <= labels.items()
    assert autoscaler(workload)["spec"]["minReplicas"] > pdb["spec"]["minAvailable"]


def test_the_most_backends_fit_postgres_connections():
    env = pod_environment("backend")
    per_replica = int(env["DB_POOL_SIZE"]) + int(env["DB_MAX_OVERFLOW"])
    most = autoscaler("backend")["spec"]["maxReplicas"] + 1  # the surge pod of a rollout
    assert most * per_replica + 1 <= POSTGRES_CONNECTIONS  # and the migration


def test_the_bots_share_telegrams_rate_or_split_it():
    env = pod_environment("bot")
    # The limiter takes the bot's Redis: its budgets are then the whole bot's.
    shared = bool(env.get("REDIS_URL")) and "redis" in inspect.signature(create_limits).parameters
    rate = float(env["TELEGRAM_GLOBAL_RATE"])
    replicas = 1 if shared else autoscaler("bot")["spec"]["maxReplicas"]
    assert replicas * rate <= TELEGRAM_MESSAGES_PER_SECOND
    assert replicas * int(env["TELEGRAM_GLOBAL_BURST"]) <= TELEGRAM_MESSAGES_PER_SECOND
    assert float(env["BROADCAST_PER_SECOND"]) < rate

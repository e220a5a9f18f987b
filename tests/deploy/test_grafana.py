"""The `monitoring` profile: Prometheus finds every replica, Grafana's dashboard asks for what
the services really export, through the datasource it is provisioned with."""

import json
import re
import subprocess
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import promql_parser
import pytest
import yaml

from backend.config import Settings
from bot.config import BotSettings
from tests.deploy.conftest import ROOT
from tests.deploy.test_monitoring import (
    PROMETHEUS_SERIES,
    alert_rules,
    exported_names,
    label_problems,
    matchers,
    metric_name,
    metric_names,
    parse_promql,
    selectors,
)

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
MONITORING = ("prometheus", "grafana")
PROMETHEUS = ROOT / "monitoring" / "prometheus.yml"
GRAFANA = ROOT / "monitoring" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "pomogator.json"
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
# The dashboard schema each pinned Grafana release writes (Dashboard settings → JSON Model).
GRAFANA_SCHEMA_VERSIONS = {"12.2": 42, "12.3": 42}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict[str, Any]]:
    """Every panel, also those folded into rows."""
    found = []
    for panel in dashboard()["panels"]:
        found += [panel, *panel.get("panels", [])] if panel["type"] == "row" else [panel]
    return [panel for panel in found if panel["type"] != "row"]


def expressions() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in panels() for target in panel["targets"]]


def yaml_files(folder: str) -> list[dict[str, Any]]:
    paths = sorted((GRAFANA / "provisioning" / folder).glob("*.y*ml"))
    assert paths, folder
    return [yaml.safe_load(path.read_text()) for path in paths]


def datasource_uid() -> str:
    [source] = [s for doc in yaml_files("datasources") for s in doc["datasources"]]
    assert source["type"] == "prometheus"
    return source["uid"]


def mounts(service: str) -> dict[str, str]:
    """Source → target of a service's short-syntax volumes (named volumes and ./paths)."""
    return {v.split(":")[0]: v.split(":")[1] for v in SERVICES[service].get("volumes", [])}


def flag(service: str, name: str) -> str | None:
    for argument in SERVICES[service].get("command", []):
        if argument.startswith(f"--{name}="):
            return argument.split("=", 1)[1]
    return None


def prometheus_config() -> dict[str, Any]:
    return yaml.safe_load(PROMETHEUS.read_text())


def scrape_jobs() -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in prometheus_config()["scrape_configs"]}


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return [value] if isinstance(value, str) else []


# --- the dashboard ---------------------------------------------------------------------------


def test_the_dashboard_is_json_with_a_title_and_queries_in_every_panel():
    board = dashboard()
    assert board["uid"] and board["title"]
    assert panels()
    for panel in panels():
        assert panel["title"].strip(), panel.get("id")
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
    ids = [panel["id"] for panel in panels()]
    assert len(set(ids)) == len(ids)


def test_every_panel_expression_is_valid_promql():
    errors = []
    for title, expression in expressions():
        try:
            parse_promql(expression)
        except ValueError as error:
            errors.append(f"{title}: {error}")
    assert not errors


def test_every_metric_a_panel_queries_is_exported():
    allowed = exported_names() | set(PROMETHEUS_SERIES)
    unknown = {
        (title, name)
        for title, expression in expressions()
        for name in metric_names(expression)
        if name not in allowed
    }
    assert not unknown


def test_every_label_a_panel_uses_exists_on_its_metric():
    problems = [f"{t}: {p}" for t, expression in expressions() for p in label_problems(expression)]
    assert not problems


def test_every_panel_queries_the_provisioned_datasource():
    uid = datasource_uid()
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", panel["datasource"])["uid"] == uid, panel["title"]


def quantiles_of(panel: dict[str, Any]) -> dict[str, set[float]]:
    """Metric → the quantiles a panel's histogram_quantile() calls take of it."""
    found: dict[str, set[float]] = {}

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.Call) and node.func.name == "histogram_quantile":
            quantile, histogram = node.args
            for selector in selectors(histogram):
                found.setdefault(metric_name(selector) or "", set()).add(quantile.val)

    for target in panel["targets"]:
        promql_parser.walk(parse_promql(target["expr"]), visit)
    return found


@pytest.mark.parametrize(
    "histogram",
    [
        "pomogator_provider_latency_seconds_bucket",
        "pomogator_provider_ttft_seconds_bucket",
        "pomogator_bot_update_duration_seconds_bucket",
    ],
)
def test_a_panel_shows_the_median_p95_and_p99_of(histogram):
    shown = [quantiles_of(panel).get(histogram, set()) for panel in panels()]
    assert any({0.5, 0.95, 0.99} <= quantiles for quantiles in shown)


def applied(expression: str) -> dict[str, dict[str, set[str]]]:
    """Metric → each function or aggregation applied to it → the labels an aggregation keeps."""
    found: dict[str, dict[str, set[str]]] = {}

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.AggregateExpr):
            function, inner = str(node.op), [node.expr]
            labels = set(node.modifier.labels) if node.modifier else set()
        elif isinstance(node, promql_parser.Call):
            function, inner, labels = node.func.name, node.args, set()
        else:
            return
        for argument in inner:
            if isinstance(argument, promql_parser.Expr):
                for selector in selectors(argument):
                    uses = found.setdefault(metric_name(selector) or "", {})
                    uses.setdefault(function, set()).update(labels)

    promql_parser.walk(parse_promql(expression), visit)
    return found


@pytest.mark.parametrize(
    ("metric", "function", "aggregation", "labels"),
    [
        ("pomogator_answers_total", "rate", "sum", {"provider", "model"}),
        ("pomogator_telegram_429_total", "rate", "sum", set()),
        ("pomogator_quota_refusals_total", "rate", "sum", set()),
        ("pomogator_payments_total", "rate", "sum", set()),
        ("pomogator_revenue_total", "increase", "sum", set()),
        ("pomogator_ai_cost_usd_total", "increase", "sum", {"provider"}),
        ("pomogator_answers_in_flight", None, "sum", set()),
        ("pomogator_bot_answers_in_flight", None, "sum", set()),
        ("pomogator_database_up", None, "min", set()),
    ],
)
def test_a_panel_shows(metric, function, aggregation, labels):
    fitting = []
    for title, expression in expressions():
        uses = applied(expression).get(metric, {})
        if aggregation in uses and labels <= uses[aggregation] and function in {None, *uses}:
            fitting.append(title)
    assert fitting


def windows(expression: str) -> set[tuple[str | None, timedelta, str]]:
    """(metric, range, its matchers) of each range selector: `x{a="b"}[1d]`."""
    found = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.MatrixSelector):
            selector = node.vector_selector
            shown = ",".join(str(m) for m in matchers(selector))
            found.add((metric_name(selector), node.range, shown))

    promql_parser.walk(parse_promql(expression), visit)
    return found


def test_revenue_is_counted_in_stars_per_day_and_cost_in_dollars_per_hour():
    used = {window for _, expression in expressions() for window in windows(expression)}
    assert ("pomogator_revenue_total", timedelta(days=1), 'currency="XTR"') in used
    assert ("pomogator_ai_cost_usd_total", timedelta(hours=1), "") in used


def test_the_dashboard_schema_version_is_the_one_the_pinned_grafana_writes():
    image = SERVICES["grafana"]["image"]
    match = re.fullmatch(r"grafana/grafana:(\d+\.\d+)\.\d+", image)
    assert match, image
    assert dashboard()["schemaVersion"] == GRAFANA_SCHEMA_VERSIONS[match.group(1)]


# --- Grafana provisioning --------------------------------------------------------------------


def test_the_datasource_is_the_prometheus_service_of_the_profile():
    [source] = [s for doc in yaml_files("datasources") for s in doc["datasources"]]
    address = urlsplit(source["url"])
    assert address.hostname == "prometheus" and "prometheus" in SERVICES
    listen = flag("prometheus", "web.listen-address") or ":9090"
    assert address.port == int(listen.rsplit(":", 1)[1])
    assert source["jsonData"]["timeInterval"] == prometheus_config()["global"]["scrape_interval"]


def test_grafana_reads_the_provisioning_and_the_dashboards_compose_mounts():
    mounted = mounts("grafana")
    assert mounted["./monitoring/grafana/provisioning"] == "/etc/grafana/provisioning"
    [provider] = [p for doc in yaml_files("dashboards") for p in doc["providers"]]
    assert provider["type"] == "file"
    assert mounted["./monitoring/grafana/dashboards"] == provider["options"]["path"]
    assert (ROOT / "monitoring" / "grafana" / "dashboards" / DASHBOARD.name).is_file()
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"


# --- Prometheus ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "service", "port"),
    [
        ("pomogator-backend", "backend", Settings.model_fields["backend_port"].default),
        ("pomogator-bot", "bot", BotSettings.model_fields["bot_port"].default),
    ],
)
def test_prometheus_scrapes_every_replica_of(job, service, port):
    config = scrape_jobs()[job]
    assert service in SERVICES
    assert "static_configs" not in config  # one address would reach one replica only
    # Docker's DNS answers the service name with every replica's address.
    assert config["dns_sd_configs"] == [
        {"names": [service], "type": "A", "port": port, "refresh_interval": "15s"}
    ]
    assert config.get("metrics_path", "/metrics") == "/metrics"
    assert config.get("scrape_interval", prometheus_config()["global"]["scrape_interval"]) == "15s"


def test_prometheus_loads_the_alert_rules_compose_mounts():
    mounted = mounts("prometheus")
    config_file = flag("prometheus", "config.file")
    assert mounted["./monitoring/prometheus.yml"] == config_file
    targets = {target: source for source, target in mounted.items()}
    rules = prometheus_config()["rule_files"]
    assert rules
    for rule_file in rules:
        in_container = PurePosixPath(config_file).parent / rule_file
        assert targets[str(in_container)] == "./monitoring/alerts.yml"


def jobs_named(expression: str) -> list[tuple[promql_parser.MatchOp, str]]:
    return [
        (matcher.op, matcher.value)
        for selector in selectors(parse_promql(expression))
        for matcher in matchers(selector)
        if matcher.name == "job"
    ]


def test_every_job_an_alert_or_a_panel_names_is_scraped():
    jobs = set(scrape_jobs())
    named = [
        *(j for rule in alert_rules() for j in jobs_named(rule["expr"])),
        *(j for _, expression in expressions() for j in jobs_named(expression)),
    ]
    assert named
    for op, value in named:
        if op == promql_parser.MatchOp.Equal:
            assert value in jobs, value
        else:
            assert op == promql_parser.MatchOp.Re
            if re.fullmatch(r"[\w-]+(\|[\w-]+)*", value):  # a list of names: each is a job
                assert set(value.split("|")) <= jobs, value
            assert any(re.fullmatch(value, job) for job in jobs), value


# --- Compose ---------------------------------------------------------------------------------


def test_the_monitoring_services_run_only_in_the_monitoring_profile():
    for name in MONITORING:
        assert SERVICES[name]["profiles"] == ["monitoring"], name
    others = {name for name in SERVICES if name not in MONITORING and "profiles" in SERVICES[name]}
    assert not others  # a plain `docker compose up` still starts all of them


def test_grafana_is_published_on_loopback_only_and_prometheus_not_at_all():
    assert SERVICES["grafana"]["ports"] == ["127.0.0.1:3000:3000"]
    assert "ports" not in SERVICES["prometheus"]
    assert SERVICES["prometheus"]["networks"] == ["internal"]
    assert "internal" in SERVICES["grafana"]["networks"]


def test_the_monitoring_services_keep_their_data_in_named_volumes():
    assert mounts("prometheus")["prometheus-data"] == flag("prometheus", "storage.tsdb.path")
    assert mounts("grafana")["grafana-data"] == "/var/lib/grafana"
    assert {"prometheus-data", "grafana-data"} <= set(COMPOSE["volumes"])


@pytest.mark.parametrize("name", MONITORING)
def test_the_monitoring_service_is_pinned_and_locked_down_like_the_others(name):
    service = SERVICES[name]
    assert re.fullmatch(r"[a-z/]+:v?\d+\.\d+\.\d+", service["image"]), service["image"]
    assert service["restart"] == "unless-stopped"
    assert service["logging"] == SERVICES["postgres"]["logging"]
    assert service["deploy"]["resources"]["limits"]["memory"]
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    for mount in service["volumes"]:
        if mount.startswith("./"):
            assert mount.endswith(":ro"), mount
            assert (ROOT / mount.split(":")[0]).exists(), mount


def test_a_plain_compose_up_needs_no_monitoring_setting():
    # Compose interpolates every service before it looks at profiles.
    for name in MONITORING:
        assert not [s for s in strings(SERVICES[name]) if ":?" in s], name


def grafana_entrypoint(password: str) -> subprocess.CompletedProcess[str]:
    """Grafana's entrypoint as the container runs it, with /run.sh standing for the image's."""
    shell, option, script = SERVICES["grafana"]["entrypoint"]
    assert "exec /run.sh" in script
    script = script.replace("$$", "$").replace("exec /run.sh", "echo grafana starts")
    return subprocess.run(
        [shell, option, script],
        env={"GF_SECURITY_ADMIN_PASSWORD": password, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


@pytest.mark.parametrize("password", ["", "change-me", "admin"])
def test_grafana_refuses_to_start_without_a_real_admin_password(password):
    done = grafana_entrypoint(password)
    assert done.returncode == 1
    assert "set GRAFANA_ADMIN_PASSWORD in .env" in done.stderr
    assert "grafana starts" not in done.stdout


def test_grafana_starts_with_the_admin_password_from_env():
    environment = SERVICES["grafana"]["environment"]
    assert environment["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:-}"
    assert re.search(r"^#.*\nGRAFANA_ADMIN_PASSWORD=", ENV_EXAMPLE, re.M)
    done = grafana_entrypoint("a-real-password-1f2e3d")
    assert done.returncode == 0 and done.stdout.strip() == "grafana starts"

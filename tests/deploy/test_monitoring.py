"""monitoring/alerts.yml watches metrics the services export; the internet cannot scrape them."""

import re
from collections.abc import Iterable

import promql_parser
import pytest
import yaml
from prometheus_client import Counter, Histogram
from prometheus_client.metrics import MetricWrapperBase

from backend.utils.metrics import BackendMetrics
from bot.utils.metrics import BotMetrics
from tests.deploy.conftest import ROOT, Stack

ALERTS = ROOT / "monitoring" / "alerts.yml"
METRIC = re.compile(r"\b(pomogator_[a-z0-9_]+)")
# Labels Prometheus adds to every series it scrapes, and the series it makes itself.
TARGET_LABELS = {"job", "instance"}
PROMETHEUS_SERIES = {"up": set(), "ALERTS": {"alertname", "alertstate", "severity"}}
# Grafana's interval variables stand for durations; Grafana fills them in before Prometheus.
GRAFANA_DURATION = re.compile(r"\$\{?__(?:rate_interval|interval|range)\}?")


def exported_names() -> set[str]:
    """Every sample name the two services can export (with _total, _bucket, ... suffixes)."""
    names: set[str] = set()
    for registry in (BackendMetrics().registry, BotMetrics().registry):
        for family in registry.collect():
            names.add(family.name)
            kind = family.type
            if kind == "counter":
                names.add(f"{family.name}_total")
            if kind == "histogram":
                names |= {f"{family.name}_{s}" for s in ("bucket", "count", "sum")}
    return names


def exported_labels() -> dict[str, set[str]]:
    """Every sample name the two services export, with the label names its series carry."""
    labels: dict[str, set[str]] = {}
    for metrics in (BackendMetrics(), BotMetrics()):
        for metric in vars(metrics).values():
            if not isinstance(metric, MetricWrapperBase):
                continue
            name, own = metric._name, set(metric._labelnames)
            if isinstance(metric, Counter):
                labels[f"{name}_total"] = own
            elif isinstance(metric, Histogram):
                labels[f"{name}_bucket"] = own | {"le"}
                labels[f"{name}_count"] = labels[f"{name}_sum"] = own
            else:
                labels[name] = own
    return labels


def parse_promql(expression: str) -> promql_parser.Expr:
    """The expression's syntax tree; a ValueError says what is wrong with it."""
    return promql_parser.parse(GRAFANA_DURATION.sub("5m", expression))


def selectors(node: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(child: promql_parser.Expr) -> None:
        if isinstance(child, promql_parser.VectorSelector):
            found.append(child)

    promql_parser.walk(node, visit)
    return found


def matchers(selector: promql_parser.VectorSelector) -> list[promql_parser.Matcher]:
    groups = [selector.matchers.matchers, *selector.matchers.or_matchers]
    return [matcher for group in groups for matcher in group]


def metric_name(selector: promql_parser.VectorSelector) -> str | None:
    if selector.name:
        return selector.name
    for matcher in matchers(selector):
        if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal:
            return matcher.value
    return None


def metric_names(expression: str) -> set[str | None]:
    """Names of the series an expression selects (None: a selector without a fixed name)."""
    return {metric_name(selector) for selector in selectors(parse_promql(expression))}


def label_problems(expression: str) -> list[str]:
    """Labels that the expression matches on, groups by or joins on, and its metrics lack."""
    known = exported_labels() | PROMETHEUS_SERIES
    problems: list[str] = []

    def lacking(label: str, nodes: Iterable[promql_parser.Expr], clause: str) -> None:
        for node in nodes:
            for selector in selectors(node):
                name = metric_name(selector)
                if label not in known.get(name or "", set()) | TARGET_LABELS:
                    problems.append(f"{name} has no label {label!r} ({clause})")

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            for matcher in matchers(node):
                if matcher.name != "__name__":
                    lacking(matcher.name, [node], f"{{{matcher}}}")
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier:
            for label in node.modifier.labels:
                lacking(label, [node.expr], f"{node.op} by/without")
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier:
            matching = node.modifier.matching
            for label in matching.labels if matching else []:
                lacking(label, [node.lhs, node.rhs], "on/ignoring")

    promql_parser.walk(parse_promql(expression), visit)
    return problems


def alert_rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_alerts_cover_providers_payments_database_and_telegram_429s():
    expressions = " ".join(rule["expr"] for rule in alert_rules())
    for metric in (
        "pomogator_answers_total",
        "pomogator_payment_failures_total",
        "pomogator_database_up",
        "pomogator_telegram_429_total",
    ):
        assert metric in expressions


def test_every_metric_an_alert_uses_is_exported():
    exported = exported_names()
    used = {name for rule in alert_rules() for name in METRIC.findall(rule["expr"])}
    assert used
    assert used <= exported, sorted(used - exported)


def test_every_alert_expression_is_valid_promql():
    for rule in alert_rules():
        parse_promql(rule["expr"])


def test_every_label_an_alert_uses_exists_on_its_metric():
    problems = [p for rule in alert_rules() for p in label_problems(rule["expr"])]
    assert not problems


def test_the_label_list_covers_every_exported_metric():
    families = {
        family.name
        for registry in (BackendMetrics().registry, BotMetrics().registry)
        for family in registry.collect()
    }
    labelled = exported_labels()
    assert set(labelled) <= exported_names()
    for family in families:
        assert {family, f"{family}_total", f"{family}_bucket"} & set(labelled), family
    assert labelled["pomogator_answers_total"] == {"provider", "model", "status"}
    assert labelled["pomogator_provider_ttft_seconds_bucket"] == {"provider", "model", "le"}


@pytest.mark.parametrize(
    "expression",
    [
        "sum by (route) (rate(pomogator_answers_total[5m]))",
        'rate(pomogator_answers_total{reason="quota_exhausted"}[5m])',
        "histogram_quantile(0.5, sum by (le) (rate(pomogator_provider_latency_seconds_count[5m])))",
        "pomogator_answers_in_flight / on (provider) pomogator_bot_answers_in_flight",
    ],
)
def test_the_label_check_catches_a_label_the_metric_lacks(expression):
    assert label_problems(expression)


def test_the_label_check_accepts_the_metrics_own_and_the_scrapes_labels():
    expression = (
        "sum by (provider, model, le, instance) (rate(pomogator_provider_latency_seconds_bucket"
        '{job="pomogator-backend", status!="x"}[$__rate_interval]))'
    )
    assert label_problems(expression.replace(', status!="x"', "")) == []
    [problem] = label_problems(expression)
    assert problem.startswith("pomogator_provider_latency_seconds_bucket has no label 'status'")


def test_every_alert_has_a_summary_and_severity():
    for rule in alert_rules():
        assert rule["alert"] and rule["labels"]["severity"] in ("info", "warning", "critical")
        assert rule["annotations"]["summary"]


@pytest.mark.parametrize("path", ["/metrics", "/api/v1/metrics", "/telegram/../metrics"])
async def test_metrics_are_not_reachable_through_nginx(stack: Stack, path):
    async with stack.client() as https:
        response = await https.get(f"{stack.nginx.https}{path}")
        direct_backend = await https.get(f"{stack.backend_url}/metrics")
        direct_bot = await https.get(f"{stack.bot_url}/metrics")
    assert response.status_code == 404
    assert "pomogator_" not in response.text
    # The scraper on the services' network does reach them.
    assert "pomogator_http_request_duration_seconds" in direct_backend.text
    assert "pomogator_bot_updates" in direct_bot.text

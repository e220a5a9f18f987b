"""monitoring/alerts.yml watches metrics the services export; the internet cannot scrape them."""

import re

import pytest
import yaml

from backend.utils.metrics import BackendMetrics
from bot.utils.metrics import BotMetrics
from tests.deploy.conftest import ROOT, Stack

ALERTS = ROOT / "monitoring" / "alerts.yml"
METRIC = re.compile(r"\b(pomogator_[a-z0-9_]+)")


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

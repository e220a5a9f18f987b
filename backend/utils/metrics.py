"""Prometheus metrics of the backend, on a registry of its own per app (tests stay isolated).

The app serves them at GET /metrics (outside /api/v1, no token: nginx does not route it, so
only the scraper on the internal network reaches it).
"""

import functools
import time
from decimal import Decimal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Answers take from a second to many minutes (deep research): the buckets reach 15 minutes.
ANSWER_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900)
TTFT_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
# Paths that match no route are one label value, so scanners cannot grow the series.
UNMATCHED = "unmatched"


class BackendMetrics:
    """Every metric the backend exports, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.http_duration = Histogram(
            "pomogator_http_request_duration_seconds",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.answers = Counter(
            "pomogator_answers",
            "Answers by provider, model and status (success, failed, refused).",
            ["provider", "model", "status"],
            registry=r,
        )
        self.provider_latency = Histogram(
            "pomogator_provider_latency_seconds",
            "Time from the reservation to the provider's complete answer.",
            ["provider", "model"],
            buckets=ANSWER_BUCKETS,
            registry=r,
        )
        self.provider_ttft = Histogram(
            "pomogator_provider_ttft_seconds",
            "Time to the first streamed token of an answer.",
            ["provider", "model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "pomogator_tokens",
            "Tokens used, by kind (input, output).",
            ["provider", "model", "kind"],
            registry=r,
        )
        self.cost = Counter(
            "pomogator_ai_cost_usd",
            "What the answers cost at the providers, in USD.",
            ["provider", "model"],
            registry=r,
        )
        self.quota_refusals = Counter(
            "pomogator_quota_refusals",
            "Messages refused before any provider call, by the refusal's code.",
            ["reason"],
            registry=r,
        )
        self.answers_in_flight = Gauge(
            "pomogator_answers_in_flight", "Answers being produced right now.", registry=r
        )
        self.payments = Counter(
            "pomogator_payments",
            "Payments by rail and kind (paid, refunded, renewed).",
            ["rail", "kind"],
            registry=r,
        )
        self.revenue = Counter(
            "pomogator_revenue",
            "Money received, in the currency's units (Stars, or the smallest fiat unit).",
            ["currency"],
            registry=r,
        )
        self.payment_failures = Counter(
            "pomogator_payment_failures",
            "Checkouts refused and payments that could not be matched, by reason.",
            ["reason"],
            registry=r,
        )
        self.database_up = Gauge(
            "pomogator_database_up",
            "1 when the last database check (GET /health) succeeded, else 0.",
            registry=r,
        )
        self.database_errors = Counter(
            "pomogator_database_errors",
            "Requests that failed because the database was unavailable.",
            registry=r,
        )

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def answer_succeeded(
        self,
        provider: str,
        model: str,
        *,
        latency_s: float,
        ttft_s: float | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cost_usd: Decimal | None,
    ) -> None:
        self.answers.labels(provider=provider, model=model, status="success").inc()
        self.provider_latency.labels(provider=provider, model=model).observe(latency_s)
        if ttft_s is not None:
            self.provider_ttft.labels(provider=provider, model=model).observe(ttft_s)
        if input_tokens:
            self.tokens.labels(provider=provider, model=model, kind="input").inc(input_tokens)
        if output_tokens:
            self.tokens.labels(provider=provider, model=model, kind="output").inc(output_tokens)
        if cost_usd:
            self.cost.labels(provider=provider, model=model).inc(float(cost_usd))

    def answer_failed(self, provider: str, model: str) -> None:
        self.answers.labels(provider=provider, model=model, status="failed").inc()

    def answer_refused(self, provider: str, model: str, reason: str) -> None:
        self.answers.labels(provider=provider, model=model, status="refused").inc()
        self.quota_refusals.labels(reason=reason).inc()

    def payment(self, rail: str, kind: str, currency: str | None = None, amount: int = 0) -> None:
        self.payments.labels(rail=rail, kind=kind).inc()
        if currency is not None and amount > 0:
            self.revenue.labels(currency=currency).inc(amount)

    def payment_failed(self, reason: str) -> None:
        self.payment_failures.labels(reason=reason).inc()


@functools.cache
def discarded() -> BackendMetrics:
    """Metrics nobody scrapes, for services built without an app (scripts, unit tests)."""
    return BackendMetrics()


def route_template(scope: Scope) -> str:
    """The matched route's path template (/api/v1/users/{telegram_id}), not the raw path."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str) or not template.startswith("/"):
        return UNMATCHED
    # An included router's route knows only its own part of the path: the prefix is what the
    # raw path has before as many segments as the template holds.
    parts = str(scope.get("path", "")).split("/")
    depth = template.count("/")
    return "/".join(parts[: max(len(parts) - depth, 1)]) + template


class MetricsMiddleware:
    """Times every HTTP request, labelled by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: BackendMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_seen(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_seen)
        finally:
            self.metrics.http_duration.labels(
                method=scope.get("method", ""), route=route_template(scope), status=str(status)
            ).observe(time.perf_counter() - started)


def metrics_of(app: object) -> BackendMetrics:
    """The app's metrics (an app built without them gets ones nobody scrapes)."""
    found = getattr(getattr(app, "state", None), "metrics", None)
    return found if isinstance(found, BackendMetrics) else discarded()

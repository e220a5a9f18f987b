"""GET /metrics: what operators scrape moves with the traffic, and needs no token."""

import httpx
from prometheus_client.parser import text_string_to_metric_families

from backend.main import bind_state, create_app
from backend.tests.fixtures import next_telegram_id, register
from backend.utils.metrics import BackendMetrics


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset], float]:
    """Every sample of the app's /metrics, by name and labels; fetched without a token."""
    response = await client.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def new_user(api: httpx.AsyncClient) -> int:
    telegram_id = next_telegram_id()
    created = await api.post("/api/v1/users", json={"telegram_id": telegram_id, "first_name": "T"})
    assert created.status_code == 201
    return telegram_id


async def ask(api: httpx.AsyncClient, telegram_id: int, text: str = "Hi there") -> httpx.Response:
    return await api.post("/api/v1/messages", json={"telegram_id": telegram_id, "text": text})


async def test_metrics_need_no_token_and_sit_outside_the_api(client):
    anonymous = httpx.AsyncClient(transport=client._transport, base_url="http://backend.test")
    async with anonymous:
        response = await anonymous.get("/metrics")
        guarded = await anonymous.get("/api/v1/metrics")
    assert response.status_code == 200
    assert "pomogator_http_request_duration_seconds" in response.text
    assert guarded.status_code in (401, 404)


async def test_http_latency_is_labelled_by_route_template_not_raw_path(client):
    ids = (next_telegram_id(), next_telegram_id())
    for telegram_id in ids:
        await client.get(f"/api/v1/users/{telegram_id}")
    await client.get("/no/such/page")
    samples = await scrape(client)
    labels = {"method": "GET", "route": "/api/v1/users/{telegram_id}", "status": "404"}
    assert value(samples, "pomogator_http_request_duration_seconds_count", **labels) == 2
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(samples, "pomogator_http_request_duration_seconds_count", **unmatched) == 1
    routes = {dict(labels).get("route", "") for _name, labels in samples}
    assert not [r for r in routes if any(str(i) in r for i in ids) or "no/such" in r]


async def test_an_answer_moves_answers_tokens_cost_and_latency(api, fake_providers):
    fake_providers.script("openai", text="Paris is the capital of France.", chunks=4)
    telegram_id = await new_user(api)
    before = await scrape(api)
    assert (await ask(api, telegram_id)).status_code == 200
    after = await scrape(api)
    [answered] = [
        dict(k[1])
        for k in after
        if k[0] == "pomogator_answers_total" and ("status", "success") in k[1]
    ]
    labels = {"provider": answered["provider"], "model": answered["model"]}
    assert value(after, "pomogator_answers_total", **labels, status="success") == 1 + value(
        before, "pomogator_answers_total", **labels, status="success"
    )
    assert value(after, "pomogator_provider_latency_seconds_count", **labels) >= 1
    assert value(after, "pomogator_provider_ttft_seconds_count", **labels) >= 1
    assert value(after, "pomogator_tokens_total", **labels, kind="input") > 0
    assert value(after, "pomogator_tokens_total", **labels, kind="output") > 0
    assert value(after, "pomogator_answers_in_flight") == 0


async def test_a_failed_answer_counts_as_failed_and_leaves_nothing_in_flight(api, fake_providers):
    fake_providers.script("openai", fault="http_500")
    telegram_id = await new_user(api)
    assert (await ask(api, telegram_id)).status_code >= 400
    samples = await scrape(api)
    failed = [
        v
        for (name, labels), v in samples.items()
        if name == "pomogator_answers_total" and ("status", "failed") in labels
    ]
    assert sum(failed) == 1
    assert value(samples, "pomogator_answers_in_flight") == 0


async def test_quota_refusal_is_counted_by_reason(api, fake_providers):
    fake_providers.script("openai", text="ok")
    telegram_id = await new_user(api)
    for _ in range(10):
        assert (await ask(api, telegram_id)).status_code == 200
    assert (await ask(api, telegram_id)).status_code == 402
    samples = await scrape(api)
    assert value(samples, "pomogator_quota_refusals_total", reason="quota_exhausted") == 1
    refused = [
        v
        for (name, labels), v in samples.items()
        if name == "pomogator_answers_total" and ("status", "refused") in labels
    ]
    assert sum(refused) == 1


async def test_payment_and_refund_move_payments_and_revenue(client, session, settings, catalog):
    telegram_id = await register(session, settings, catalog)
    offer = await client.post(
        "/api/v1/payments/offers", json={"telegram_id": telegram_id, "rail": "stars"}
    )
    invoice = offer.json()
    rejected = await client.post(
        "/api/v1/payments/pre-checkout",
        json={
            "telegram_id": telegram_id,
            "payload": invoice["payload"],
            "currency": "XTR",
            "total_amount": 1,
        },
    )
    assert rejected.json()["ok"] is False
    paid = await client.post(
        "/api/v1/payments/successful",
        json={
            "telegram_id": telegram_id,
            "payload": invoice["payload"],
            "currency": invoice["currency"],
            "total_amount": invoice["amount"],
            "telegram_payment_charge_id": "ch-metrics-1",
        },
    )
    assert paid.json()["vip_extended"] is True
    refunded = await client.post(
        "/api/v1/payments/refunds", json={"telegram_payment_charge_id": "ch-metrics-1"}
    )
    assert refunded.status_code == 200, refunded.text
    samples = await scrape(client)
    stars = "telegram_stars"
    assert value(samples, "pomogator_payments_total", rail=stars, kind="paid") == 1
    assert value(samples, "pomogator_payments_total", rail=stars, kind="refunded") == 1
    assert value(samples, "pomogator_revenue_total", currency="XTR") == invoice["amount"]
    assert value(samples, "pomogator_payment_failures_total", reason="amount_mismatch") == 1


async def test_health_sets_database_up(client):
    assert (await client.get("/health")).status_code == 200
    assert value(await scrape(client), "pomogator_database_up") == 1


async def test_each_app_has_its_own_registry(settings, catalog, engine):
    first, second = BackendMetrics(), BackendMetrics()
    apps = [create_app(settings, catalog, metrics=m) for m in (first, second)]
    for application in apps:
        bind_state(application, settings, engine, catalog)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=apps[0]), base_url="http://backend.test"
    ) as only_first:
        await only_first.get("/health")
    assert first.database_up._value.get() == 1
    assert second.http_duration.labels("GET", "/health", "200")._sum.get() == 0

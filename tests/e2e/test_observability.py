"""What an operator sees of one journey: both /metrics move, one request id across the logs."""

import asyncio
import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import System, TelegramUser, asked


async def scrape(http: httpx.AsyncClient, url: str) -> dict[tuple[str, frozenset], float]:
    response = await http.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def scrape_once_settled(
    http: httpx.AsyncClient, url: str, name: str, at_least: float, **labels: str
) -> dict[tuple[str, frozenset], float]:
    """Scrape until `name` reaches `at_least`: the bot counts an update after its handler
    returns, which is just after the answer it sent reached the fake Bot API."""
    for _ in range(100):
        samples = await scrape(http, url)
        if total(samples, name, **labels) >= at_least:
            return samples
        await asyncio.sleep(0.1)
    return samples


def total(samples: dict, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def log_records(lines: list[str]) -> list[dict]:
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


async def test_a_question_moves_both_metrics_and_keeps_one_request_id(
    system: System, user: TelegramUser
):
    backend_before = await scrape(system.http, system.backend_url)
    bot_before = await scrape(system.http, system.bot_url)
    await user.send("/start")
    await user.next_message()
    question = "What is the tallest mountain on Earth?"
    system.said.append(question)
    update = system.telegram.message_update(user.user, question)
    await user.deliver(update)
    await user.next_message(lambda c: bool(c.buttons()))

    updates = "pomogator_bot_updates_total"
    handled = {"type": "message", "outcome": "handled"}
    expected = 2 + total(bot_before, updates, **handled)
    bot_after = await scrape_once_settled(system.http, system.bot_url, updates, expected, **handled)
    http_count = "pomogator_http_request_duration_seconds_count"
    messages = {"method": "POST", "route": "/api/v1/messages", "status": "200"}
    backend_after = await scrape_once_settled(
        system.http,
        system.backend_url,
        http_count,
        1 + total(backend_before, http_count, **messages),
        **messages,
    )
    answers = "pomogator_answers_total"
    assert total(backend_after, answers, status="success") == 1 + total(
        backend_before, answers, status="success"
    )
    assert total(backend_after, http_count, **messages) == 1 + total(
        backend_before, http_count, **messages
    )
    assert total(backend_after, "pomogator_tokens_total") > total(
        backend_before, "pomogator_tokens_total"
    )
    assert total(bot_after, updates, **handled) >= expected
    assert total(bot_after, "pomogator_bot_answers_in_flight") == 0
    assert total(backend_after, "pomogator_answers_in_flight") == 0

    request_id = f"upd-{update['update_id']}"
    bot_logs = [r for r in log_records(system.bot.lines) if r.get("request_id") == request_id]
    backend_logs = [
        r for r in log_records(system.backend.lines) if r.get("request_id") == request_id
    ]
    assert bot_logs, "the bot logged nothing with the update's request id"
    assert {"http_request", "answer_completed", "provider_call"} <= {
        r["event"] for r in backend_logs
    }
    [call] = [r for r in backend_logs if r["event"] == "provider_call"]
    assert call["provider"] and call["model"] and call["latency_ms"] >= 0
    reached = [
        r.headers.get("x-request-id")
        for r in system.providers.requests()
        if r.method == "POST" and asked(r.body) == question
    ]
    assert reached == [request_id]

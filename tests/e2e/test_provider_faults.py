"""A provider failing (500, 429, no answer in time): every failed answer is refunded and the user
told; a provider that keeps failing is left alone a while (the circuit breaker), then tried again.

The breaker is per provider and lives in the backend process this module shares, so each test
fails a provider of its own: ChatGPT, DeepSeek, Perplexity.
"""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.conftest import INTERNAL_TOKEN, ROOT, System, TelegramUser, running_system
from tests.e2e.test_journeys import AFTER_ANSWER, DEFAULT_ANSWER, NOTHING_CHARGED

BREAKER_FAILURES = 4
BREAKER_COOLDOWN_S = 5  # long enough that a loaded machine still sees it open
ANSWER_TIMEOUT_S = 2  # ChatGPT Instant's timeout_s in this module's catalog
TRY_ANOTHER = "You can try again or choose another model."
# The rest of the sentence says for how long ("for 3 seconds").
BREAKER_OPEN = "The service behind this model isn't answering right now, so I've paused requests"
CHOOSE_ANOTHER = "Nothing was charged — please choose another model in /model, or try again later."
FAULTS = {
    "http_500": "The model is unavailable right now.",
    "http_429": "The model is overloaded right now.",
    "slow": "The model took too long to answer.",
}


def catalog_with_short_timeout(directory: Path) -> Path:
    """The shipped catalog, with ChatGPT Instant giving up after ANSWER_TIMEOUT_S."""
    shipped = (ROOT / "backend" / "catalog.toml").read_text()
    key = 'key = "chatgpt-instant"\n'
    assert shipped.count(key) == 1
    path = directory / "catalog.toml"
    path.write_text(shipped.replace(key, f"{key}timeout_s = {ANSWER_TIMEOUT_S}\n"))
    return path


@pytest.fixture(scope="module")
async def system(
    empty_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[System]:
    """The system with a quick breaker and a quick answer timeout."""
    workdir = tmp_path_factory.mktemp("e2e-provider-faults")
    async with running_system(
        empty_database,
        workdir,
        extra_backend_env={
            "BREAKER_FAILURES": str(BREAKER_FAILURES),
            "BREAKER_COOLDOWN_S": str(BREAKER_COOLDOWN_S),
            "MODEL_CATALOG_PATH": str(catalog_with_short_timeout(workdir)),
        },
    ) as running:
        yield running


async def available(system: System, provider: str) -> bool:
    """Whether GET /models offers the provider's models now."""
    response = await system.http.get(
        f"{system.backend_url}/api/v1/models",
        headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    [entry] = [p for p in response.json()["providers"] if p["key"] == provider]
    assert all(m["available"] == entry["available"] for m in entry["models"])
    return bool(entry["available"])


async def wait_until_available(system: System, provider: str, timeout: float = 30.0) -> None:
    """Until the provider's circuit lets a request through again (after the cooldown)."""
    async with asyncio.timeout(timeout):
        while True:
            if await available(system, provider):
                return
            await asyncio.sleep(0.2)  # polling the backend's clock, as an operator would


async def fail(system: System, user: TelegramUser, flavour: str, fault: str) -> str:
    """Ask while the provider answers with `fault`; the apology's first line (checked)."""
    system.providers.script(flavour, fault=fault, slow_s=3 * ANSWER_TIMEOUT_S, retry_after_s=1)
    question = f"Will this {fault} be refunded? ({user.id}, {len(user.messages())})"
    apology = await user.ask(question)
    first, *rest = apology.text.splitlines()
    assert rest == [NOTHING_CHARGED, TRY_ANOTHER], apology.text
    assert apology.button_labels() == AFTER_ANSWER
    assert system.answer_requests(question) == {flavour: 1}
    return first


async def test_provider_500_429_and_timeout_are_each_refunded_and_told(
    system: System, user: TelegramUser
):
    told = [await fail(system, user, "openai", fault) for fault in FAULTS]

    assert told == list(FAULTS.values())
    system.reset_provider_scripts()
    # Fewer failures than BREAKER_FAILURES: the next question is answered as usual.
    assert (await user.ask(f"And now? ({user.id})")).text == DEFAULT_ANSWER
    ledger = await system.ledger(user.id)
    assert len(ledger.refunded) == len(FAULTS)
    assert len(ledger.charged) == 1
    assert ledger.free_messages_left == ledger.grants - 1


async def test_breaker_opens_after_consecutive_failures_then_lets_a_trial_through(
    system: System, user: TelegramUser
):
    await user.choose_model("DeepSeek", "Standard")
    for _ in range(BREAKER_FAILURES):
        assert await fail(system, user, "deepseek", "http_500") == FAULTS["http_500"]
    tried = len(system.providers.requests("deepseek"))

    await user.send(f"Is DeepSeek back? ({user.id})")
    refusal = await user.next_message()

    # Refused at once, pointing elsewhere; the provider was not called, nothing was reserved.
    assert refusal.text.startswith(BREAKER_OPEN), refusal.text
    assert refusal.text.endswith(CHOOSE_ANOTHER), refusal.text
    assert len(system.providers.requests("deepseek")) == tried
    assert not await available(system, "deepseek")
    assert await available(system, "chatgpt")
    ledger = await system.ledger(user.id)
    assert (len(ledger.refunded), len(ledger.charged)) == (BREAKER_FAILURES, 0)
    assert ledger.free_messages_left == ledger.grants

    # After the cooldown one request is let through; it succeeds and closes the circuit.
    await wait_until_available(system, "deepseek")
    system.reset_provider_scripts()
    trial = f"Trial after the cooldown ({user.id})"
    assert (await user.ask(trial)).text == DEFAULT_ANSWER
    assert system.answer_requests(trial) == {"deepseek": 1}
    assert (await user.ask(f"And again ({user.id})")).text == DEFAULT_ANSWER
    ledger = await system.ledger(user.id)
    assert len(ledger.charged) == 2
    assert ledger.free_messages_left == ledger.grants - 2


async def test_failed_trial_opens_the_breaker_again_at_once(system: System, user: TelegramUser):
    await user.choose_model("Perplexity", "Search")
    for _ in range(BREAKER_FAILURES):
        await fail(system, user, "perplexity", "http_500")
    await wait_until_available(system, "perplexity")

    # The one trial fails too: the circuit opens again without waiting for more failures.
    await fail(system, user, "perplexity", "http_500")
    tried = len(system.providers.requests("perplexity"))
    await user.send(f"Perplexity, please? ({user.id})")
    refusal = await user.next_message()

    assert refusal.text.startswith(BREAKER_OPEN), refusal.text
    assert len(system.providers.requests("perplexity")) == tried
    assert not await available(system, "perplexity")
    ledger = await system.ledger(user.id)
    assert (len(ledger.refunded), len(ledger.charged)) == (BREAKER_FAILURES + 1, 0)

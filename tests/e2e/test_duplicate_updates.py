"""The same update delivered five times at once — to one bot process, or spread over replicas
behind one webhook: one answer, one charge.

Replicas share their claims through the backend (PostgreSQL) or, with REDIS_URL, through Redis.
"""

import asyncio
import os
import secrets
from collections.abc import AsyncIterator

import pytest

from tests.e2e.conftest import INTERNAL_TOKEN, System, TelegramUser, free_port, running_system
from tests.e2e.replicas import redis_answers
from tests.e2e.test_journeys import DEFAULT_ANSWER

COPIES = 5
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


@pytest.fixture(scope="module")
async def system(
    empty_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[System]:
    async with running_system(empty_database, tmp_path_factory.mktemp("e2e-duplicates")) as running:
        yield running


@pytest.fixture(scope="module")
async def replicas(system: System) -> dict[str, list[str]]:
    """Two bot processes behind one webhook, by where they share claims (their URLs).

    "postgres": the module's bot and a replica, both without Redis (claims via the backend);
    "redis down": the module's bot and a replica whose REDIS_URL nobody answers (it falls back
    to the backend's claims and keeps working); "redis": two replicas with REDIS_URL (keys
    under a prefix of this run's own), if Redis runs.
    """
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    redis_env = {
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": f"pomogator-e2e-{secrets.token_hex(4)}:",
    }
    with_redis = redis_answers(REDIS_URL)
    # Started side by side: each takes seconds to import and start.
    plain, redis_down, *redis_pair = await asyncio.gather(
        system.start_bot_replica(),
        system.start_bot_replica(REDIS_URL=nobody),
        *(system.start_bot_replica(**redis_env) for _ in range(2 if with_redis else 0)),
    )
    pairs = {"postgres": [system.bot_url, plain], "redis down": [system.bot_url, redis_down]}
    if redis_pair:
        pairs["redis"] = redis_pair
    return pairs


async def deliver_copies(user: TelegramUser, question: str, bots: list[str]) -> None:
    """One update, delivered COPIES times at once, round-robin over the bots."""
    # The model takes a moment, so every copy arrives while the first is being answered.
    user.system.providers.script("openai", first_delay_s=0.5)
    update = user.telegram.message_update(user.user, question)
    statuses = await asyncio.gather(
        *(user.telegram.deliver(update, via=bots[n % len(bots)]) for n in range(COPIES))
    )
    assert statuses == [200] * COPIES


async def status_from_each(user: TelegramUser, bots: list[str]) -> list[str]:
    """/status through each bot: once each has answered, it has dealt with all it got before."""
    for bot in bots:
        status = user.telegram.message_update(user.user, "/status")
        assert await user.telegram.deliver(status, via=bot) == 200
    statuses = await user.wait(
        lambda c: c.method == "sendMessage" and c.ok and c.text.startswith("Plan:"),
        count=len(bots),
    )
    return [s.text for s in statuses]


async def test_update_delivered_five_times_at_once_is_answered_and_charged_once(
    system: System, user: TelegramUser
):
    question = f"Answer me once, however often I arrive (user {user.id})"

    await deliver_copies(user, question, [system.bot_url])

    answer = await user.next_message(lambda c: bool(c.buttons()))
    [status] = await status_from_each(user, [system.bot_url])
    assert answer.text == DEFAULT_ANSWER
    assert [m.text for m in user.messages()] == [DEFAULT_ANSWER, status]
    assert status.startswith("Plan: free — 9 of 10 messages left.")
    assert system.answer_requests(question) == {"openai": 1}
    ledger = await system.ledger(user.id)
    assert (len(ledger.charged), len(ledger.refunded)) == (1, 0)


@pytest.mark.parametrize("shared_in", ["postgres", "redis down", "redis"])
async def test_update_delivered_five_times_across_replicas_is_answered_and_charged_once(
    system: System, user: TelegramUser, replicas: dict[str, list[str]], shared_in: str
):
    if shared_in not in replicas:
        pytest.skip(f"no Redis at {REDIS_URL}")
    bots = replicas[shared_in]
    question = f"Answer me once, whichever replica I reach (user {user.id}, {shared_in})"

    await deliver_copies(user, question, bots)

    answer = await user.next_message(lambda c: bool(c.buttons()))
    statuses = await status_from_each(user, bots)
    assert answer.text == DEFAULT_ANSWER
    assert [m.text for m in user.messages()] == [DEFAULT_ANSWER, *statuses]
    assert all(s.startswith("Plan: free — 9 of 10 messages left.") for s in statuses)
    assert system.answer_requests(question) == {"openai": 1}
    ledger = await system.ledger(user.id)
    assert (len(ledger.charged), len(ledger.refunded)) == (1, 0)


async def test_same_message_posted_five_times_at_once_is_answered_once_and_never_fails(
    system: System, user: TelegramUser
):
    """What the backend does when replicas could not share a claim (Redis and the backend's
    claim both down: each processes its copy): its client message id de-duplicates."""
    await user.status()  # registered through the bot, as on first contact
    system.providers.script("openai", first_delay_s=0.5)
    question = f"Charge me once, however many replicas ask (user {user.id})"
    body = {
        "telegram_id": user.id,
        "text": question,
        "client_message_id": f"{user.id}:4242",
        "stream": False,
    }

    responses = await asyncio.gather(
        *(
            system.http.post(
                f"{system.backend_url}/api/v1/messages",
                json=body,
                headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
                timeout=30,
            )
            for _ in range(COPIES)
        )
    )

    outcomes = sorted((r.status_code, r.json().get("error", {}).get("code", "")) for r in responses)
    # One answer; the others are told it is being answered (or get that same answer again).
    assert set(outcomes) <= {(200, ""), (409, "duplicate_request")}, outcomes
    assert (200, "") in outcomes
    assert system.answer_requests(question) == {"openai": 1}
    ledger = await system.ledger(user.id)
    assert (len(ledger.charged), len(ledger.refunded)) == (1, 0)

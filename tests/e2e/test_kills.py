"""A service killed outright (SIGKILL) mid-answer: the credit the answer took comes back.

The bot killed: the backend sees its caller go and refunds at once. The backend killed: its
reservation is left pending, and the sweeper of the restarted backend refunds it once it is
older than STALE_RESERVATION_S (at least a minute; the test ages it instead of waiting).
"""

from collections.abc import AsyncIterator

import pytest

from tests.e2e.conftest import System, TelegramUser, running_system
from tests.e2e.test_journeys import DEFAULT_ANSWER
from tests.e2e.test_restarts import UNAVAILABLE

STALE_RESERVATION_S = 60  # the least the backend accepts
SLOW_ANSWER = "A long answer that takes its time to arrive, word after word. " * 4


@pytest.fixture(scope="module")
async def system(
    empty_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[System]:
    """The system with a backend that sweeps every second."""
    async with running_system(
        empty_database,
        tmp_path_factory.mktemp("e2e-kills"),
        extra_backend_env={
            "SWEEP_INTERVAL_S": "1",
            "STALE_RESERVATION_S": str(STALE_RESERVATION_S),
        },
    ) as running:
        yield running


async def start_slow_answer(system: System, user: TelegramUser) -> str:
    """Ask a question whose answer streams for seconds; back once its first words show."""
    system.providers.script("openai", text=SLOW_ANSWER, chunks=20, chunk_delay_s=0.3)
    question = f"Tell me slowly (user {user.id})"
    await user.send(question)
    await user.wait(lambda c: c.method == "sendMessageDraft" and SLOW_ANSWER.startswith(c.text))
    return question


async def test_bot_killed_mid_answer_gives_the_credit_back(restored: System, user: TelegramUser):
    system = restored
    question = await start_slow_answer(system, user)

    assert await system.kill_service("bot") == -9

    ledger = await system.ledger(user.id, until=lambda seen: bool(seen.refunded))
    assert (len(ledger.refunded), len(ledger.charged)) == (1, 0)
    assert ledger.refund_reasons == ("cancelled",)
    assert ledger.free_messages_left == ledger.grants
    await system.start_service("bot")
    system.reset_provider_scripts()
    status = await user.status()
    assert status.startswith("Plan: free — 10 of 10 messages left."), status
    assert (await user.ask(f"Are you back? (user {user.id})")).text == DEFAULT_ANSWER
    ledger = await system.ledger(user.id)
    assert (len(ledger.refunded), len(ledger.charged)) == (1, 1)
    # The half answer was never sent as a message, and it reached the model once.
    assert [m.text for m in user.messages()] == [status, DEFAULT_ANSWER]
    assert system.answer_requests(question) == {"openai": 1}


async def test_backend_killed_mid_answer_is_refunded_by_the_sweeper(
    restored: System, user: TelegramUser
):
    system = restored
    await start_slow_answer(system, user)

    assert await system.kill_service("backend") == -9

    assert (await user.next_message()).text == UNAVAILABLE
    await system.start_service("backend")
    # Younger than STALE_RESERVATION_S it may be an answer still running: left alone.
    ledger = await system.ledger(user.id)
    assert (len(ledger.refunded), len(ledger.charged)) == (0, 1)
    assert await system.age_pending_answers(user.id, 2 * STALE_RESERVATION_S) == 1
    ledger = await system.ledger(user.id, until=lambda seen: not seen.charged)
    assert (len(ledger.refunded), len(ledger.charged)) == (1, 0)
    assert ledger.refund_reasons == ("abandoned",)
    assert ledger.free_messages_left == ledger.grants
    status = await user.status()
    assert status.startswith("Plan: free — 10 of 10 messages left."), status

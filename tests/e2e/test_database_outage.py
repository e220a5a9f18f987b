"""PostgreSQL stopped and started under traffic: users are told, nobody is charged for nothing,
and both services recover by themselves — neither is restarted.

The module runs its system against a PostgreSQL server of its own (tests/e2e/postgres.py):
the shared one serves every other test and must stay up.
"""

from collections.abc import AsyncIterator

import pytest

from tests.e2e.conftest import Ledger, System, free_port, running_system
from tests.e2e.postgres import PrivatePostgres, private_postgres
from tests.e2e.test_journeys import DEFAULT_ANSWER
from tests.e2e.test_restarts import UNAVAILABLE

# The sweeper looks every second; a reservation counts as abandoned after a minute (the least
# STALE_RESERVATION_S allows). The test makes the in-flight one old rather than wait for it.
SWEEP_INTERVAL_S = "1"
STALE_RESERVATION_S = 60
SLOW_ANSWER = "Words arrive one by one while the database goes away. " * 4


@pytest.fixture(scope="module")
async def postgres() -> AsyncIterator[PrivatePostgres]:
    """A PostgreSQL server this module may stop; the shared one is never touched."""
    async with private_postgres(free_port()) as server:
        yield server


@pytest.fixture(scope="module")
async def database_of_its_own(postgres: PrivatePostgres) -> str:
    return await postgres.create_database("pomogator_outage")


@pytest.fixture(scope="module")
async def system(
    database_of_its_own: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[System]:
    """Backend and bot on the private server, sweeping often."""
    async with running_system(
        database_of_its_own,
        tmp_path_factory.mktemp("e2e-outage"),
        extra_backend_env={
            "SWEEP_INTERVAL_S": SWEEP_INTERVAL_S,
            "STALE_RESERVATION_S": str(STALE_RESERVATION_S),
            "DB_POOL_TIMEOUT_S": "3",
        },
    ) as running:
        yield running


async def test_database_outage_is_told_charges_nothing_and_recovers_without_restarts(
    system: System, postgres: PrivatePostgres
):
    pids = {s.name: s.process.pid for s in system.services}
    users = [system.new_user() for _ in range(3)]
    streaming, *others = users
    for user in users:
        assert (await user.ask(f"Hello before the outage (user {user.id})")).text == DEFAULT_ANSWER

    # Traffic: one answer is streaming when the database goes away.
    system.providers.script("openai", text=SLOW_ANSWER, chunks=16, chunk_delay_s=0.25)
    in_flight = f"A long question while the database goes (user {streaming.id})"
    await streaming.send(in_flight)
    await streaming.wait(
        lambda c: c.method == "sendMessageDraft" and SLOW_ANSWER.startswith(c.text)
    )
    await postgres.stop()

    # During the outage: a clear "try again" for everyone, known or new, and no hang.
    newcomer = system.new_user()
    outage_questions = [f"Anyone there? (user {u.id})" for u in [*others, newcomer]]
    for user, question in zip([*others, newcomer], outage_questions, strict=True):
        await user.send(question)
    for user in [*others, newcomer]:
        assert (await user.next_message()).text == UNAVAILABLE
    # The answer that was streaming ends one way or the other: delivered, or an apology.
    cut_off = (await streaming.next_message()).text
    assert cut_off in {SLOW_ANSWER, UNAVAILABLE}

    await postgres.start()
    system.reset_provider_scripts()

    # Back: answered again, by the same processes, never restarted.
    for user in [*users, newcomer]:
        answer = await user.ask(f"And after the outage? (user {user.id})")
        assert answer.text == DEFAULT_ANSWER
    assert {s.name: s.process.pid for s in system.services} == pids
    assert all(s.process.returncode is None for s in system.services)

    # An answer cut off by the outage left its charge pending; the sweeper gives it back once
    # it is old enough (made old here instead of waiting STALE_RESERVATION_S).
    if cut_off == UNAVAILABLE:
        assert await system.age_pending_answers(streaming.id, 2 * STALE_RESERVATION_S) <= 1
    for user in [*users, newcomer]:
        shown = [m for m in user.messages() if m.text in {DEFAULT_ANSWER, SLOW_ANSWER}]
        shown_count = len(shown)

        def settled(seen: Ledger, most: int = shown_count) -> bool:
            return len(seen.charged) <= most

        ledger = await system.ledger(user.id, until=settled)
        # Charged exactly for the answers the user was shown, each shown once.
        assert len(ledger.charged) == len(shown), (user.id, ledger)
        assert ledger.free_messages_left == ledger.grants - len(shown)
        assert [m.text for m in user.messages()].count(UNAVAILABLE) <= 1
    cut_off_refunds = len((await system.ledger(streaming.id)).refunded)
    assert cut_off_refunds == (1 if cut_off == UNAVAILABLE else 0)
    for question in outage_questions:
        assert system.answer_requests(question) == {}
    assert system.answer_requests(in_flight) == {"openai": 1}

"""Replicas that go away — one at a time for a deploy, or killed outright — lose nobody's
message and charge nobody twice."""

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.e2e.conftest import System, TelegramUser, asked
from tests.e2e.replicas import Cluster, running_cluster
from tests.e2e.test_journeys import DEFAULT_ANSWER
from tests.e2e.test_kills import SLOW_ANSWER, STALE_RESERVATION_S
from tests.e2e.test_restarts import UNAVAILABLE

LEASE_S = 5  # REPLICA_LEASE_S: what a killed bot replica held is given up after this long
LOST = "Sorry — I was restarted while answering this, and the answer was lost."


@pytest.fixture(scope="module")
async def cluster(
    empty_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Cluster]:
    async with running_cluster(
        empty_database,
        tmp_path_factory.mktemp("e2e-replica-failures"),
        tmp_path_factory.mktemp("nginx"),
        backend_env={"SWEEP_INTERVAL_S": "1", "STALE_RESERVATION_S": str(STALE_RESERVATION_S)},
        bot_env={"REPLICA_LEASE_S": str(LEASE_S)},
    ) as running:
        yield running


@pytest.fixture
async def system(cluster: Cluster) -> AsyncIterator[System]:
    cluster.system.reset_provider_scripts()
    yield cluster.system
    # Whatever a test stopped or killed is started again for the next.
    for name in ("backend-1", "backend-2", "bot-1", "bot-2"):
        replicas, index, _url = cluster.replica(name)
        if replicas[index].process.returncode is not None:
            await cluster.start(name)


@pytest.fixture
def user(system: System) -> TelegramUser:
    return system.new_user()


async def in_flight(url: str, metric: str, http: httpx.AsyncClient) -> float:
    """A replica's answers in flight, as its /metrics says."""
    page = (await http.get(f"{url}/metrics", timeout=5)).text
    found = re.search(rf"^{metric} (\S+)$", page, re.M)
    return float(found.group(1)) if found else 0.0


async def answering(cluster: Cluster, kind: str) -> str:
    """The replica ("bot-2", "backend-1") producing the one answer in flight."""
    metric = "pomogator_bot_answers_in_flight" if kind == "bot" else "pomogator_answers_in_flight"
    urls = cluster.bot_urls if kind == "bot" else cluster.backend_urls
    counts = [await in_flight(url, metric, cluster.system.http) for url in urls]
    assert sorted(counts) == [0.0, 1.0], counts
    return f"{kind}-{counts.index(1.0) + 1}"


async def start_slow_answer(system: System, user: TelegramUser) -> tuple[str, int]:
    """Ask a question whose answer streams for seconds; back once its first words show."""
    system.providers.script("openai", text=SLOW_ANSWER, chunks=20, chunk_delay_s=0.3)
    question = f"Tell me slowly (user {user.id})"
    message = await user.send(question)
    await user.wait(lambda c: c.method == "sendMessageDraft" and SLOW_ANSWER.startswith(c.text))
    return question, int(message["message_id"])


async def test_a_bot_replica_killed_mid_answer_leaves_the_user_told_and_refunded(
    cluster: Cluster, system: System, user: TelegramUser
):
    question, message_id = await start_slow_answer(system, user)
    killed = await answering(cluster, "bot")
    loop = asyncio.get_running_loop()

    assert await cluster.stop(killed, 9) == -9
    at = loop.time()

    # Another replica tells the user once the dead one's lease runs out, replying to the
    # question, with a button to ask it again.
    notice = await user.next_message(lambda c: c.text.startswith(LOST))
    told_after = loop.time() - at
    assert told_after <= 2 * LEASE_S, told_after
    assert notice.params["reply_parameters"]["message_id"] == message_id
    assert notice.button_labels() == ["🔁 Ask again"]
    ledger = await system.ledger(user.id, until=lambda seen: bool(seen.refunded))
    assert (len(ledger.charged), len(ledger.refunded)) == (0, 1)

    system.reset_provider_scripts()
    await user.press(notice, "🔁 Ask again")
    answer = await user.next_message(lambda c: bool(c.buttons()))

    assert answer.text == DEFAULT_ANSWER
    assert system.answer_requests(question) == {"openai": 2}
    ledger = await system.ledger(user.id)
    assert (len(ledger.charged), len(ledger.refunded)) == (1, 1)
    assert [m.text for m in user.messages()].count(notice.text) == 1  # told once


async def test_a_backend_replica_killed_mid_answer_is_refunded_by_another(
    cluster: Cluster, system: System, user: TelegramUser
):
    await start_slow_answer(system, user)
    killed = await answering(cluster, "backend")

    assert await cluster.stop(killed, 9) == -9

    assert (await user.next_message()).text == UNAVAILABLE
    # The reservation the killed backend made is left pending until it is older than
    # STALE_RESERVATION_S (it may be an answer still running); aged instead of waited for,
    # the other backend's sweeper refunds it.
    assert await system.age_pending_answers(user.id, 2 * STALE_RESERVATION_S) == 1
    ledger = await system.ledger(user.id, until=lambda seen: bool(seen.refunded))
    assert (len(ledger.charged), len(ledger.refunded)) == (0, 1)
    assert ledger.free_messages_left == ledger.grants
    # The other replica answers meanwhile.
    system.reset_provider_scripts()
    assert (await user.ask(f"Still there? (user {user.id})")).text == DEFAULT_ANSWER


async def test_a_rolling_restart_during_steady_traffic_answers_every_message_once(
    cluster: Cluster, system: System
):
    system.providers.script("openai", chunks=4, chunk_delay_s=0.25)  # a second per answer
    asked_by: dict[str, TelegramUser] = {}
    done = asyncio.Event()

    async def traffic() -> None:
        """A new person every 0.3 s asks a question, until every replica was restarted."""
        while not done.is_set():
            user = system.new_user()
            question = f"Steady question of {user.id}"
            asked_by[question] = user
            await user.send(question)
            await asyncio.sleep(0.3)

    async def roll() -> None:
        """As scripts/deploy.sh does: one replica at a time, each back before the next. nginx
        leaves a replica out for 2 s after it failed a request (fail_timeout): the next one
        goes away only once the last is in again."""
        await asyncio.sleep(2.0)
        for name in ("backend-1", "backend-2", "bot-1", "bot-2"):
            await cluster.restart(name)
            await asyncio.sleep(3.0)
        done.set()

    await asyncio.gather(traffic(), roll())

    for question, user in asked_by.items():
        [reply] = await user.wait(lambda c: c.method == "sendMessage" and c.ok, timeout=60)
        assert reply.text == DEFAULT_ANSWER, (question, reply.text)
    await asyncio.sleep(1.0)  # a late second answer would arrive by now
    reached = [asked(r.body) for r in system.providers.requests()]
    for question, user in asked_by.items():
        assert [m.text for m in user.messages()] == [DEFAULT_ANSWER]
        assert reached.count(question) == 1
        ledger = await system.ledger(user.id)
        assert (len(ledger.charged), len(ledger.refunded)) == (1, 0)
    print(f"\nrolling restart: {len(asked_by)} questions, each answered once")

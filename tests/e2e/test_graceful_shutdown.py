"""SIGTERM (a deploy, `docker compose stop`) during an answer: the answer is finished first.

Each service drains before it exits: the bot waits for the answers it is delivering
(SHUTDOWN_GRACE_S), uvicorn for the responses it is streaming; the user gets the whole answer
and is charged for it once.
"""

from tests.e2e.conftest import System, TelegramUser

SLOW = "Every word of this answer arrives while the service is being stopped. "


async def ask_slowly(system: System, user: TelegramUser) -> None:
    system.providers.script("openai", text=SLOW * 3, chunks=6, chunk_delay_s=0.5)
    await user.send(f"Tell me something slowly (user {user.id})")
    # The answer has started streaming into a draft.
    await user.next_shown("sendMessageDraft", predicate=lambda c: SLOW[:20] in c.text)


async def test_bot_stopped_mid_answer_finishes_it_before_exiting(
    system: System, user: TelegramUser
):
    await ask_slowly(system, user)

    code = await system.stop_service("bot")

    assert code == 0
    final = [c for c in user.messages() if c.text.strip() == (SLOW * 3).strip()]
    assert len(final) == 1
    await system.start_service("bot")
    ledger = await system.ledger(user.id)
    assert (ledger.free_messages_left, len(ledger.charged), len(ledger.refunded)) == (9, 1, 0)


async def test_backend_stopped_mid_answer_finishes_streaming_it_first(
    system: System, user: TelegramUser
):
    await ask_slowly(system, user)

    await system.stop_service("backend")

    final = await user.next_message(lambda c: c.text.strip() == (SLOW * 3).strip())
    assert final.buttons()
    await system.start_service("backend")
    ledger = await system.ledger(user.id)
    assert (ledger.free_messages_left, len(ledger.charged), len(ledger.refunded)) == (9, 1, 0)

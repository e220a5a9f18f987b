"""A free user sends 25 messages at once: nothing lost, nothing answered past the free ten."""

import asyncio

from tests.e2e.conftest import System, TelegramUser, asked
from tests.e2e.test_journeys import AFTER_ANSWER, DEFAULT_ANSWER
from tests.fakes.telegram import utf16_len

BURST = 25
FREE = 10
BUSY = "I'm still answering your previous messages — please wait a moment."
PAYWALL = "You've used all 10 free messages."
# The bot sends at most one message a second to a chat (Telegram's limit), so 25 replies
# take about 25 s.
REPLIES_TIMEOUT_S = 60.0


async def test_burst_of_messages_gets_a_reply_each_and_at_most_ten_answers(
    system: System, user: TelegramUser
):
    questions = [f"Burst question {n} from {user.id}" for n in range(1, BURST + 1)]
    updates = [user.telegram.message_update(user.user, q) for q in questions]
    message_ids = {u["message"]["text"]: u["message"]["message_id"] for u in updates}

    statuses = await asyncio.gather(
        *(system.telegram.deliver(u, via=system.bot_url) for u in updates)
    )

    assert statuses == [200] * BURST
    replies = await user.wait(
        lambda c: c.method == "sendMessage" and c.ok, count=BURST, timeout=REPLIES_TIMEOUT_S
    )
    # Messages are answered one at a time, in order: once /status is answered, every message
    # of the burst has been dealt with, and any late or extra reply would show up before it.
    status = await user.status()
    replies = [m for m in user.messages() if not m.text.startswith("Plan:")]
    assert len(replies) == BURST, [m.text[:40] for m in replies]

    answers = [m for m in replies if m.text == DEFAULT_ANSWER]
    paywalls = [m for m in replies if m.text.startswith(PAYWALL)]
    notices = [m for m in replies if m.text == BUSY]
    assert len(answers) + len(paywalls) + len(notices) == BURST, [m.text for m in replies]
    assert all(m.button_labels() == AFTER_ANSWER for m in answers)
    assert all("⭐ VIP" in m.button_labels() for m in paywalls)

    # Which messages reached a model: each one answered once, at most ten in all.
    reached = [asked(r.body) for r in system.providers.requests() if asked(r.body) in message_ids]
    assert len(reached) == len(set(reached)) == len(answers) <= FREE
    assert len(answers) >= 1
    # Each answer streamed into a draft of its own question's message.
    drafts = {c.params["draft_id"] for c in user.calls("sendMessageDraft")}
    assert drafts == {message_ids[q] for q in reached}
    # Nothing was charged for a message that got no answer.
    assert status.startswith(f"Plan: free — {FREE - len(answers)} of {FREE} messages left.")

    shown = user.calls("sendMessage", "sendMessageDraft", "editMessageText")
    assert all(c.ok for c in shown), [(c.method, c.description) for c in shown if not c.ok]
    assert max(utf16_len(c.text) for c in shown) <= 4096
    kinds = "".join("A" if m in answers else "P" if m in paywalls else "b" for m in replies)
    print(
        f"\nburst: {len(answers)} answers, {len(paywalls)} paywalls, {len(notices)} busy notices"
        f" in this order: {kinds}; the last {replies[-1].time - replies[0].time:.1f} s after"
        " the first"
    )

"""An operator at work, with the services as processes: a user's card, VIP, blocking, and a
broadcast that survives a restart of the bot."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.e2e.conftest import INTERNAL_TOKEN, System, TelegramUser, running_system
from tests.fakes.telegram import Call, FakeTelegram

ADMIN_ID = 6_000_000_001
SUSPENDED = "Your access to Pomogator has been suspended by its operators."


def accept_copies(telegram: FakeTelegram) -> None:
    """copyMessage, which this fake does not know yet: a new message id in the target chat."""

    async def copy_message(params: dict[str, Any]) -> dict[str, Any]:
        chat = telegram._chat(params)
        return {"message_id": telegram._next_message_id(chat["id"])}

    telegram._handlers["copyMessage"] = copy_message


@pytest.fixture(scope="module")
async def system(
    empty_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[System]:
    admins = {"ADMIN_IDS": str(ADMIN_ID)}
    async with running_system(
        empty_database,
        tmp_path_factory.mktemp("e2e-admin"),
        extra_backend_env=admins,
        extra_bot_env={**admins, "BROADCAST_PER_SECOND": "10"},
    ) as running:
        accept_copies(running.telegram)
        yield running


@pytest.fixture
def admin(system: System) -> TelegramUser:
    return TelegramUser(system, ADMIN_ID)


async def admin_api(system: System, method: str, path: str) -> Any:
    response = await system.http.request(
        method,
        f"{system.backend_url}/api/v1/admin{path}",
        headers={"Authorization": f"Bearer {INTERNAL_TOKEN}", "X-Admin-Id": str(ADMIN_ID)},
    )
    response.raise_for_status()
    return response.json()


async def test_operator_grants_vip_then_blocks_and_unblocks(system, admin, user):
    await user.send("/start")
    await user.next_message()
    await admin.send(f"/find {user.id}")
    card = await admin.next_message(lambda c: c.text.startswith("👤"))
    assert f"id {user.id}" in card.text
    await admin.press(card, "⭐ +30 days")
    edited = await admin.next_edit()
    assert "⭐ VIP until" in edited.text
    assert (await admin_api(system, "GET", f"/users/lookup?q={user.id}"))["vip_until"]

    await admin.send(f"/block {user.id}")
    await admin.next_message(lambda c: c.text.startswith("⛔ Blocked"))
    await user.send("Are you there?")
    refused = await user.next_message()
    assert refused.text.startswith(SUSPENDED)
    assert not any(system.answer_requests("Are you there?").values())

    await admin.send(f"/unblock {user.id}")
    await admin.next_message(lambda c: c.text.startswith("✅ Unblocked"))
    assert not (await admin_api(system, "GET", f"/users/lookup?q={user.id}"))["blocked"]


async def test_broadcast_goes_on_after_a_bot_restart_and_reaches_everyone_once(
    restored: System, admin: TelegramUser
):
    system = restored
    # More than one batch (25), so a stop falls between batches.
    people = [system.new_user() for _ in range(40)]
    for person in people:
        await person.send("/start")
        await person.next_message()
    await admin.send("/broadcast all")
    prompt = await admin.next_message(lambda c: c.text.startswith("📣 Broadcast to all users"))
    news = system.telegram.message_update(admin.user, "Big news for everyone")
    news["message"]["reply_to_message"] = prompt.result
    await admin.deliver(news)
    preview = await admin.next_message(lambda c: c.text.startswith("☝️"))
    total = (await admin_api(system, "GET", "/broadcasts/audience?audience=all"))["count"]
    assert preview.text == f"☝️ This goes to {total} users. Send it?"
    await admin.press(preview, "✅ Send")

    def copied(call: Call) -> bool:
        return call.method == "copyMessage" and call.ok and call.chat_id != ADMIN_ID

    # Stopped part-way (10 copies a second): the batch in hand is finished and reported.
    await system.telegram.wait_for(copied, count=3, timeout=30)
    assert await system.stop_service("bot") == 0
    [running] = await admin_api(system, "GET", "/broadcasts?status=running")
    assert 0 < running["delivered"] < total
    await system.start_service("bot")

    async def ended() -> dict[str, Any]:
        while True:
            [broadcast] = [
                b for b in await admin_api(system, "GET", "/broadcasts") if b["id"] == running["id"]
            ]
            if broadcast["status"] != "running":
                return broadcast
            await asyncio.sleep(0.2)

    done = await asyncio.wait_for(ended(), timeout=60)
    assert (done["status"], done["delivered"]) == ("done", total)
    copies = Counter(c.chat_id for c in system.telegram.calls() if copied(c))
    assert all(copies[person.id] == 1 for person in people)
    assert max(copies.values()) == 1
    report = await admin.next_message(lambda c: c.text.startswith(f"✅ Broadcast #{done['id']}"))
    assert f"delivered {total}" in report.text


async def test_admin_api_refuses_without_an_operator_id(system):
    response = await system.http.get(
        f"{system.backend_url}/api/v1/admin/stats",
        headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"

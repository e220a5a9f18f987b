"""Broadcasts through the operators' API: audiences, leased batches, idempotent progress."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from backend.models.database import AdminAction, Subscription, User
from backend.tests.fixtures import register

ADMIN = 900_000_002
BROADCASTS = "/api/v1/admin/broadcasts"


@pytest.fixture
def admin(app, client, settings):
    app.state.settings = settings.model_copy(update={"admin_ids": frozenset({ADMIN})})
    client.headers.update({"X-Admin-Id": str(ADMIN)})
    return client


@pytest.fixture
async def people(session, settings, catalog, clock) -> dict[str, list[int]]:
    """Five users who can receive a broadcast (two VIP, three free) and two who cannot.

    Everyone else in the database is put out of reach for this test (rolled back after it).
    """
    ids = [await register(session, settings, catalog) for _ in range(7)]
    vip, free, blocked, blocking = ids[:2], ids[2:5], ids[5], ids[6]
    await session.execute(
        update(User).where(User.telegram_id.not_in(ids)).values(bot_blocked_at=clock.now)
    )
    await session.execute(
        update(User).where(User.telegram_id == blocked).values(blocked_at=clock.now)
    )
    await session.execute(
        update(User).where(User.telegram_id == blocking).values(bot_blocked_at=clock.now)
    )
    for telegram_id in [*vip, blocked]:
        user_id = await session.scalar(select(User.id).where(User.telegram_id == telegram_id))
        session.add(
            Subscription(user_id=user_id, status="active", expires_at=clock.now + timedelta(days=5))
        )
    await session.flush()
    return {"vip": vip, "free": free, "all": sorted(vip + free)}


async def create(admin, audience: str = "all") -> dict:
    response = await admin.post(
        BROADCASTS, json={"audience": audience, "from_chat_id": ADMIN, "message_id": 77}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def batch(admin, broadcast_id: int, limit: int = 2, lease_seconds: int = 60):
    return await admin.post(
        f"{BROADCASTS}/{broadcast_id}/batch", json={"limit": limit, "lease_seconds": lease_seconds}
    )


async def progress(admin, broadcast_id: int, cursor: int, **counts) -> dict:
    response = await admin.post(
        f"{BROADCASTS}/{broadcast_id}/progress", json={"cursor": cursor, **counts}
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("audience", ["all", "vip", "free"])
async def test_audience_counts_who_would_receive_it(admin, people, audience):
    response = await admin.get(f"{BROADCASTS}/audience", params={"audience": audience})
    assert response.json() == {"audience": audience, "count": len(people[audience])}


async def test_new_broadcast_counts_its_recipients_and_is_audited(admin, people, session):
    broadcast = await create(admin, "free")
    assert {k: broadcast[k] for k in ("audience", "status", "total", "cursor")} == {
        "audience": "free",
        "status": "running",
        "total": 3,
        "cursor": 0,
    }
    assert (broadcast["from_chat_id"], broadcast["message_id"]) == (ADMIN, 77)
    assert broadcast["admin_telegram_id"] == ADMIN
    assert (broadcast["delivered"], broadcast["blocked"], broadcast["failed"]) == (0, 0, 0)
    audited = await session.scalar(
        select(func.count()).where(
            AdminAction.action == "broadcast",
            AdminAction.detail["broadcast_id"].as_integer() == broadcast["id"],
        )
    )
    assert audited == 1


async def test_unknown_audience_is_refused(admin, people):
    response = await admin.post(
        BROADCASTS, json={"audience": "everyone", "from_chat_id": ADMIN, "message_id": 77}
    )
    assert response.status_code == 422


async def test_batches_walk_the_recipients_in_order_once(admin, people):
    broadcast = await create(admin)
    sent: list[int] = []
    while True:
        response = await batch(admin, broadcast["id"])
        assert response.status_code == 200, response.text
        recipients = response.json()["recipients"]
        if not recipients:
            break
        assert len(recipients) <= 2
        assert response.json()["broadcast"]["cursor"] < recipients[0]  # the cursor did not move
        sent += recipients
        progress_body = await progress(
            admin, broadcast["id"], recipients[-1], delivered=len(recipients)
        )
        assert progress_body["cursor"] == recipients[-1]
    assert sent == people["all"]
    done = await admin.post(f"{BROADCASTS}/{broadcast['id']}/finish")
    assert (done.json()["status"], done.json()["delivered"]) == ("done", 5)
    assert done.json()["finished_at"] is not None


@pytest.mark.parametrize("audience", ["vip", "free"])
async def test_batch_reaches_only_its_audience(admin, people, audience):
    broadcast = await create(admin, audience)
    response = await batch(admin, broadcast["id"], limit=500)
    assert response.json()["recipients"] == people[audience]


async def test_a_replayed_progress_report_counts_once(admin, people):
    broadcast = await create(admin)
    recipients = (await batch(admin, broadcast["id"], limit=3)).json()["recipients"]
    first = await progress(admin, broadcast["id"], recipients[1], delivered=1, failed=1)
    replay = await progress(admin, broadcast["id"], recipients[1], delivered=1, failed=1)
    behind = await progress(admin, broadcast["id"], recipients[0], delivered=1)
    assert first == replay == behind
    assert (first["cursor"], first["delivered"], first["failed"]) == (recipients[1], 1, 1)
    after = await progress(admin, broadcast["id"], recipients[2], blocked=1)
    assert (after["delivered"], after["blocked"], after["failed"]) == (1, 1, 1)


async def test_a_second_runner_is_refused_while_the_lease_holds(admin, people, clock):
    broadcast = await create(admin)
    first = (await batch(admin, broadcast["id"], lease_seconds=60)).json()
    refused = await batch(admin, broadcast["id"])
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "broadcast_leased"
    # A report inside the batch keeps the lease; one reaching its end gives it back.
    await progress(admin, broadcast["id"], first["recipients"][0], delivered=1)
    assert (await batch(admin, broadcast["id"])).status_code == 409
    await progress(admin, broadcast["id"], first["recipients"][1], delivered=1)
    following = (await batch(admin, broadcast["id"])).json()["recipients"]
    assert following == people["all"][2:4]


async def test_an_expired_lease_lets_a_new_runner_resume_after_the_cursor(admin, people, clock):
    broadcast = await create(admin)
    first = (await batch(admin, broadcast["id"], limit=3, lease_seconds=30)).json()["recipients"]
    await progress(admin, broadcast["id"], first[0], delivered=1)  # then the runner died
    clock.advance(timedelta(seconds=31))
    resumed = await batch(admin, broadcast["id"], limit=500)
    assert resumed.status_code == 200
    assert resumed.json()["recipients"] == people["all"][1:]


async def test_canceled_broadcast_gives_no_more_recipients(admin, people, session):
    broadcast = await create(admin)
    canceled = await admin.post(f"{BROADCASTS}/{broadcast['id']}/cancel")
    assert canceled.json()["status"] == "canceled"
    response = await batch(admin, broadcast["id"])
    assert response.status_code == 200
    assert response.json()["recipients"] == []
    assert response.json()["broadcast"]["status"] == "canceled"
    finished = await admin.post(f"{BROADCASTS}/{broadcast['id']}/finish")
    assert finished.json()["status"] == "canceled"  # an ending is final


async def test_broadcasts_are_listed_by_status(admin, people):
    running = await create(admin)
    ended = await create(admin, "vip")
    await admin.post(f"{BROADCASTS}/{ended['id']}/finish")
    listed = (await admin.get(BROADCASTS, params={"status": "running"})).json()
    assert running["id"] in [b["id"] for b in listed]
    assert ended["id"] not in [b["id"] for b in listed]
    assert {b["status"] for b in listed} == {"running"}
    everything = (await admin.get(BROADCASTS)).json()
    assert {running["id"], ended["id"]} <= {b["id"] for b in everything}


async def test_who_blocked_the_bot_is_left_out_until_they_return(admin, people, session):
    broadcast = await create(admin, "free")
    recipients = (await batch(admin, broadcast["id"], limit=500)).json()["recipients"]
    gone = recipients[0]
    await progress(
        admin, broadcast["id"], recipients[-1], delivered=2, blocked=1, blocked_ids=[gone]
    )
    card = (await admin.get("/api/v1/admin/users/lookup", params={"q": str(gone)})).json()
    assert card["bot_blocked"] is True
    count = await admin.get(f"{BROADCASTS}/audience", params={"audience": "free"})
    assert count.json()["count"] == 2
    await admin.post("/api/v1/users", json={"telegram_id": gone})  # they wrote to the bot again
    count = await admin.get(f"{BROADCASTS}/audience", params={"audience": "free"})
    assert count.json()["count"] == 3


@pytest.mark.parametrize("action", ["batch", "progress", "finish", "cancel"])
async def test_unknown_broadcast_is_404(admin, action):
    body = {"batch": {"limit": 1}, "progress": {"cursor": 5}}.get(action, {})
    response = await admin.post(f"{BROADCASTS}/987654321/{action}", json=body)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "broadcast_not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": 10, "lease_seconds": 0},
        {"lease_seconds": 10},
    ],
)
async def test_batch_size_is_bounded(admin, people, body):
    broadcast = await create(admin)
    response = await admin.post(f"{BROADCASTS}/{broadcast['id']}/batch", json=body)
    assert response.status_code == 422

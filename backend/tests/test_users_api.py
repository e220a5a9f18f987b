"""Registration, the profile and the user's choices over the HTTP API."""

from datetime import datetime

from sqlalchemy import func, select

from backend.models.database import CreditHistory, User
from backend.tests.fixtures import next_telegram_id


def profile_body(telegram_id: int, **extra: object) -> dict[str, object]:
    return {
        "telegram_id": telegram_id,
        "username": "anna",
        "first_name": "Anna",
        "last_name": "K",
        "language_code": "ru",
        **extra,
    }


async def test_first_contact_registers_user_with_ten_free_messages(client):
    telegram_id = next_telegram_id()
    response = await client.post("/api/v1/users", json=profile_body(telegram_id))
    assert response.status_code == 201
    body = response.json()
    assert body["telegram_id"] == telegram_id
    assert body["free_messages_left"] == 10
    assert body["free_messages_limit"] == 10
    assert body["is_vip"] is False


async def test_registration_is_idempotent(client, session):
    telegram_id = next_telegram_id()
    first = await client.post("/api/v1/users", json=profile_body(telegram_id))
    second = await client.post(
        "/api/v1/users", json=profile_body(telegram_id, username="anna_new", first_name="Anya")
    )
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["username"] == "anna_new"
    assert second.json()["free_messages_left"] == 10
    users = await session.scalar(
        select(func.count()).select_from(User).where(User.telegram_id == telegram_id)
    )
    grants = await session.scalar(
        select(func.count())
        .select_from(CreditHistory)
        .join(User, User.id == CreditHistory.user_id)
        .where(User.telegram_id == telegram_id, CreditHistory.kind == "grant")
    )
    assert (users, grants) == (1, 1)


async def test_profile_has_every_field_the_bot_shows(client):
    telegram_id = next_telegram_id()
    await client.post("/api/v1/users", json=profile_body(telegram_id))
    response = await client.get(f"/api/v1/users/{telegram_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["telegram_id"] == telegram_id
    assert body["username"] == "anna"
    assert body["language"] == "ru"
    assert body["is_vip"] is False
    assert body["vip_expires_at"] is None
    assert body["free_messages_left"] == 10
    assert body["free_messages_limit"] == 10
    assert body["provider"] == "chatgpt"
    assert body["model"] == "chatgpt-instant"
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None


async def test_language_follows_telegram_on_first_contact(client):
    english = await client.post(
        "/api/v1/users", json=profile_body(next_telegram_id(), language_code="en-GB")
    )
    unknown = await client.post(
        "/api/v1/users", json=profile_body(next_telegram_id(), language_code=None)
    )
    assert english.json()["language"] == "en"
    assert unknown.json()["language"] == "en"


async def test_refresh_keeps_the_language_the_user_chose(client):
    telegram_id = next_telegram_id()
    await client.post("/api/v1/users", json=profile_body(telegram_id, language_code="ru"))
    await client.patch(f"/api/v1/users/{telegram_id}", json={"language": "en"})
    again = await client.post("/api/v1/users", json=profile_body(telegram_id, language_code="ru"))
    assert again.json()["language"] == "en"


async def test_unknown_user_is_404_with_error_body(client):
    response = await client.get("/api/v1/users/1")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "user_not_found"
    assert response.json()["error"]["message"]


async def test_model_change_is_saved_with_its_provider(client):
    telegram_id = next_telegram_id()
    await client.post("/api/v1/users", json=profile_body(telegram_id))
    response = await client.patch(
        f"/api/v1/users/{telegram_id}", json={"model": "deepseek-thinking"}
    )
    assert response.status_code == 200
    assert (response.json()["provider"], response.json()["model"]) == (
        "deepseek",
        "deepseek-thinking",
    )
    again = await client.get(f"/api/v1/users/{telegram_id}")
    assert again.json()["model"] == "deepseek-thinking"


async def test_every_catalog_model_can_be_chosen(client, catalog):
    telegram_id = next_telegram_id()
    await client.post("/api/v1/users", json=profile_body(telegram_id))
    chosen = []
    for entry in catalog.models:
        response = await client.patch(
            f"/api/v1/users/{telegram_id}", json={"provider": entry.provider, "model": entry.key}
        )
        chosen.append((response.status_code, response.json()["model"]))
    assert chosen == [(200, entry.key) for entry in catalog.models]
    assert len(chosen) == 8


async def test_choosing_a_provider_alone_picks_its_first_model(client):
    telegram_id = next_telegram_id()
    await client.post("/api/v1/users", json=profile_body(telegram_id))
    response = await client.patch(f"/api/v1/users/{telegram_id}", json={"provider": "perplexity"})
    assert response.json()["model"] == "perplexity-search"


async def test_unknown_model_is_refused(client):
    telegram_id = next_telegram_id()
    await client.post("/api/v1/users", json=profile_body(telegram_id))
    response = await client.patch(f"/api/v1/users/{telegram_id}", json={"model": "gpt-2"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_model"
    profile = await client.get(f"/api/v1/users/{telegram_id}")
    assert profile.json()["model"] == "chatgpt-instant"


async def test_model_of_another_provider_is_refused(client):
    telegram_id = next_telegram_id()
    await client.post("/api/v1/users", json=profile_body(telegram_id))
    response = await client.patch(
        f"/api/v1/users/{telegram_id}",
        json={"provider": "perplexity", "model": "deepseek-standard"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_model"


async def test_unsupported_language_is_a_validation_error(client):
    telegram_id = next_telegram_id()
    await client.post("/api/v1/users", json=profile_body(telegram_id))
    response = await client.patch(f"/api/v1/users/{telegram_id}", json={"language": "de"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_empty_update_is_a_validation_error(client):
    telegram_id = next_telegram_id()
    await client.post("/api/v1/users", json=profile_body(telegram_id))
    response = await client.patch(f"/api/v1/users/{telegram_id}", json={})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_update_of_unknown_user_is_404(client):
    response = await client.patch(f"/api/v1/users/{next_telegram_id()}", json={"language": "en"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "user_not_found"

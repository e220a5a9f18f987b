"""Bad input gets a clear 4xx error in the one error shape, never a 500."""

import pytest

from backend.tests.fixtures import next_telegram_id

BAD_REQUESTS = [
    ("get", "/api/v1/users/99999999999999999999", None, 422),
    ("get", "/api/v1/users/0", None, 422),
    ("get", "/api/v1/users/-5", None, 422),
    ("get", "/api/v1/users/abc", None, 422),
    ("get", "/api/v1/credits/abc", None, 422),
    ("get", "/api/v1/credits/1?limit=100000", None, 422),
    ("get", "/api/v1/trial/1.5", None, 422),
    ("post", "/api/v1/users", {"telegram_id": 2**63}, 422),
    ("post", "/api/v1/users", {"telegram_id": "x"}, 422),
    ("post", "/api/v1/users", {"telegram_id": 5, "username": "a\x00b"}, 422),
    ("post", "/api/v1/users", {"telegram_id": 5, "first_name": "x" * 257}, 422),
    ("post", "/api/v1/users", {"telegram_id": 5, "unexpected": 1}, 422),
    ("post", "/api/v1/users", [1, 2, 3], 422),
    ("patch", "/api/v1/users/5", {"model": "\x00"}, 422),
    ("get", "/api/v1/nowhere", None, 404),
    ("delete", "/api/v1/users/5", None, 405),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD_REQUESTS)
async def test_bad_request_gets_error_shape(client, method, path, body, status):
    response = await client.request(method, path, json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] and error["message"]


async def test_malformed_json_is_a_validation_error(client):
    response = await client.post(
        "/api/v1/users", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_validation_error_says_which_field(client):
    response = await client.post(
        "/api/v1/users", json={"telegram_id": next_telegram_id(), "username": "x" * 100}
    )
    locations = [detail["loc"] for detail in response.json()["error"]["details"]]
    assert ["body", "username"] in locations

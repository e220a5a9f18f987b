"""Every failure the SDK, the transport or the payload can raise becomes one ProviderError."""

import asyncio
import json

import httpx2
import openai
import pydantic
import pytest

from backend.services.providers.base import (
    ContentRefused,
    ContextTooLong,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from backend.services.providers.errors import Deadline, map_openai_error

REQUEST = httpx2.Request("POST", "https://api.example.test/v1/responses")


STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    402: openai.APIStatusError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    429: openai.RateLimitError,
    503: openai.InternalServerError,
}


def status_error(status: int, code: str | None = None, message: str = "failed") -> openai.APIError:
    """What the SDK raises for an HTTP error: the class by status, `body` the inner error."""
    error = {"message": message, "type": "invalid_request_error", "code": code}
    response = httpx2.Response(status, json={"error": error}, request=REQUEST)
    return STATUS_ERRORS[status](f"Error code: {status} - {message}", response=response, body=error)


def validation_error() -> pydantic.ValidationError:
    class Shape(pydantic.BaseModel):
        n: int

    try:
        Shape.model_validate({"n": "many"})
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("validation passed")


def case_id(value: object) -> str:
    if isinstance(value, type):
        return value.__name__
    name = type(value).__name__
    if isinstance(value, openai.APIStatusError):
        name = f"{name}{value.status_code}"
    code = getattr(value, "code", None)
    return f"{name}:{code}" if isinstance(code, str) else name


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (openai.APITimeoutError(request=REQUEST), ProviderTimeout),
        (TimeoutError(), ProviderTimeout),
        (openai.APIConnectionError(request=REQUEST), ProviderUnavailable),
        (status_error(401, "invalid_api_key"), ProviderUnavailable),
        (status_error(402, None, "Insufficient Balance"), ProviderUnavailable),
        (status_error(403), ProviderUnavailable),
        (status_error(404, "model_not_found"), ProviderUnavailable),
        (status_error(503), ProviderUnavailable),
        (status_error(429, "rate_limit_exceeded"), ProviderRateLimited),
        (status_error(400, "context_length_exceeded"), ContextTooLong),
        (status_error(400, None, "This model's maximum context length is 65536"), ContextTooLong),
        (status_error(400, "content_policy_violation"), ContentRefused),
        (status_error(400, "invalid_request_error", "Content Exists Risk"), ContentRefused),
        (status_error(400, "invalid_value"), ProviderError),
        (status_error(409), ProviderError),
        (
            openai.APIError("stream failed", REQUEST, body={"code": "server_error"}),
            ProviderUnavailable,
        ),
        (openai.APIError("stream failed", REQUEST, body={"code": "weird"}), ProviderError),
        (json.JSONDecodeError("Expecting value", "{", 1), ProviderError),
        (validation_error(), ProviderError),
        (httpx2.RemoteProtocolError("peer closed connection"), ProviderError),
        (httpx2.DecodingError("bad gzip"), ProviderError),
    ],
    ids=case_id,
)
def test_failure_maps_to_the_matching_provider_error(exc, error):
    assert type(map_openai_error(exc)) is error


def test_rate_limit_keeps_the_servers_retry_delay():
    response = httpx2.Response(
        429,
        json={"error": {"code": "rate_limit_exceeded"}},
        headers={"retry-after": "12"},
        request=REQUEST,
    )
    exc = openai.RateLimitError(
        "slow down", response=response, body={"code": "rate_limit_exceeded"}
    )

    assert map_openai_error(exc).details["retry_after_s"] == 12


async def test_deadline_turns_a_transport_error_into_a_provider_error():
    async def broken() -> None:
        raise httpx2.ReadError("connection reset")

    with pytest.raises(ProviderError) as caught:
        await Deadline(1.0).run(broken())

    assert isinstance(caught.value.__cause__, httpx2.ReadError)


async def test_deadline_stops_a_step_that_outlives_it():
    with pytest.raises(ProviderTimeout):
        await Deadline(0.05).run(asyncio.sleep(5))

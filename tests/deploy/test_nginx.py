"""Through the real nginx, with the project's configuration: what the internet can reach."""

import asyncio
import itertools
import json
import secrets
import ssl
import sys
import warnings
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.deploy.conftest import (
    INTERNAL_TOKEN,
    ROOT,
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    Nginx,
    Stack,
    access_log_lines,
    free_port,
    service_env,
    start_nginx,
)

_user_ids = itertools.count(8_000_000_000 + secrets.randbelow(10**6) * 1000)


@pytest.fixture
async def https(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.client() as client:
        yield client


def start_update(stack: Stack, user_id: int) -> dict[str, object]:
    """A Telegram Update of a user writing /start, as Telegram would deliver it."""
    return stack.telegram.message_update(stack.telegram.user(user_id, "Olga"), "/start")


async def deliver(
    client: httpx.AsyncClient, stack: Stack, update: dict[str, object], secret: str | None
) -> httpx.Response:
    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    return await client.post(f"{stack.nginx.https}{WEBHOOK_PATH}", json=update, headers=headers)


async def test_an_update_over_https_reaches_the_bot_and_is_answered(stack, https):
    user_id = next(_user_ids)
    response = await deliver(https, stack, start_update(stack, user_id), WEBHOOK_SECRET)
    assert response.status_code == 200
    [welcome] = await stack.telegram.wait_for(
        lambda c: c.method == "sendMessage" and c.chat_id == user_id, timeout=15
    )
    assert welcome.ok and welcome.text


async def test_the_bot_registered_the_https_address_and_uploaded_the_certificate(stack):
    [call] = stack.telegram.calls("setWebhook")
    assert call.params["url"] == f"{stack.nginx.https}{WEBHOOK_PATH}"
    assert call.params["secret_token"] == WEBHOOK_SECRET
    # Uploaded as multipart: the field names the part holding the file.
    attached = call.params["certificate"].removeprefix("attach://")
    assert call.params[attached] == {
        "file_name": "fullchain.pem",
        "size": stack.nginx.cert.stat().st_size,
    }


@pytest.mark.parametrize("secret", ["wrong-secret-0123456789", None], ids=["wrong", "missing"])
async def test_a_wrong_or_missing_secret_is_refused(stack, https, secret):
    user_id = next(_user_ids)
    response = await deliver(https, stack, start_update(stack, user_id), secret)
    assert response.status_code == 401
    await asyncio.sleep(0.3)  # the bot would have answered /start by now
    assert stack.telegram.calls(chat_id=user_id) == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/users/1"),
        ("POST", "/api/v1/users"),
        ("GET", "/api/v1/models"),
        ("GET", "/health"),
        ("GET", "/docs"),
        ("GET", "/"),
        ("POST", f"{WEBHOOK_PATH}/extra"),
        ("POST", "/api/v1/webhooks/payments/extra"),
        ("GET", "/telegram/../api/v1/users/1"),
    ],
)
async def test_nothing_but_the_two_webhooks_is_reachable(stack, https, method, path):
    # Even with the internal token, the API is not public.
    response = await https.request(
        method,
        f"{stack.nginx.https}{path}",
        headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
        json={"telegram_id": 1} if method == "POST" else None,
    )
    assert response.status_code == 404
    assert "error" not in response.text  # nginx's own page: the backend never saw it


async def test_the_payment_webhook_reaches_the_backend(stack, https):
    response = await https.post(
        f"{stack.nginx.https}/api/v1/webhooks/payments",
        content=b'{"event_id": "evt-1"}',
        headers={"Content-Type": "application/json"},
    )
    # The backend's own answer to an unsigned event.
    assert response.status_code == 401
    assert response.json()["error"]["code"]


async def test_the_webhook_answers_only_post(stack, https):
    response = await https.get(f"{stack.nginx.https}{WEBHOOK_PATH}")
    assert response.status_code == 405


async def test_an_oversized_update_is_refused_before_the_bot(stack, https):
    body = b'{"update_id": 1, "padding": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = await https.post(
        f"{stack.nginx.https}{WEBHOOK_PATH}",
        content=body,
        headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
    )
    assert response.status_code == 413


async def test_the_second_https_port_serves_the_same_routes(stack, https):
    base = f"https://127.0.0.1:{stack.nginx.alt_https_port}"
    hook = await https.post(f"{base}{WEBHOOK_PATH}", json={"update_id": 1})
    api = await https.get(f"{base}/api/v1/users/1")
    assert (hook.status_code, api.status_code) == (401, 404)


async def test_plain_http_is_redirected_to_https(stack):
    async with httpx.AsyncClient() as plain:
        response = await plain.post(
            f"http://127.0.0.1:{stack.nginx.http_port}{WEBHOOK_PATH}", json={"update_id": 1}
        )
    assert response.status_code == 301
    assert response.headers["location"] == f"https://127.0.0.1{WEBHOOK_PATH}"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_tls_1_2_and_1_3_are_served_with_hsts(stack, version):
    context = stack.nginx.trust()
    context.minimum_version = context.maximum_version = version
    async with httpx.AsyncClient(verify=context) as client:
        response = await client.get(f"{stack.nginx.https}/")
    assert response.status_code == 404
    assert (
        response.extensions["network_stream"].get_extra_info("ssl_object").version()
        == {
            ssl.TLSVersion.TLSv1_2: "TLSv1.2",
            ssl.TLSVersion.TLSv1_3: "TLSv1.3",
        }[version]
    )
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_tls_1_1_is_refused(stack):
    context = stack.nginx.trust()
    try:
        with warnings.catch_warnings():  # deprecated: which is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that only the server can refuse
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot offer TLS 1.1 at all")
    async with httpx.AsyncClient(verify=context) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{stack.nginx.https}/")


async def test_the_access_log_records_requests_but_never_the_secret(stack, https):
    user_id = next(_user_ids)
    wrong = "wrong-secret-" + secrets.token_hex(12)
    assert (await deliver(https, stack, start_update(stack, user_id), WEBHOOK_SECRET)).is_success
    assert (await deliver(https, stack, start_update(stack, user_id), wrong)).status_code == 401
    await asyncio.sleep(0.2)  # nginx writes the line once the answer is sent
    statuses = [line for line in access_log_lines(stack.nginx, WEBHOOK_PATH)]
    assert any('"status":200' in line for line in statuses)
    assert any('"status":401' in line for line in statuses)
    assert WEBHOOK_SECRET not in stack.nginx.access_log
    assert wrong not in stack.nginx.access_log


@pytest.fixture(scope="module")
async def telegram_only(stack: Stack, tmp_path_factory: pytest.TempPathFactory):
    """A second nginx on the same services, with NGINX_TELEGRAM_ONLY=on."""
    nginx = await start_nginx(
        tmp_path_factory.mktemp("nginx-telegram-only"),
        stack.bot_url.removeprefix("http://"),
        stack.backend_url.removeprefix("http://"),
        NGINX_TELEGRAM_ONLY="on",
    )
    yield nginx
    await nginx.process.stop()


async def test_with_the_allow_list_other_addresses_cannot_post_updates(
    stack: Stack, telegram_only: Nginx
):
    base = f"https://127.0.0.1:{telegram_only.https_port}"
    async with httpx.AsyncClient(verify=telegram_only.trust()) as client:
        update = start_update(stack, next(_user_ids))
        hook = await client.post(
            f"{base}{WEBHOOK_PATH}",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
        )
        payments = await client.post(f"{base}/api/v1/webhooks/payments", content=b"{}")
    assert hook.status_code == 403
    assert payments.status_code == 401  # payment providers are not Telegram: still let through


async def test_a_burst_from_one_address_is_throttled(telegram_only: Nginx):
    base = f"https://127.0.0.1:{telegram_only.https_port}"
    async with httpx.AsyncClient(verify=telegram_only.trust(), timeout=30) as client:
        answers = await asyncio.gather(
            *(client.post(f"{base}/api/v1/webhooks/payments", content=b"{}") for _ in range(80))
        )
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(401) >= 20  # the burst the zone allows reached the backend
    assert statuses.count(429) >= 20  # and then this address had to slow down
    assert set(statuses) == {401, 429}


def healthcheck_command(dockerfile: str) -> list[str]:
    """The exec form of a Dockerfile's HEALTHCHECK CMD."""
    text = (ROOT / dockerfile).read_text().replace("\\\n", " ")
    [line] = [line for line in text.splitlines() if line.startswith("HEALTHCHECK")]
    return json.loads(line.split(" CMD ", 1)[1])


@pytest.mark.parametrize(
    ("dockerfile", "port_variable", "service"),
    [("backend/Dockerfile", "BACKEND_PORT", "backend"), ("bot/Dockerfile", "BOT_PORT", "bot")],
)
async def test_the_image_healthcheck_passes_on_the_running_service_only(
    stack, dockerfile, port_variable, service
):
    command = healthcheck_command(dockerfile)
    assert command[0] == "python"
    url = stack.backend_url if service == "backend" else stack.bot_url
    port = url.rsplit(":", 1)[1]

    async def check(port: str) -> int:
        env = service_env(**{port_variable: port, "BOT_MODE": "webhook"})
        done = await asyncio.create_subprocess_exec(
            sys.executable, *command[1:], env=env, stderr=asyncio.subprocess.DEVNULL
        )
        return await done.wait()

    assert await check(port) == 0
    assert await check(str(free_port())) != 0

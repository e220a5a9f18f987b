"""Schemathesis fuzz of the backend's OpenAPI: every operation, with the token, no 5xx, no drift.

Cases come from schemathesis' generators, positive and negative, derandomized and bounded per
operation. They are sent with httpx's ASGITransport on the test event loop: schemathesis' own
ASGI client runs the app on an event loop of its own thread, away from the engine and the fake
providers this loop serves. The backend answers as deployed (a session per request, commits),
on a database of its own that the run drops, with the fake providers on loopback.

Random ids mostly miss, so positive cases often carry ids that exist (seeded users, a paid
charge, an open invoice), messages are often made coherent (text, or a real file for a voice
note, photo or document) and webhook events are often signed: the routes are fuzzed past
their 404, 422 and 401 too. A stateful test then follows the links schemathesis infers
(a registered user read and changed by the id it got back).
"""

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, TypeAdapter
from schemathesis import APIOperation, Case, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

from backend.api.dependencies import get_session
from backend.config import Settings
from backend.database.migrate import upgrade
from backend.main import bind_state, create_app
from backend.models.schemas import StreamEvent
from backend.services.catalog import Catalog, load_catalog
from backend.services.payment_service import sign
from backend.services.providers.registry import ProviderRegistry
from backend.tests.fixtures import TEST_TOKEN, fast_catalog, provider_settings
from tests.fakes.files import ogg_bytes, pdf_bytes, png_bytes
from tests.fakes.providers import start_fake_providers

MESSAGES = "/api/v1/messages"
WEBHOOK = "/api/v1/webhooks/payments"
WEBHOOK_SECRET = "fuzz-webhook-secret"
NDJSON = "application/x-ndjson"
USER, VIP, ADMIN = 7_000_001, 7_000_002, 7_000_003
ADMIN_PATHS = "/api/v1/admin"
# Examples per operation and mode: 21 operations, 39 cases, ~20 s on two cores.
MAX_EXAMPLES = 30
CHECKS = [
    not_a_server_error,  # a 5xx is a bug: the database and the providers are healthy here
    status_code_conformance,  # every status the API returns is documented for the route
    content_type_conformance,  # with the documented media type
    response_schema_conformance,  # and a JSON body of the documented schema
    negative_data_rejection,  # input the schema forbids is refused with a 4xx, not served
]
# Left out on purpose: positive_data_acceptance, because valid-looking input is refused by
# rules a schema cannot state (an unknown model, no free messages left, another user's
# payload) and those refusals are documented 4xx; ignored_auth, because it re-sends through
# schemathesis' own transport, which cannot reach this app (test_route_auth covers auth).


def _schema() -> Any:
    """The app's OpenAPI (as /openapi.json serves it), minus the bearer scheme.

    The client always sends the token, so a missing Authorization header must not count among
    schemathesis' negative cases; test_route_auth is where bad tokens are tried.
    """
    settings = Settings(_env_file=None, app_env="development", internal_api_token="x")
    spec = create_app(settings, load_catalog()).openapi()
    spec.get("components", {}).pop("securitySchemes", None)
    for operations in spec["paths"].values():
        for operation in operations.values():
            operation.pop("security", None)
    return schemathesis.openapi.from_dict(spec)


SCHEMA = _schema()
OPERATIONS: list[APIOperation] = [result.ok() for result in SCHEMA.get_all_operations()]
# Pydantic's own names: they reach the schema when a constraint follows a validator in
# Annotated[...], and JSON Schema ignores them (a bound nobody generates or checks).
PYDANTIC_ONLY = {"gt", "ge", "lt", "le", "min_length", "max_length", "multiple_of"}


def _keywords(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            # Under "properties" the keys are field names, not keywords.
            children = value.values() if key == "properties" else [value]
            for child in children:
                yield from _keywords(child)
    elif isinstance(node, list):
        for item in node:
            yield from _keywords(item)


def test_schema_bounds_are_json_schema_keywords() -> None:
    """Every bound of the API reaches the schema as a keyword schemathesis generates from."""
    assert PYDANTIC_ONLY.isdisjoint(_keywords(SCHEMA.raw_schema))


def _any_text(parameter: Any) -> bool:
    """An optional parameter every string satisfies (like `X-Admin-Id`): no value is invalid."""
    definition = parameter.definition
    schema = definition.get("schema", {})
    kinds = schema.get("anyOf", [schema])
    plain = all(set(k) <= {"type"} and k.get("type") in ("string", "null") for k in kinds)
    return not definition.get("required", False) and plain


def _takes_input(operation: APIOperation) -> bool:
    negatable = [p for p in operation.iter_parameters() if not _any_text(p)]
    return bool(negatable) or bool(operation.body)


CASES = [
    pytest.param(operation, mode, id=f"{operation.label} {mode.value}")
    for operation in OPERATIONS
    for mode in GenerationMode
    # Without parameters or a body there is nothing to make invalid.
    if mode is GenerationMode.POSITIVE or _takes_input(operation)
]


@dataclass(frozen=True)
class Known:
    """What exists in the fuzzed database, to be put into positive cases."""

    telegram_ids: tuple[int, ...]
    charge_ids: tuple[str, ...]
    payloads: tuple[str, ...]
    models: tuple[tuple[str, str], ...]  # (provider, model) of the catalog
    modes: tuple[str, ...]


@pytest.fixture(scope="module")
def fuzz_database_url(scratch_database) -> str:
    """A database only the fuzz writes to (it commits, like the deployed backend)."""
    url: str = scratch_database()
    upgrade(url, configure_logging=False)
    return url


@pytest.fixture(scope="module")
async def fuzz_engine(fuzz_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(fuzz_database_url, pool_size=5, max_overflow=5)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def fuzz_app(
    settings: Settings, catalog: Catalog, fuzz_database_url: str, fuzz_engine: AsyncEngine
) -> AsyncIterator[FastAPI]:
    """The backend with every provider configured against the fake, the webhook enabled."""
    async with start_fake_providers() as fake:
        fuzz_settings = provider_settings(settings, fake).model_copy(
            update={
                "database_url": fuzz_database_url,
                "payment_webhook_secret": SecretStr(WEBHOOK_SECRET),
                "admin_ids": frozenset({ADMIN}),
            }
        )
        fuzz_catalog = fast_catalog(catalog)
        registry = ProviderRegistry.from_settings(fuzz_settings, fuzz_catalog)
        app = create_app(fuzz_settings, fuzz_catalog)
        bind_state(app, fuzz_settings, fuzz_engine, fuzz_catalog, providers=registry)
        try:
            yield app
        finally:
            await registry.aclose()


@pytest.fixture(scope="module")
async def fuzz_client(fuzz_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fuzz_app),
        base_url="http://backend.test",
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
        timeout=30,
    ) as client:
        yield client


@pytest.fixture(scope="module")
async def known(fuzz_client: httpx.AsyncClient, catalog: Catalog) -> Known:
    """Three users (one VIP who paid, one admin), the VIP's charge and an open invoice."""
    for telegram_id in (USER, VIP, ADMIN):
        response = await fuzz_client.post("/api/v1/users", json={"telegram_id": telegram_id})
        assert response.status_code == 201, response.text
    paid = (await fuzz_client.post("/api/v1/payments/offers", json={"telegram_id": VIP})).json()
    response = await fuzz_client.post(
        "/api/v1/payments/successful",
        json={
            "telegram_id": VIP,
            "payload": paid["payload"],
            "currency": paid["currency"],
            "total_amount": paid["amount"],
            "telegram_payment_charge_id": "fuzz-charge-1",
        },
    )
    assert response.json()["vip_extended"] is True, response.text
    invoice = await fuzz_client.post("/api/v1/payments/offers", json={"telegram_id": USER})
    return Known(
        telegram_ids=(USER, VIP, ADMIN),
        charge_ids=("fuzz-charge-1",),
        payloads=(invoice.json()["payload"],),
        models=tuple((entry.provider, entry.key) for entry in catalog.models),
        modes=tuple(mode.key for mode in catalog.modes),
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# A real file of each kind that needs one: what the bot would send.
ATTACHMENTS = {
    "voice": {"data": _b64(ogg_bytes()), "media_type": "audio/ogg", "duration_s": 3},
    "photo": {"data": _b64(png_bytes(8, 8)), "media_type": "image/png"},
    "document": {
        "data": _b64(pdf_bytes(["What does this page say?"])),
        "media_type": "application/pdf",
        "filename": "page.pdf",
    },
}


def _use_known_ids(case: Case, known: Known, data: st.DataObject) -> None:
    """Often swap generated ids for ones that exist."""

    def maybe(values: tuple[Any, ...], current: Any) -> Any:
        # Hypothesis leans to False, the simplest draw: let that be the id that exists.
        return current if data.draw(st.booleans()) else data.draw(st.sampled_from(values))

    replacements = {
        "telegram_id": known.telegram_ids,
        "admin_telegram_id": (ADMIN,),
        "charge_id": known.charge_ids,
        "telegram_payment_charge_id": known.charge_ids,
        "payload": known.payloads,
    }
    for name, values in replacements.items():
        if name in case.path_parameters:
            case.path_parameters[name] = maybe(values, case.path_parameters[name])
        if isinstance(case.body, dict) and name in case.body:
            case.body[name] = maybe(values, case.body[name])
    if case.path.startswith(ADMIN_PATHS):
        # Without an operator's id every operator route is a 403: their rules go untried.
        headers = dict(case.headers or {})
        admin = maybe((str(ADMIN),), headers.get("X-Admin-Id"))
        if admin is not None:
            headers["X-Admin-Id"] = admin
        case.headers = headers


def _make_message_coherent(body: dict[str, Any], data: st.DataObject) -> None:
    """Often give a message what its kind needs (the schema cannot say): text or a real file."""
    if data.draw(st.booleans()):
        return
    kind = data.draw(st.sampled_from(["text", "voice", "photo", "document", "image"]))
    body["kind"] = kind
    if kind in ATTACHMENTS:
        body["attachment"] = ATTACHMENTS[kind]
    else:
        body.pop("attachment", None)
        if not str(body.get("text", "")).strip():
            body["text"] = "What is the capital of France?"


def _make_update_meaningful(body: dict[str, Any], known: Known, data: st.DataObject) -> None:
    """Often choose a model and a mode of the catalog, as the bot's menus do."""
    if data.draw(st.booleans()):
        return
    body["provider"], body["model"] = data.draw(st.sampled_from(known.models))
    if "mode" in body:
        body["mode"] = data.draw(st.sampled_from(known.modes))


def _signatures(body: bytes) -> st.SearchStrategy[bytes]:
    """Signature headers: mostly valid, else near misses (the format, odd times and digests)."""
    now = int(time.time())
    valid = f"t={now},v1={sign(WEBHOOK_SECRET, now, body)}".encode()
    # Header values are Latin-1 on the wire.
    latin1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=70)
    # Past ~1.8e308 a timestamp no longer fits a float.
    times = st.one_of(st.just(now), st.integers(), st.integers(min_value=10**309))
    near_misses = st.builds(
        lambda t, v1: f"t={t},v1={v1}".encode("latin-1"),
        times,
        st.one_of(latin1, st.just(sign(WEBHOOK_SECRET, now, body))),
    )
    return st.one_of(st.just(valid), near_misses)


def _request(case: Case, data: st.DataObject | None) -> dict[str, Any]:
    """httpx arguments for the case: its body as JSON bytes, the token, a webhook signature."""
    prepared = case.as_transport_kwargs()
    headers = dict(prepared.get("headers") or {})
    headers["Authorization"] = f"Bearer {TEST_TOKEN}"
    content: bytes | None = None
    if "json" in prepared:
        content = json.dumps(prepared["json"]).encode()
        headers.setdefault("Content-Type", "application/json")
    elif prepared.get("data") is not None:
        raw = prepared["data"]
        content = raw if isinstance(raw, bytes) else str(raw).encode()
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if case.path == WEBHOOK and positive and data is not None:
        headers["X-Pomogator-Signature"] = data.draw(_signatures(content or b""))
    return {
        "method": case.method,
        "url": case.formatted_path,
        "params": prepared.get("params"),
        "headers": headers,
        "content": content,
    }


_stream_event: TypeAdapter[Any] = TypeAdapter(StreamEvent)


def _check_ndjson(response: httpx.Response) -> None:
    """A streamed answer is NDJSON events of the documented shapes, ending done or error."""
    events = [_stream_event.validate_json(line) for line in response.text.splitlines() if line]
    assert events, "an NDJSON answer without events"
    assert events[-1].type in ("done", "error"), events[-1]


@pytest.mark.parametrize(("operation", "mode"), CASES)
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # No shrinking: a failing case is reported as found, with its curl line, within seconds
    # (shrinking HTTP cases against a live app took minutes).
    phases=[Phase.explicit, Phase.generate],
    # One app and database serve every example on purpose; generation may filter a lot.
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
async def test_operation_answers_as_documented(
    fuzz_client: httpx.AsyncClient,
    known: Known,
    operation: APIOperation,
    mode: GenerationMode,
    data: st.DataObject,
) -> None:
    """No 5xx, and every answer is documented: status, media type and body."""
    case: Case = data.draw(operation.as_strategy(generation_mode=mode), label="case")
    if mode is GenerationMode.POSITIVE:
        _use_known_ids(case, known, data)
        if case.path == MESSAGES and isinstance(case.body, dict):
            _make_message_coherent(case.body, data)
        if case.method == "PATCH" and isinstance(case.body, dict):
            _make_update_meaningful(case.body, known, data)
    response = await fuzz_client.request(**_request(case, data))
    case.validate_response(response, checks=CHECKS)
    if response.headers.get("content-type", "").startswith(NDJSON):
        _check_ndjson(response)


class RolledBack:
    """Sessions of one scenario: each starts on the database as the module left it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._scenario: tuple[AsyncConnection, AsyncSession] | None = None

    async def begin(self) -> None:
        connection = await self._engine.connect()
        await connection.begin()
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        self._scenario = connection, session

    async def rollback(self) -> None:
        assert self._scenario is not None
        connection, session = self._scenario
        await session.close()
        await connection.rollback()
        await connection.close()
        self._scenario = None

    async def session(self) -> AsyncIterator[AsyncSession]:
        assert self._scenario is not None, "a request outside a scenario"
        yield self._scenario[1]


async def test_workflows_along_inferred_links_answer_as_documented(
    fuzz_app: FastAPI, fuzz_engine: AsyncEngine
) -> None:
    """Schemathesis' stateful phase: a user registered, then read and changed by the id it got.

    Hypothesis replays scenarios, so each one runs in a transaction rolled back at its end
    (the same calls then get the same answers). The state machine is synchronous: it runs in
    a thread and hands each request to this event loop, where the app and its engine live.
    """
    loop = asyncio.get_running_loop()
    scenario = RolledBack(fuzz_engine)
    fuzz_app.dependency_overrides[get_session] = scenario.session

    def on_loop(coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=60)

    class Workflow(SCHEMA.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            on_loop(scenario.begin())

        def teardown(self) -> None:
            on_loop(scenario.rollback())

        def call(self, case: Case, **kwargs: Any) -> Response:
            return Response.from_any(on_loop(client.request(**_request(case, None))))

        def validate_response(self, response: Response, case: Case, *_: Any, **__: Any) -> None:
            case.validate_response(response, checks=CHECKS, recorder=self.recorder)

    scenarios = settings(
        max_examples=25,
        stateful_step_count=6,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fuzz_app), base_url="http://backend.test"
    ) as client:
        try:
            await asyncio.to_thread(Workflow.run, settings=scenarios)
        finally:
            fuzz_app.dependency_overrides.clear()

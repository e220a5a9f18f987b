"""A fake OpenAI, Perplexity and DeepSeek server on loopback, speaking their real wire formats.

One server serves all three flavours, each under its own prefix (see `FakeProviders.base_url`):

    openai      {root}/openai/v1      POST /responses, GET /responses/{id},
                                      POST /responses/{id}/cancel,
                                      POST /audio/transcriptions (multipart, as the SDK sends),
                                      POST /images/generations
    perplexity  {root}/perplexity/v1  the Responses routes, and the canonical POST /agent
    deepseek    {root}/deepseek       POST /chat/completions

Each flavour answers after its `Script`: text, reasoning, sources, usage, delays and one fault;
for OpenAI also the transcript and the PNG a picture request gets.
In-process tests use `start_fake_providers()`; a backend run as a subprocess is steered over HTTP:

    POST /_control/script    {"flavour": "openai", "text": "Hi", "fault": "http_500", ...}
                             ("image_png" as base64)
    GET  /_control/requests  [?flavour=openai] -> {"requests": [{flavour, method, path, ...}]}
    POST /_control/reset

A recorded body is the parsed JSON, or for multipart the fields (a repeated one as a list) with
each file summarised as {"filename", "size", "content_type"}.

Standalone: `python -m tests.fakes.providers --port 9100` prints the base URLs and serves.
"""

import argparse
import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import re
import secrets
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.files import png_bytes

FLAVOURS = ("openai", "perplexity", "deepseek")

FAULTS = frozenset(
    {
        "http_500",  # 500 with an OpenAI-style error body
        "http_429",  # 429 with a retry-after header (Script.retry_after_s)
        "slow",  # sleep Script.slow_s before answering at all
        "malformed",  # invalid JSON in a stream data frame (or as the whole JSON body)
        "truncated",  # the stream stops after the first delta, with no terminal event
        "error_event",  # Responses stream: an `error` event (code Script.error_code)
        "failed",  # HTTP 200 with status "failed" / a response.failed event (Script.error_code)
        "content_filter",  # half the text, then incomplete/content_filter (finish_reason for chat)
        "refusal",  # a refusal content part instead of output text (Responses)
        "max_output_tokens",  # half the text, then incomplete/max_output_tokens ("length" for chat)
        "context_length_exceeded",  # 400 as each provider words it
        "long",  # an answer (or transcript) of Script.long_chars characters
        "content_policy",  # pictures: 400 moderation_blocked, as the safety system refuses
    }
)
AUDIO_FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
AUDIO_LIMIT_BYTES = 25 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Script:
    """How one flavour answers; every field can be set from Python or over HTTP."""

    text: str = "Hello! This is the fake provider answering."
    chunks: int = 3  # how many deltas the text (and each reasoning part) is split into
    reasoning: str = ""  # OpenAI: summary parts split on blank lines; DeepSeek: reasoning_content
    sources: list[dict[str, Any]] = field(default_factory=list)  # Perplexity search results
    input_tokens: int = 12
    output_tokens: int = 34
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = 0.0054  # Perplexity's usage.cost.total_cost
    first_delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    fault: str | None = None
    fault_count: int | None = None  # fault only the next N answer requests; None: all of them
    retry_after_s: float = 1.0
    slow_s: float = 30.0
    error_code: str = "server_error"  # the code a "failed" run reports
    long_chars: int = 9000
    background_polls: int = 2  # polls answered "in_progress" before the final object
    transcript: str = "What is the capital of France?"  # what /audio/transcriptions hears
    transcript_language: str = "en"
    audio_seconds: float = 3.0  # the duration a transcription reports in its usage
    image_png: bytes = field(default_factory=lambda: png_bytes(64, 64, (40, 120, 200)))
    image_tokens: int = 1056  # output tokens of one picture (a 1024x1024 "medium" one)
    revised_prompt: str | None = None  # GPT image models send none


def script_json(script: Script) -> dict[str, Any]:
    """The script as JSON (the PNG as base64), as /_control/script answers."""
    settings = asdict(script)
    settings["image_png"] = base64.b64encode(script.image_png).decode()
    return settings


@dataclass
class RecordedRequest:
    """One request the fake received."""

    flavour: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, multipart fields, raw text if neither, None if empty
    peer: str = ""  # the client's address and port: requests with the same came on one connection


@dataclass
class _Frame:
    """One server-sent event."""

    data: str
    event: str | None = None
    delay_s: float = 0.0

    def encode(self) -> bytes:
        head = f"event: {self.event}\n" if self.event else ""
        return f"{head}data: {self.data}\n\n".encode()


def _split(text: str, parts: int) -> list[str]:
    if not text:
        return []
    size = -(-len(text) // max(1, min(parts, len(text))))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _long_text(length: int) -> str:
    sentences = (
        f"Sentence {i} of a long answer from the fake provider. " for i in itertools.count()
    )
    text = ""
    while len(text) < length:
        text += next(sentences)
    return text[:length]


def _answer_text(script: Script, fault: str | None) -> str:
    text = _long_text(script.long_chars) if fault == "long" else script.text
    if fault in {"content_filter", "max_output_tokens"}:
        return text[: max(1, len(text) // 2)]
    return "" if fault in {"failed", "refusal"} else text


def _error(
    status: int,
    message: str,
    type_: str,
    code: str | None,
    param: str | None = None,
    **headers: str,
) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


class _Deltas:
    """Frame delays: the first content delta waits first_delay_s, later ones chunk_delay_s."""

    def __init__(self, script: Script) -> None:
        self._script = script
        self._first = True

    def next_delay(self) -> float:
        delay = self._script.first_delay_s if self._first else self._script.chunk_delay_s
        self._first = False
        return delay


class _ResponsesAnswer:
    """One answer in the Responses wire format, OpenAI's or Perplexity's flavour."""

    def __init__(self, flavour: str, script: Script, fault: str | None, body: dict[str, Any]):
        self.flavour = flavour
        self.script = script
        self.fault = fault
        self.body = body
        self.id = f"resp_{secrets.token_hex(12)}"
        self.created_at = int(time.time())
        self.text = _answer_text(script, fault)
        self.reasoning_parts = (
            [p for p in script.reasoning.split("\n\n") if p] if flavour == "openai" else []
        )
        self.sources = [
            {
                "id": i + 1,
                "title": raw.get("title", f"Source {i + 1}"),
                "url": raw["url"],
                "date": raw.get("date"),
                "last_updated": raw.get("date"),
                "snippet": raw.get("snippet", ""),
                "source": "web",
            }
            for i, raw in enumerate(script.sources if flavour == "perplexity" else [])
        ]
        self._msg_id = f"msg_{secrets.token_hex(8)}"
        self._rs_id = f"rs_{secrets.token_hex(8)}"

    def snapshot(self, status: str, **fields: Any) -> dict[str, Any]:
        """The Response object as it stands, with no output yet unless given."""
        base: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": bool(self.body.get("background")),
            "error": None,
            "incomplete_details": None,
            "output": [],
            "usage": None,
        }
        if self.flavour == "perplexity":
            base["model"] = self.body.get("model") or "perplexity/sonar"
            base["effort"] = self.body.get("effort")
        else:
            base.update(
                model=self.body.get("model"),
                instructions=self.body.get("instructions"),
                max_output_tokens=self.body.get("max_output_tokens"),
                parallel_tool_calls=True,
                previous_response_id=None,
                reasoning=self.body.get("reasoning") or {"effort": None, "summary": None},
                store=self.body.get("store", True),
                temperature=1.0,
                text={"format": {"type": "text"}},
                tool_choice="auto",
                tools=[],
                top_p=1.0,
                truncation="disabled",
                metadata={},
            )
        base.update(fields)
        return base

    def _usage(self) -> dict[str, Any]:
        s = self.script
        usage: dict[str, Any] = {
            "input_tokens": s.input_tokens,
            "output_tokens": s.output_tokens,
            "total_tokens": s.input_tokens + s.output_tokens,
        }
        if self.flavour == "perplexity":
            usage["input_tokens_details"] = {
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": s.cached_tokens,
            }
            if self.sources:
                usage["tool_calls_details"] = {"web_search": {"invocation": 1, "cost_usd": 0.005}}
            if s.cost_usd is not None:
                usage["cost"] = {
                    "currency": "USD",
                    "input_cost": 0.0,
                    "output_cost": s.cost_usd,
                    "cache_creation_cost": None,
                    "cache_read_cost": None,
                    "tool_calls_cost": 0.0,
                    "total_cost": s.cost_usd,
                }
        else:
            usage["input_tokens_details"] = {
                "cached_tokens": s.cached_tokens,
                "cache_write_tokens": 0,
            }
            usage["output_tokens_details"] = {"reasoning_tokens": s.reasoning_tokens}
        return usage

    def _error_object(self) -> dict[str, Any]:
        return {
            "code": self.script.error_code,
            "message": "The fake provider failed this run.",
            "type": "server_error",
        }

    def _reasoning_item(self, parts: list[str]) -> dict[str, Any]:
        return {
            "type": "reasoning",
            "id": self._rs_id,
            "summary": [{"type": "summary_text", "text": part} for part in parts],
            "encrypted_content": None,
            "status": "completed",
        }

    def _content(self) -> list[dict[str, Any]]:
        if self.fault == "refusal":
            return [{"type": "refusal", "refusal": "I can't help with that."}]
        return [{"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}]

    def _message_item(self, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "type": "message",
            "id": self._msg_id,
            "role": "assistant",
            "status": status,
            "content": content,
        }

    def _search_item(self) -> dict[str, Any]:
        return {"type": "search_results", "queries": ["fake search"], "results": self.sources}

    def final(self) -> dict[str, Any]:
        """The finished Response object this script leads to."""
        if self.fault == "failed":
            return self.snapshot("failed", error=self._error_object())
        output: list[dict[str, Any]] = []
        if self.reasoning_parts:
            output.append(self._reasoning_item(self.reasoning_parts))
        if self.sources:
            output.append(self._search_item())
        output.append(self._message_item("completed", self._content()))
        fields: dict[str, Any] = {"output": output, "usage": self._usage()}
        if self.fault in {"content_filter", "max_output_tokens"}:
            return self.snapshot("incomplete", incomplete_details={"reason": self.fault}, **fields)
        return self.snapshot("completed", **fields)

    def frames(self) -> list[_Frame]:
        """The stream of events for this answer, as the provider would send it."""
        frames: list[_Frame] = []
        sequence = itertools.count()
        deltas = _Deltas(self.script)

        def emit(kind: str, *, chunk: bool = False, **fields: Any) -> None:
            data = json.dumps({"type": kind, "sequence_number": next(sequence), **fields})
            frames.append(_Frame(data, kind, deltas.next_delay() if chunk else 0.0))

        emit("response.created", response=self.snapshot("in_progress"))
        emit("response.in_progress", response=self.snapshot("in_progress"))
        if self.fault == "malformed":
            broken = '{"type": "response.output_text.delta", "delta": "Hel'
            frames.append(_Frame(broken, "response.output_text.delta", deltas.next_delay()))
            return frames
        if self.fault == "error_event":
            emit("error", code=self.script.error_code, message="The fake failed.", param=None)
            return frames
        if self.fault == "failed":
            if self.flavour == "perplexity":
                # Perplexity puts the error at the top level, which makes the SDK raise.
                emit("response.failed", error=self._error_object())
            else:
                emit("response.failed", response=self.final())
            return frames

        index = 0
        if self.reasoning_parts:
            emit("response.output_item.added", output_index=index, item=self._reasoning_item([]))
            for summary_index, part in enumerate(self.reasoning_parts):
                where = {
                    "item_id": self._rs_id,
                    "output_index": index,
                    "summary_index": summary_index,
                }
                emit(
                    "response.reasoning_summary_part.added",
                    part={"type": "summary_text", "text": ""},
                    **where,
                )
                for piece in _split(part, self.script.chunks):
                    emit("response.reasoning_summary_text.delta", chunk=True, delta=piece, **where)
                emit("response.reasoning_summary_text.done", text=part, **where)
                emit(
                    "response.reasoning_summary_part.done",
                    part={"type": "summary_text", "text": part},
                    **where,
                )
            emit(
                "response.output_item.done",
                output_index=index,
                item=self._reasoning_item(self.reasoning_parts),
            )
            index += 1
        if self.sources:
            half = self.sources[: max(1, len(self.sources) // 2)]
            emit("response.reasoning.started", thought="Looking this up.")
            emit("response.reasoning.search_queries", queries=["fake search"], thought=None)
            # The second batch repeats the first: searches return the same pages again.
            for batch in (half, self.sources):
                emit("response.reasoning.search_results", results=batch, thought=None, usage=None)
            emit("response.reasoning.stopped", thought=None)
            index += 1

        emit(
            "response.output_item.added",
            output_index=index,
            item=self._message_item("in_progress", []),
        )
        where = {"item_id": self._msg_id, "output_index": index, "content_index": 0}
        is_openai = self.flavour == "openai"
        if self.fault == "refusal":
            refusal = self._content()[0]["refusal"]
            if is_openai:
                emit(
                    "response.content_part.added", part={"type": "refusal", "refusal": ""}, **where
                )
            for piece in _split(refusal, self.script.chunks):
                emit("response.refusal.delta", chunk=True, delta=piece, **where)
            emit("response.refusal.done", refusal=refusal, **where)
        else:
            if is_openai:
                emit(
                    "response.content_part.added",
                    part={"type": "output_text", "text": "", "annotations": []},
                    **where,
                )
            for piece in _split(self.text, self.script.chunks):
                emit("response.output_text.delta", chunk=True, delta=piece, logprobs=[], **where)
                if self.fault == "truncated":
                    return frames
            emit("response.output_text.done", text=self.text, logprobs=[], **where)
        if is_openai:
            emit("response.content_part.done", part=self._content()[0], **where)
        emit(
            "response.output_item.done",
            output_index=index,
            item=self._message_item("completed", self._content()),
        )
        final = self.final()
        terminal = (
            "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        )
        emit(terminal, response=final)
        return frames


class _ChatAnswer:
    """One answer in DeepSeek's Chat Completions wire format."""

    def __init__(self, script: Script, fault: str | None, body: dict[str, Any]):
        self.script = script
        self.fault = fault
        self.id = f"chatcmpl-{secrets.token_hex(12)}"
        self.created = int(time.time())
        self.model = body.get("model") or "deepseek-flash"
        # DeepSeek thinks unless told otherwise.
        thinking = (body.get("thinking") or {}).get("type", "enabled") != "disabled"
        self.reasoning = script.reasoning if thinking else ""
        self.text = _answer_text(script, fault)
        self.finish = {
            "content_filter": "content_filter",
            "max_output_tokens": "length",
            "failed": "insufficient_system_resource",
        }.get(fault or "", "stop")
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def _usage(self) -> dict[str, Any]:
        s = self.script
        return {
            "prompt_tokens": s.input_tokens,
            "completion_tokens": s.output_tokens,
            "total_tokens": s.input_tokens + s.output_tokens,
            "prompt_tokens_details": {"cached_tokens": s.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": s.reasoning_tokens},
            "prompt_cache_hit_tokens": s.cached_tokens,
            "prompt_cache_miss_tokens": s.input_tokens - s.cached_tokens,
        }

    def completion(self) -> dict[str, Any]:
        """The whole chat.completion object."""
        message = {
            "role": "assistant",
            "content": self.text,
            "reasoning_content": self.reasoning or None,
        }
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish}
            ],
            "usage": self._usage(),
        }

    def frames(self) -> list[_Frame]:
        """The chat.completion.chunk stream, ending with `data: [DONE]`."""
        frames: list[_Frame] = []
        deltas = _Deltas(self.script)

        def chunk(
            delta: dict[str, Any], finish: str | None = None, wait: bool = False, **extra: Any
        ) -> None:
            choices = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
            data = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": "fp_fake",
                "choices": extra.pop("choices", choices),
                **extra,
            }
            frames.append(_Frame(json.dumps(data), delay_s=deltas.next_delay() if wait else 0.0))

        chunk({"role": "assistant", "content": "", "reasoning_content": None})
        if self.fault == "malformed":
            frames.append(
                _Frame('{"id": "chatcmpl-broken", "choices": [{"delta": {"content": "Hel')
            )
            return frames
        for piece in _split(self.reasoning, self.script.chunks):
            chunk({"content": None, "reasoning_content": piece}, wait=True)
        for piece in _split(self.text, self.script.chunks):
            chunk({"content": piece, "reasoning_content": None}, wait=True)
            if self.fault == "truncated":
                return frames
        chunk({"content": "", "reasoning_content": None}, self.finish)
        if self.include_usage:
            chunk({}, choices=[], usage=self._usage())
        frames.append(_Frame("[DONE]"))
        return frames


@dataclass
class _Run:
    """A background run: answers "in_progress" for a few polls, then its final object."""

    answer: _ResponsesAnswer
    polls_left: int
    cancelled: bool = False


async def _sse(request: web.Request, frames: list[_Frame]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Cache-Control": "no-cache"})
    response.content_type = "text/event-stream"
    await response.prepare(request)
    # The client may give up mid-stream (its timeout, a deliberate test); that is not an error.
    with contextlib.suppress(ConnectionResetError):
        for frame in frames:
            if frame.delay_s:
                await asyncio.sleep(frame.delay_s)
            await response.write(frame.encode())
        await response.write_eof()
    return response


_MULTIPART: web.RequestKey[tuple[dict[str, Any], dict[str, "_Upload"]]] = web.RequestKey(
    "multipart", tuple
)


@dataclass
class _Upload:
    filename: str
    content_type: str
    data: bytes

    def summary(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "size": len(self.data),
            "content_type": self.content_type,
        }


async def _multipart(request: web.Request) -> tuple[dict[str, Any], dict[str, _Upload]]:
    """A multipart body's fields (files summarised, a repeated key as a list) and its files.

    Read once per request and kept on it, so the recorder and the handler both see it.
    """
    if _MULTIPART not in request:
        form = await request.post()
        fields: dict[str, Any] = {}
        uploads: dict[str, _Upload] = {}
        for key, value in form.items():
            item: Any
            if isinstance(value, web.FileField):
                upload = _Upload(value.filename, value.content_type, value.file.read())
                uploads[key] = upload
                item = upload.summary()
            else:
                item = str(value)
            if key in fields:
                previous = fields[key]
                fields[key] = [*previous, item] if isinstance(previous, list) else [previous, item]
            else:
                fields[key] = item
        request[_MULTIPART] = (fields, uploads)
    return request[_MULTIPART]


class FakeProviders:
    """The fake's state: a script per flavour, the recorded requests, the background runs."""

    def __init__(self) -> None:
        self.root_url = ""
        self._scripts = {flavour: Script() for flavour in FLAVOURS}
        self._requests: list[RecordedRequest] = []
        self._runs: dict[str, _Run] = {}

    def base_url(self, flavour: str) -> str:
        """The base_url an SDK client for `flavour` should use."""
        _check_flavour(flavour)
        return f"{self.root_url}/{flavour}" + ("" if flavour == "deepseek" else "/v1")

    def script(self, flavour: str, **settings: Any) -> Script:
        """Make `flavour` answer after Script(**settings) from now on (the defaults otherwise)."""
        _check_flavour(flavour)
        if isinstance(settings.get("image_png"), str):
            settings["image_png"] = base64.b64decode(settings["image_png"], validate=True)
        script = Script(**settings)
        if script.fault is not None and script.fault not in FAULTS:
            raise ValueError(f"unknown fault {script.fault!r}; known: {sorted(FAULTS)}")
        self._scripts[flavour] = script
        return script

    def requests(self, flavour: str | None = None) -> list[RecordedRequest]:
        """Every request received so far (for one flavour if given), oldest first."""
        return [r for r in self._requests if flavour is None or r.flavour == flavour]

    def connections(self, flavour: str) -> int:
        """How many connections the requests for `flavour` came over."""
        return len({r.peer for r in self.requests(flavour)})

    def reset(self) -> None:
        """Forget the requests and background runs; every flavour back to the default script."""
        self._scripts = {flavour: Script() for flavour in FLAVOURS}
        self._requests.clear()
        self._runs.clear()

    def app(self) -> web.Application:
        """The aiohttp application serving the three APIs and the control routes."""
        # Room for audio up to the transcription limit and past it (answered 413 by the fake).
        app = web.Application(middlewares=[self._record], client_max_size=64 * 1024 * 1024)
        responses = "/{flavour:openai|perplexity}/v1"
        app.router.add_post(f"{responses}/responses", self._create_response)
        app.router.add_post("/perplexity/v1/agent", self._create_response)
        app.router.add_get(f"{responses}/responses/{{id}}", self._retrieve_response)
        app.router.add_post(f"{responses}/responses/{{id}}/cancel", self._cancel_response)
        app.router.add_post("/openai/v1/audio/transcriptions", self._transcription)
        app.router.add_post("/openai/v1/images/generations", self._image_generation)
        app.router.add_post("/deepseek/chat/completions", self._chat_completion)
        app.router.add_post("/_control/script", self._control_script)
        app.router.add_get("/_control/requests", self._control_requests)
        app.router.add_post("/_control/reset", self._control_reset)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/_control"):
            body: Any = None
            if request.content_type == "multipart/form-data":
                body, _files = await _multipart(request)
            elif raw := await request.text():
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    body = raw
            transport = request.transport
            peer = str(transport.get_extra_info("peername")) if transport else ""
            self._requests.append(
                RecordedRequest(
                    flavour=request.path.strip("/").split("/")[0],
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=body,
                    peer=peer,
                )
            )
        return await handler(request)

    def _begin(self, flavour: str) -> tuple[Script, str | None]:
        """This request's script and the fault it gets, counting down a limited fault."""
        script = self._scripts[flavour]
        fault = script.fault
        if fault is not None and script.fault_count is not None:
            if script.fault_count > 0:
                script.fault_count -= 1
            else:
                fault = None
        return script, fault

    async def _early_fault(
        self, flavour: str, script: Script, fault: str | None
    ) -> web.Response | None:
        """The error response a fault gives before any answer, or None to go on answering."""
        if fault == "slow":
            await asyncio.sleep(script.slow_s)
        if fault == "http_500":
            return _error(
                500,
                "The server had an error while processing your request.",
                "server_error",
                "server_error",
            )
        if fault == "http_429":
            return _error(
                429,
                "Rate limit reached for requests. Please try again later.",
                "requests",
                "rate_limit_exceeded",
                **{"retry-after": str(script.retry_after_s)},
            )
        if fault == "context_length_exceeded":
            if flavour == "deepseek":
                return _error(
                    400,
                    "This model's maximum context length is 131072 tokens. However, you "
                    "requested 140000 tokens (139000 in the messages, 1000 in the completion). "
                    "Please reduce the length of the messages or completion.",
                    "invalid_request_error",
                    "invalid_request_error",
                )
            return _error(
                400,
                "Your input exceeds the context window of this model. "
                "Please adjust your input and try again.",
                "invalid_request_error",
                "context_length_exceeded",
                param="input",
            )
        return None

    async def _create_response(self, request: web.Request) -> web.StreamResponse:
        flavour = request.path.strip("/").split("/")[0]
        body = await request.json()
        script, fault = self._begin(flavour)
        early = await self._early_fault(flavour, script, fault)
        if early is not None:
            return early
        answer = _ResponsesAnswer(flavour, script, fault, body)
        if body.get("stream"):
            return await _sse(request, answer.frames())
        if body.get("background"):
            self._runs[answer.id] = _Run(answer, script.background_polls)
            return web.json_response(answer.snapshot("queued"))
        await asyncio.sleep(script.first_delay_s)
        if fault == "malformed":
            return web.Response(
                text='{"id": "resp_broken", "output": [', content_type="application/json"
            )
        return web.json_response(answer.final())

    def _run(self, request: web.Request) -> _Run | None:
        run = self._runs.get(request.match_info["id"])
        if run is None or run.answer.flavour != request.match_info["flavour"]:
            return None
        return run

    async def _retrieve_response(self, request: web.Request) -> web.Response:
        run = self._run(request)
        if run is None:
            return _error(404, "No response with this id.", "invalid_request_error", None, "id")
        if run.cancelled:
            return web.json_response(run.answer.snapshot("cancelled"))
        if run.polls_left > 0:
            run.polls_left -= 1
            return web.json_response(run.answer.snapshot("in_progress"))
        return web.json_response(run.answer.final())

    async def _cancel_response(self, request: web.Request) -> web.Response:
        run = self._run(request)
        if run is None:
            return _error(404, "No response with this id.", "invalid_request_error", None, "id")
        run.cancelled = True
        return web.json_response(run.answer.snapshot("cancelled"))

    async def _chat_completion(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        script, fault = self._begin("deepseek")
        early = await self._early_fault("deepseek", script, fault)
        if early is not None:
            return early
        answer = _ChatAnswer(script, fault, body)
        if body.get("stream"):
            return await _sse(request, answer.frames())
        await asyncio.sleep(script.first_delay_s)
        if fault == "malformed":
            return web.Response(
                text='{"id": "chatcmpl-broken", "choices": [', content_type="application/json"
            )
        return web.json_response(answer.completion())

    async def _transcription(self, request: web.Request) -> web.StreamResponse:
        """POST /openai/v1/audio/transcriptions: the script's transcript, in the format asked."""
        fields, uploads = await _multipart(request)
        script, fault = self._begin("openai")
        early = await self._early_fault("openai", script, fault)
        if early is not None:
            return early
        problem = _check_transcription(fields, uploads)
        if problem is not None:
            return problem
        model = str(fields["model"])
        text = _long_text(script.long_chars) if fault == "long" else script.transcript
        response_format = fields.get("response_format") or "json"
        usage: dict[str, Any] = {"type": "duration", "seconds": script.audio_seconds}
        if model.startswith("gpt-4o"):  # billed by tokens, the others by duration
            audio_tokens = max(1, round(script.audio_seconds * 10))
            output_tokens = max(1, len(text) // 4)
            usage = {
                "type": "tokens",
                "input_tokens": audio_tokens,
                "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
                "output_tokens": output_tokens,
                "total_tokens": audio_tokens + output_tokens,
            }
        if fields.get("stream") == "true" and not model.startswith("whisper"):
            frames = [
                _Frame(json.dumps({"type": "transcript.text.delta", "delta": piece}))
                for piece in _split(text, script.chunks)
            ]
            done = {"type": "transcript.text.done", "text": text, "usage": usage}
            return await _sse(request, [*frames, _Frame(json.dumps(done))])
        await asyncio.sleep(script.first_delay_s)
        if fault == "malformed":
            return web.Response(text='{"text": "Wha', content_type="application/json")
        if response_format == "text":
            return web.Response(text=text, content_type="text/plain")
        if response_format in {"srt", "vtt"}:
            end = _timestamp(script.audio_seconds, "," if response_format == "srt" else ".")
            if response_format == "srt":
                return web.Response(text=f"1\n00:00:00,000 --> {end}\n{text}\n\n")
            return web.Response(text=f"WEBVTT\n\n00:00:00.000 --> {end}\n{text}\n\n")
        if response_format == "verbose_json":
            segment = {
                "id": 0,
                "seek": 0,
                "start": 0.0,
                "end": script.audio_seconds,
                "text": text,
                "tokens": [50364],
                "temperature": 0.0,
                "avg_logprob": -0.2,
                "compression_ratio": 1.1,
                "no_speech_prob": 0.01,
            }
            return web.json_response(
                {
                    "task": "transcribe",
                    "language": script.transcript_language,
                    "duration": script.audio_seconds,
                    "text": text,
                    "segments": [segment],
                    "usage": usage,
                }
            )
        body: dict[str, Any] = {"text": text}
        if model.startswith("gpt-transcribe"):
            body["languages"] = [{"code": script.transcript_language}]
        body["usage"] = usage
        return web.json_response(body)

    async def _image_generation(self, request: web.Request) -> web.StreamResponse:
        """POST /openai/v1/images/generations: the script's PNG, as GPT image models answer."""
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "We could not parse the JSON body of your request.", *_INVALID)
        script, fault = self._begin("openai")
        early = await self._early_fault("openai", script, fault)
        if early is not None:
            return early
        if fault == "content_policy":
            return _error(
                400,
                "Your request was rejected by the safety system. If you believe this is an "
                "error, contact us at help.openai.com and include the request ID.",
                "image_generation_user_error",
                "moderation_blocked",
            )
        problem = _check_image_request(body)
        if problem is not None:
            return problem
        await asyncio.sleep(script.first_delay_s)
        if fault == "malformed":
            return web.Response(text='{"created": 1, "data": [', content_type="application/json")
        count = int(body.get("n") or 1)
        size = body.get("size") or "auto"
        quality = body.get("quality") or "auto"
        output_tokens = script.image_tokens * count
        usage = {
            "input_tokens": script.input_tokens,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": script.input_tokens},
            "output_tokens": output_tokens,
            "output_tokens_details": {"image_tokens": output_tokens, "text_tokens": 0},
            "total_tokens": script.input_tokens + output_tokens,
        }
        image: dict[str, Any] = {"b64_json": base64.b64encode(script.image_png).decode()}
        if script.revised_prompt is not None:
            image["revised_prompt"] = script.revised_prompt
        answer = {
            "created": int(time.time()),
            "background": "opaque"
            if body.get("background") in (None, "auto")
            else body["background"],
            "data": [image] * count,
            "output_format": "png",  # the bytes are always the script's PNG
            "quality": "medium" if quality == "auto" else quality,
            "size": "1024x1024" if size == "auto" else size,
            "usage": usage,
        }
        if body.get("stream"):
            done = {
                "type": "image_generation.completed",
                "b64_json": image["b64_json"],
                "created_at": answer["created"],
                "size": answer["size"],
                "quality": answer["quality"],
                "background": answer["background"],
                "output_format": "png",
                "usage": usage,
            }
            return await _sse(request, [_Frame(json.dumps(done), "image_generation.completed")])
        return web.json_response(answer)

    async def _control_script(self, request: web.Request) -> web.Response:
        settings = await request.json()
        flavour = settings.pop("flavour", None)
        try:
            script = self.script(flavour, **settings)
        except (TypeError, ValueError, binascii.Error) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"flavour": flavour, "script": script_json(script)})

    async def _control_requests(self, request: web.Request) -> web.Response:
        recorded = self.requests(request.query.get("flavour"))
        return web.json_response({"requests": [asdict(r) for r in recorded]})

    async def _control_reset(self, _request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


_INVALID = ("invalid_request_error", None)
_IMAGE_SIZE = re.compile(r"^(\d{2,4})x(\d{2,4})$")


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{separator}{rest % 1000:03d}"


def _check_transcription(
    fields: dict[str, Any], uploads: dict[str, _Upload]
) -> web.Response | None:
    """The 4xx OpenAI gives a transcription request, or None if it would be transcribed."""
    for name in ("model", "file"):
        if name not in fields:
            return _error(
                400,
                f"Missing required parameter: '{name}'.",
                "invalid_request_error",
                "missing_required_parameter",
                param=name,
            )
    upload = uploads.get("file")
    if upload is None:
        return _error(400, "'file' must be a file upload.", "invalid_request_error", None, "file")
    extension = upload.filename.rsplit(".", 1)[-1].lower() if "." in upload.filename else ""
    if extension not in AUDIO_FORMATS:
        return _error(
            400,
            f"Invalid file format. Supported formats: {list(AUDIO_FORMATS)}",
            "invalid_request_error",
            None,
        )
    if len(upload.data) > AUDIO_LIMIT_BYTES:
        return _error(
            413,
            f"Maximum content size limit ({AUDIO_LIMIT_BYTES}) exceeded "
            f"({len(upload.data)} bytes read)",
            "server_error",
            None,
        )
    # The fake decodes no audio; an Ogg file must at least start as one.
    if not upload.data or (extension in {"ogg", "oga"} and not upload.data.startswith(b"OggS")):
        return _error(
            400,
            "Audio file might be corrupted or unsupported",
            "invalid_request_error",
            "invalid_value",
            param="file",
        )
    response_format = fields.get("response_format") or "json"
    whisper = str(fields["model"]).startswith("whisper")
    if response_format not in {"json", "text", "srt", "vtt", "verbose_json"}:
        return _error(
            400,
            f"Invalid value: '{response_format}'. Supported values are: 'json', 'text', 'srt', "
            "'verbose_json', 'vtt' and 'diarized_json'.",
            "invalid_request_error",
            "invalid_value",
            param="response_format",
        )
    if response_format not in {"json", "text"} and not whisper:
        return _error(
            400,
            f"response_format '{response_format}' is not compatible with model "
            f"'{fields['model']}'. Use 'json' or 'text' instead.",
            "invalid_request_error",
            "unsupported_value",
            param="response_format",
        )
    return None


def _check_image_request(body: Any) -> web.Response | None:
    """The 400 OpenAI gives an image generation request, or None if it would draw."""
    if not isinstance(body, dict) or not body.get("prompt"):
        return _error(
            400,
            "Missing required parameter: 'prompt'.",
            "invalid_request_error",
            "missing_required_parameter",
            param="prompt",
        )
    count = body.get("n", 1)
    if count is not None and (not isinstance(count, int) or not 1 <= count <= 10):
        return _error(
            400,
            f"Invalid value: {count!r}. 'n' must be between 1 and 10.",
            "invalid_request_error",
            "invalid_value",
            param="n",
        )
    size = body.get("size")
    match = _IMAGE_SIZE.match(size) if isinstance(size, str) else None
    if size not in (None, "auto") and not (
        match and all(16 <= int(side) <= 3840 for side in match.groups())
    ):
        return _error(
            400,
            f"Invalid value: {size!r}. Supported values are: '1024x1024', '1024x1536', "
            "'1536x1024', and 'auto'.",
            "invalid_request_error",
            "invalid_value",
            param="size",
        )
    return None


def _check_flavour(flavour: object) -> None:
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown flavour {flavour!r}; known: {list(FLAVOURS)}")


@contextlib.asynccontextmanager
async def start_fake_providers(
    host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[FakeProviders]:
    """Serve the fake on host:port (a free port by default) for the duration of the block."""
    fake = FakeProviders()
    # Cancelling handlers whose client left lets a "slow" request end with the test.
    runner = web.AppRunner(
        fake.app(), handler_cancellation=True, shutdown_timeout=0.5, access_log=None
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        fake.root_url = f"http://{host}:{runner.addresses[0][1]}"
        yield fake
    finally:
        await runner.cleanup()


async def _serve(host: str, port: int) -> None:
    async with start_fake_providers(host, port) as fake:
        for flavour in FLAVOURS:
            print(f"{flavour}: {fake.base_url(flavour)}", flush=True)
        print(f"control: {fake.root_url}/_control", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # Ctrl-C in a terminal, or terminate() from a test that started it as a subprocess.
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Run the fake until Ctrl-C (or SIGTERM)."""
    parser = argparse.ArgumentParser(description="Fake OpenAI / Perplexity / DeepSeek server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port))


if __name__ == "__main__":
    main()

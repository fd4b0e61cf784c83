"""The Contoso Chat HTTP service: the same ContosoChat object behind a small, hardened API.

    POST /api/chat   {"question": ..., "chat_history": [...]}  ->  {"answer": ..., "citations": [...]}
    GET  /health     alive (no dependencies checked)
    GET  /ready      model reachable, search index and customer store loaded
    GET  /           the chat page

The customer comes from the `Authorization: Bearer <token>` header (see contoso_chat.serving.tokens), never
from the body. Bad input gets a 4xx with `{"error": {"field": ..., "message": ...}}` before any
model call. Work is bounded: body size, one model call at a time plus a short queue (429 with
Retry-After beyond it), a request timeout, and upstream errors mapped to 502/503. Error bodies
never carry stack traces, paths, host names or secrets.

Run it with `python -m contoso_chat.serving.api --port 8000` (binds 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import openai
from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from contoso_chat import guards
from contoso_chat.serving import tokens
from contoso_chat.backends.settings import ConfigError, Settings, load_settings
from contoso_chat.paths import build_dir

STATIC_DIR = Path(__file__).resolve().parent / "static"
log = logging.getLogger("contoso_chat.serving.api")


@dataclass(frozen=True)
class Limits:
    """The bounds the service enforces."""

    max_body_bytes: int = 32 * 1024
    max_concurrent: int = 1  # the local model answers one request at a time
    max_queue: int = 3  # requests allowed to wait; more get 429
    request_timeout_s: float = 45.0
    retry_after_s: int = 3
    max_answer_tokens: int = 96


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: StrictStr
    content: StrictStr


class ChatRequest(BaseModel):
    """The body of POST /api/chat. Unknown fields, including any customer id, are rejected."""

    model_config = ConfigDict(extra="forbid")
    question: StrictStr
    chat_history: list[Turn] = Field(default_factory=list)


class ApiError(Exception):
    """An error answered as JSON with a status, the field at fault and a message for the client."""

    def __init__(self, status: int, message: str, field: str | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.headers = status, message, field, headers or {}


def error_response(status: int, message: str, field: str | None = None, headers: dict | None = None,
                   request_id: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, **({"field": field} if field else {})}}
    if request_id:
        body["error"]["request_id"] = request_id
    return JSONResponse(body, status_code=status, headers=headers or {})


class RequestLog:
    """One JSON line per request in build/service/requests.jsonl (read by the operations notebook's dashboard)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()

    def write(self, record: dict) -> None:
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def _validation_message(errors: list[dict]) -> tuple[str, str]:
    """The field at fault and a message for the first validation error of a request body."""
    first = errors[0]
    location = [str(p) for p in first["loc"] if p != "body"]
    field = ".".join(location) or "body"
    kind = first["type"]
    if kind == "extra_forbidden":
        if location[-1] in ("customer_id", "customer", "user_id"):
            return field, "The customer comes from your sign-in token; do not send it in the body."
        return field, f"Unknown field '{location[-1]}'. Send only 'question' and 'chat_history'."
    if kind == "missing" and field == "body":
        return field, "The body is empty; send a JSON object with 'question' and 'chat_history'."
    if kind == "missing":
        return field, f"'{location[-1]}' is required."
    if field == "body" and kind in ("model_type", "model_attributes_type", "dict_type"):
        return field, "The body must be a JSON object with 'question' and 'chat_history'."
    expected = {"string_type": "text", "list_type": "a list", "model_type": "an object",
                "model_attributes_type": "an object", "dict_type": "an object"}
    if kind in expected:
        return field, f"'{field}' must be {expected[kind]}."
    return field, f"'{field}' is not valid."


def _is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


def _signed_in_customer(secret: bytes) -> Callable:
    """A FastAPI dependency: the customer id in the request's bearer token, or 401."""

    def customer(authorization: str | None = Header(default=None)) -> str:
        try:
            return tokens.verify_token(tokens.bearer_token(authorization), secret)
        except tokens.AuthError as error:
            raise ApiError(401, str(error), "authorization", {"WWW-Authenticate": "Bearer"}) from None

    return customer


class ModelCallSlots:
    """At most `limit` model calls at once. A call that outlives its request keeps its slot until it
    really finishes, so timed-out requests cannot pile up threads behind the model."""

    def __init__(self, limit: int, queue: int) -> None:
        self.limit = limit
        self.capacity = limit + queue
        self._slots = asyncio.Semaphore(limit)
        self._lock = threading.Lock()
        self.in_system = 0  # running + waiting
        self.running = 0

    def admit(self) -> bool:
        """Take a place in the system (running or queued); False when it is full."""
        with self._lock:
            if self.in_system >= self.capacity:
                return False
            self.in_system += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.in_system -= 1

    async def run(self, function: Callable, *args, timeout_s: float):
        """Run `function(*args)` in a worker thread once a slot is free; raise TimeoutError after `timeout_s`.
        The thread keeps its slot, and its place in the system, until it returns. Call after `admit()`."""
        try:
            await self._slots.acquire()
        except BaseException:
            self.leave()
            raise
        self.running += 1
        task = asyncio.ensure_future(run_in_threadpool(function, *args))
        task.add_done_callback(self._finished)
        return await asyncio.wait_for(asyncio.shield(task), timeout_s)

    def _finished(self, done: asyncio.Future) -> None:
        self.running -= 1
        self._slots.release()
        self.leave()
        if not done.cancelled():
            done.exception()  # retrieved here, so a late failure is not reported as unhandled


def create_app(assistant_factory: Callable[[], object] | None = None, settings: Settings | None = None,
               limits: Limits = Limits(), readiness: Callable[[], dict] | None = None) -> FastAPI:
    """The FastAPI app. `assistant_factory` builds the ContosoChat once, at start-up."""
    settings = settings or load_settings()
    secret = tokens.signing_secret(settings)
    request_log = RequestLog(build_dir() / "service" / "requests.jsonl")
    state: dict = {"assistant": None, "started": time.time()}
    slots = ModelCallSlots(limits.max_concurrent, limits.max_queue)
    signed_in_customer = _signed_in_customer(secret)

    def make_assistant():
        if assistant_factory is not None:
            return assistant_factory()
        from contoso_chat.assistant import ContosoChat

        return service_engine(settings, ContosoChat(settings=settings, max_tokens=limits.max_answer_tokens))

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        state["assistant"] = await run_in_threadpool(make_assistant)
        yield

    app = FastAPI(title="Contoso Chat", version="1.0.0", docs_url="/docs", redoc_url=None, lifespan=lifespan)
    app.state.slots = slots

    def request_id(request: Request) -> str | None:
        return getattr(request.state, "request_id", None)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.message, error.field, error.headers, request_id(request))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = list(error.errors())
        if not _is_json(request):
            return error_response(415, "Send the body as JSON with 'Content-Type: application/json'.",
                                  "content-type", request_id=request_id(request))
        if errors and errors[0]["type"] == "json_invalid":
            return error_response(400, f"The body is not valid JSON ({errors[0].get('ctx', {}).get('error', 'syntax')}).",
                                  "body", request_id=request_id(request))
        field, message = _validation_message(errors)
        return error_response(422, message, field, request_id=request_id(request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:  # FastAPI could not parse the body at all (nesting too deep, huge numbers)
            return error_response(400, "The body is not JSON this service can read.", "body",
                                  request_id=request_id(request))
        messages = {404: "No such endpoint. Use POST /api/chat.", 405: "Method not allowed on this endpoint."}
        return error_response(error.status_code, messages.get(error.status_code, "Request not accepted."),
                              headers=dict(error.headers or {}), request_id=request_id(request))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error in request %s", request_id(request))
        return error_response(500, "Something went wrong on our side. Please try again.", request_id=request_id(request))

    @app.middleware("http")
    async def bounded_body_and_request_id(request: Request, call_next):
        request.state.request_id = uuid.uuid4().hex[:12]
        length = request.headers.get("content-length")
        if length and (not length.isdigit() or int(length) > limits.max_body_bytes):
            return error_response(413, f"The body is larger than {limits.max_body_bytes} bytes.", "body",
                                  request_id=request.state.request_id)
        if request.method == "POST":
            body = b""
            async for piece in request.stream():
                body += piece
                if len(body) > limits.max_body_bytes:
                    return error_response(413, f"The body is larger than {limits.max_body_bytes} bytes.", "body",
                                          request_id=request.state.request_id)
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                return error_response(400, "The body is not valid UTF-8.", "body", request_id=request.state.request_id)
            request._body = body  # read once, bounded; the route reads it from here
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        return response

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        checks = await run_in_threadpool(readiness or (lambda: readiness_checks(state.get("assistant"))))
        ok = all(value is True for value in checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503)

    @app.get("/")
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/static/{name}")
    async def static(name: str) -> FileResponse:
        allowed = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}
        if name not in allowed:
            raise ApiError(404, "No such file.")
        return FileResponse(allowed[name])

    @app.post("/api/chat")
    async def chat(request: Request, body: ChatRequest, customer_id: str = Depends(signed_in_customer)) -> JSONResponse:
        started = time.perf_counter()
        if not _is_json(request):
            raise ApiError(415, "Send the body as JSON with 'Content-Type: application/json'.", "content-type")
        history = [t.model_dump() for t in body.chat_history]
        try:
            guards.check_input(body.question, history, customer_id)
        except guards.InputError as error:
            raise ApiError(422, error.message, error.field) from None
        assistant = state["assistant"]
        if assistant is None:
            raise ApiError(503, "The assistant is starting; try again shortly.", None,
                           {"Retry-After": str(limits.retry_after_s)})
        if not slots.admit():
            raise ApiError(429, "The assistant is busy; try again in a few seconds.", None,
                           {"Retry-After": str(limits.retry_after_s)})
        try:
            reply = await slots.run(assistant, body.question, customer_id, history, timeout_s=limits.request_timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(503, "The assistant took too long; try again.", None,
                           {"Retry-After": str(limits.retry_after_s)}) from None
        except guards.InputError as error:
            status = 401 if error.field == "customer_id" else 422
            raise ApiError(status, error.message, error.field) from None
        except openai.APIError as error:
            raise _upstream_error(error, limits) from None
        request_log.write({
            "time": time.time(), "request_id": request.state.request_id, "status": 200,
            "latency_s": round(time.perf_counter() - started, 3), "customer": customer_id,
            **{k: reply["usage"].get(k) for k in ("model", "prompt_tokens", "completion_tokens", "retrieval_ms",
                                                  "declined", "guard")},
            "engine": reply["usage"].get("engine", "app"),
        })
        return JSONResponse({"answer": reply["answer"], "citations": list(reply["citations"])})

    return app


def service_engine(settings: Settings, app):
    """What answers each turn: the app itself, or (SERVICE_ENGINE=agent-framework) its Agent Framework agent."""
    if settings.get("SERVICE_ENGINE") != "agent-framework":
        return app
    try:
        from contoso_chat.agentframework.service import AgentEngine
    except ImportError:
        raise ConfigError("SERVICE_ENGINE=agent-framework needs Agent Framework, which `make setup` installs in "
                          ".venv/agent-framework: start the service with PYTHONPATH=.venv/agent-framework, or use "
                          "start_service(engine='agent-framework').") from None
    return AgentEngine(app)


def _upstream_error(error: openai.APIError, limits: Limits) -> ApiError:
    """A model error as the client should see it: 503 with Retry-After when retrying helps, 502 otherwise."""
    retry = {"Retry-After": str(limits.retry_after_s)}
    if isinstance(error, (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError)):
        return ApiError(503, "The language model is not available right now; try again shortly.", None, retry)
    if isinstance(error, openai.InternalServerError):
        return ApiError(503, "The language model had a temporary problem; try again shortly.", None, retry)
    body = getattr(error, "body", None)
    code = body.get("code") if isinstance(body, dict) else None
    if code == "content_filter":
        return ApiError(422, "This question was blocked by the content filter; please rephrase it.", "question")
    if code == "context_length_exceeded":
        return ApiError(422, "The conversation is too long; start a new one or shorten the question.", "chat_history")
    return ApiError(502, "The language model returned an error.", None)


def model_reachable(target) -> bool | str:
    """True when the chat backend accepts connections. The local server takes one request at a time
    and answers nothing else while it generates, so for it a TCP connection is the check; a cloud
    endpoint is asked for its model list."""
    if target.backend == "local":
        host, _, port = target.host.partition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=2.0):
                return True
        except OSError:
            return "unreachable"
    try:
        target.client.models.list(timeout=5.0)
        return True
    except Exception as error:  # any failure means not ready; the reason stays short and generic
        return f"unreachable ({type(error).__name__})"


def readiness_checks(assistant) -> dict:
    """Each dependency the assistant needs, checked cheaply: True or a short reason."""
    if assistant is None:
        return {"assistant": "starting"}
    checks: dict = {"assistant": True, "model": model_reachable(assistant.chat)}
    counter = getattr(assistant.retriever, "count", None)
    checks["search_index"] = (counter() > 0 or "empty") if counter else True
    try:
        checks["customer_store"] = bool(assistant.private_details()) or "empty"
    except Exception as error:
        checks["customer_store"] = f"unavailable ({type(error).__name__})"
    return checks


def app_from_environment() -> FastAPI:
    """The app with settings from the environment (for `uvicorn --factory` in the container image)."""
    from contoso_chat.backends.environment import prepare_offline_environment

    prepare_offline_environment()
    return create_app()


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from contoso_chat.backends.environment import prepare_offline_environment

    parser = argparse.ArgumentParser(description="Serve Contoso Chat on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-queue", type=int, default=Limits.max_queue)
    args = parser.parse_args(argv)
    prepare_offline_environment()
    app = create_app(limits=Limits(max_queue=args.max_queue))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

"""The Contoso Chat app on Microsoft Agent Framework: a chat client, an agent, a workflow, from the app's own steps.

    client = chat_client(app)                          # Chat Completions (llama.cpp serves no Responses API)
    agent = contoso_agent(app, client)                 # instructions + context provider + guard middleware
    reply = ask(agent, "How heavy is the Summit Dome 2 Tent?", "1")     # the app's ChatResponse dict
    reply = run_workflow(app, client, "How heavy is ...?", "1")        # input guard -> retrieve -> answer -> output guard

Nothing here retrieves, selects facts or guards by itself: every step calls the same `ContosoChat` method the flex
flow runs (`start_turn`, `retrieve`, `turn_messages`, `finish`), so the two engines differ only in how the steps
are wired and how the model is called.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Sequence

import httpx
import openai
from agent_framework import (Agent, AgentContext, AgentMiddleware, AgentResponse, AgentSession, ContextProvider,
                             Executor, Message, SessionContext, WorkflowBuilder, WorkflowContext, handler)
from agent_framework.openai import OpenAIChatCompletionClient

from contoso_chat import prompts
from contoso_chat.assistant import ChatResponse, ContosoChat
from contoso_chat.backends.azure_credentials import bearer_token_provider
from contoso_chat.backends.chat import LOCAL_API_KEY

TURN = "contoso_turn"  # session state: the turn the input guard started, read by the context provider
CUSTOMER = "customer_id"  # session state: the signed-in customer
ENGINE = "agent-framework"  # usage["engine"] of every reply from this module


def async_openai_client(app: ContosoChat, http_client: httpx.AsyncClient | None = None) -> openai.AsyncOpenAI:
    """An async `openai` client for the backend the app's own client talks to (Agent Framework's clients are async);
    `http_client` lets a caller watch or replace the HTTP traffic."""
    client = _async_openai_client(app)
    return client.with_options(http_client=http_client) if http_client is not None else client


def _async_openai_client(app: ContosoChat) -> openai.AsyncOpenAI:
    settings = app.settings
    if app.chat.backend == "azure":
        common = dict(azure_endpoint=settings.get("AZURE_OPENAI_ENDPOINT"),
                      api_version=settings.get("AZURE_OPENAI_API_VERSION"), max_retries=2, timeout=60.0)
        key = settings.secret("AZURE_OPENAI_API_KEY")
        if key:
            return openai.AsyncAzureOpenAI(api_key=key, **common)
        provider = bearer_token_provider(managed_identity_client_id=settings.get("AZURE_CLIENT_ID"))
        return openai.AsyncAzureOpenAI(azure_ad_token_provider=provider, **common)
    if app.chat.backend == "openai":
        return openai.AsyncOpenAI(api_key=settings.secret("OPENAI_API_KEY"), max_retries=2, timeout=60.0)
    return openai.AsyncOpenAI(base_url=str(app.chat.client.base_url), api_key=LOCAL_API_KEY, max_retries=0,
                              timeout=120.0)


def chat_client(app: ContosoChat, http_client: httpx.AsyncClient | None = None) -> OpenAIChatCompletionClient:
    """Agent Framework's Chat Completions client on the app's model (local llama.cpp, Azure OpenAI or OpenAI).

    Two traps avoided: `OpenAIChatClient` calls the Responses API, which llama.cpp does not serve (404), and a
    client built without an API key quietly switches to Azure OpenAI settings; handing it a ready `openai`
    client settles both.
    """
    return OpenAIChatCompletionClient(async_client=async_openai_client(app, http_client), model=app.chat.model,
                                      instruction_role="system")


def recording_http_client(requests: list[dict]) -> httpx.AsyncClient:
    """An HTTP client that appends the JSON body of every request it sends to `requests` (to see what goes out)."""
    async def keep(request: httpx.Request) -> None:
        requests.append({"url": str(request.url), "body": json.loads(request.content or b"{}")})
    return httpx.AsyncClient(event_hooks={"request": [keep]}, timeout=120.0)


def decoding_options(app: ContosoChat) -> dict[str, Any]:
    """The decoding settings of the app's prompty, as Agent Framework chat options.

    Agent Framework sends the `max_tokens` option as `max_completion_tokens` (OpenAI's newer name), which the
    llama.cpp server ignores: answers would run on past the prompty's limit. Locally the limit goes in the
    request body under the name the server reads.
    """
    options: dict[str, Any] = {"temperature": app.temperature, "seed": app.seed}
    if app.chat.backend == "local":
        options["extra_body"] = {"max_tokens": app.max_tokens}
    else:
        options["max_tokens"] = app.max_tokens
    return options


def split_system(system: str) -> tuple[str, str]:
    """The prompty's system message as (instructions, per-turn part): the rules, then the facts and the customer."""
    at = system.find("\nFacts:")
    if at < 0:
        raise ValueError("The prompty's system message has no 'Facts:' section; the agent cannot place the facts.")
    return system[:at], system[at + 1:]


def agent_instructions(app: ContosoChat) -> str:
    """The agent's fixed instructions: the prompty's system message up to its facts, rendered once."""
    messages = prompts.render(app.prompty, question="", history=[], citation_style=app.citation_style,
                              documentation=[], customer=None)
    return split_system(messages[0]["content"])[0]


class StoreContext(ContextProvider):
    """Retrieval, fact selection and the customer's orders, added before each model call.

    The input guard (middleware or workflow step) has already retrieved the facts into the turn; this provider
    renders them with the customer's name, tier and orders exactly as the prompty does, and adds them to the
    instructions.
    """

    def __init__(self, app: ContosoChat, instructions: str) -> None:
        super().__init__("contoso_store")
        self.app = app
        self.instructions = instructions

    async def before_run(self, *, agent, session: AgentSession, context: SessionContext, state: dict) -> None:
        turn = session.state.get(TURN)
        if turn is None:
            raise RuntimeError("No turn in the session: run the agent through ask() or the workflow, which start one.")
        head, rest = split_system(turn["messages"][0]["content"])
        if head != self.instructions:
            raise RuntimeError("The agent's instructions differ from the prompty's; build the agent again.")
        context.extend_instructions(self.source_id, rest)


def reply_usage(response: AgentResponse) -> SimpleNamespace:
    """The response's token counts under the names the app's usage record reads."""
    details = response.usage_details or {}
    return SimpleNamespace(prompt_tokens=details.get("input_token_count") or 0,
                           completion_tokens=details.get("output_token_count") or 0,
                           total_tokens=details.get("total_token_count") or 0)


def finish_reason(response: AgentResponse) -> str | None:
    """Why the model stopped ("stop", "length", "content_filter"), from the raw chat response when there is one."""
    reason = getattr(response, "finish_reason", None)
    for raw in (response.raw_representation if isinstance(response.raw_representation, list)
                else [response.raw_representation]):
        reason = reason or getattr(raw, "finish_reason", None)
    return reason if reason is None else str(getattr(reason, "value", reason))


def final_response(reply: ChatResponse) -> AgentResponse:
    """An agent response carrying the app's final answer, with the whole ChatResponse in its properties."""
    return AgentResponse(messages=[Message("assistant", [reply["answer"]])],
                         additional_properties={"contoso": reply})


class InputGuard(AgentMiddleware):
    """Before the model: the app's input guard, retrieval and early declines. A declined turn ends the run here,
    with the app's own decline as the agent's answer; the model is never called."""

    def __init__(self, app: ContosoChat) -> None:
        self.app = app

    async def process(self, context: AgentContext, call_next) -> None:
        session = context.session
        if session is None or CUSTOMER not in session.state:
            raise RuntimeError("Run the Contoso agent with a session that names the customer (use ask()).")
        *history, last = context.messages
        turn = self.app.start_turn(last.text, session.state[CUSTOMER],
                                   [{"role": m.role, "content": m.text} for m in history])
        early = self.app.retrieve(turn)
        if early is not None:
            context.result = final_response(early)
            return
        messages = self.app.turn_messages(turn)
        session.state[TURN] = turn
        context.messages[:] = [Message(m["role"], [m["content"]]) for m in messages[1:]]
        await call_next()


class OutputGuard(AgentMiddleware):
    """After the model: the app's reading of the reply and its output guard; the run's answer becomes the app's."""

    def __init__(self, app: ContosoChat) -> None:
        self.app = app

    async def process(self, context: AgentContext, call_next) -> None:
        await call_next()
        turn = context.session.state.pop(TURN)
        response = context.result
        context.result = final_response(self.app.finish(turn, response.text, reply_usage(response),
                                                        finish_reason(response)))


def contoso_agent(app: ContosoChat, client: OpenAIChatCompletionClient | None = None, guards: bool = True) -> Agent:
    """The app as one agent: the prompty's rules as instructions, the store's facts and the customer's orders from
    a context provider, and (with `guards`) the input and output guards as middleware."""
    instructions = agent_instructions(app)
    return Agent(client or chat_client(app), instructions, name="contoso-chat",
                 description="Contoso Outdoors support assistant", default_options=decoding_options(app),
                 context_providers=[StoreContext(app, instructions)],
                 middleware=[InputGuard(app), OutputGuard(app)] if guards else None)


def session_for(agent: Agent, customer_id: str) -> AgentSession:
    """A new session for one signed-in customer."""
    session = agent.create_session()
    session.state[CUSTOMER] = customer_id
    return session


def settle(app: ContosoChat) -> None:
    """Put the local model server in a known state before a comparison: one tiny fixed request.

    llama.cpp reuses its reading of the previous prompt where the new one starts the same way, and that changes
    the arithmetic slightly: the same prompt asked right after itself, or after different prompts, can get a
    different answer at temperature 0. Two engines compared one request each are compared fairly only when
    both requests follow the same previous prompt. Other backends need nothing.
    """
    if app.chat.backend == "local":
        app.chat.client.chat.completions.create(model=app.chat.model, max_tokens=1, temperature=0.0,
                                                messages=[{"role": "user", "content": "Hello."}])


def marked(reply: ChatResponse) -> ChatResponse:
    """The reply with the engine that produced it in its usage record."""
    reply["usage"]["engine"] = ENGINE
    return reply


def ask(agent: Agent, question: str, customer_id: str, history: Sequence[dict] = ()) -> ChatResponse:
    """One turn through the guarded agent; the app's ChatResponse (answer, citations, usage)."""
    messages = [*(Message(h["role"], [h["content"]]) for h in history), Message("user", [question])]
    response = run_sync(agent.run(messages, session=session_for(agent, customer_id)))
    return marked(response.additional_properties["contoso"])


# The workflow: the flex flow's steps as executors joined by edges.

@dataclass
class Question:
    """What the workflow starts from: one customer's question and the conversation so far."""

    question: str
    customer_id: str
    history: list[dict] = field(default_factory=list)


class InputGuardStep(Executor):
    """Step 1: the input guard and the customer lookup (a bad request raises the app's InputError)."""

    def __init__(self, app: ContosoChat) -> None:
        super().__init__(id="input_guard")
        self.app = app

    @handler
    async def check(self, request: Question, ctx: WorkflowContext[dict]) -> None:
        await ctx.send_message(self.app.start_turn(request.question, request.customer_id, request.history))


class RetrieveStep(Executor):
    """Step 2: retrieval and fact selection; a turn declined here (off-topic, not carried, harmful) ends the run."""

    def __init__(self, app: ContosoChat) -> None:
        super().__init__(id="retrieve")
        self.app = app

    @handler
    async def retrieve(self, turn: dict, ctx: WorkflowContext[dict, dict]) -> None:
        early = self.app.retrieve(turn)
        if early is not None:
            await ctx.yield_output(early)
        else:
            await ctx.send_message(turn)


class AnswerStep(Executor):
    """Step 3: the agent (instructions + context provider, no middleware) answers from the turn's facts."""

    def __init__(self, app: ContosoChat, client: OpenAIChatCompletionClient) -> None:
        super().__init__(id="answer")
        self.app = app
        self.agent = contoso_agent(app, client, guards=False)

    @handler
    async def answer(self, turn: dict, ctx: WorkflowContext[dict]) -> None:
        messages = self.app.turn_messages(turn)
        session = session_for(self.agent, turn["customer_id"])
        session.state[TURN] = turn
        response = await self.agent.run([Message(m["role"], [m["content"]]) for m in messages[1:]], session=session)
        turn["agent_reply"] = (response.text, reply_usage(response), finish_reason(response))
        await ctx.send_message(turn)


class OutputGuardStep(Executor):
    """Step 4: the app's reading of the reply and its output guard; the workflow's output."""

    def __init__(self, app: ContosoChat) -> None:
        super().__init__(id="output_guard")
        self.app = app

    @handler
    async def guard(self, turn: dict, ctx: WorkflowContext[None, dict]) -> None:
        text, usage, reason = turn.pop("agent_reply")
        await ctx.yield_output(self.app.finish(turn, text, usage, reason))


def contoso_workflow(app: ContosoChat, client: OpenAIChatCompletionClient | None = None):
    """A new workflow instance (one runs one input at a time): input guard -> retrieve -> answer -> output guard."""
    client = client or chat_client(app)
    first, retrieve = InputGuardStep(app), RetrieveStep(app)
    answer, guard = AnswerStep(app, client), OutputGuardStep(app)
    return (WorkflowBuilder(start_executor=first, name="contoso-chat")
            .add_edge(first, retrieve).add_edge(retrieve, answer).add_edge(answer, guard).build())


def run_workflow(app: ContosoChat, client: OpenAIChatCompletionClient | None, question: str, customer_id: str,
                 history: Sequence[dict] = ()) -> ChatResponse:
    """One turn through a fresh workflow; the app's ChatResponse."""
    result = run_sync(contoso_workflow(app, client).run(Question(question, customer_id, list(history))))
    outputs = result.get_outputs()
    if len(outputs) != 1:
        raise RuntimeError(f"The workflow gave {len(outputs)} outputs instead of one answer.")
    return marked(outputs[0])


_loop: asyncio.AbstractEventLoop | None = None


def run_sync(awaitable):
    """Run a coroutine to its end from plain code (a notebook cell, a batch loop) and return its result.

    Every call uses one event loop that lives on a background thread: the async `openai` client keeps its
    connections on the loop that opened them, so a new loop per call (asyncio.run) would break the second call,
    and Jupyter's own loop is already running.
    """
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
        threading.Thread(target=_loop.run_forever, name="agent-framework-loop", daemon=True).start()
    return asyncio.run_coroutine_threadsafe(awaitable, _loop).result()

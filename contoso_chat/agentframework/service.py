"""The HTTP service's Agent Framework engine: each turn answered by the guarded agent, everything else the app's.

`create_app` (contoso_chat.serving.api) builds it when SERVICE_ENGINE=agent-framework. It is called like
`ContosoChat` (question, customer id, history -> the app's ChatResponse), so the service's validation, sign-in,
load shedding, timeouts and error bodies are the same for both engines. Errors from the model keep their meaning:
Agent Framework wraps the `openai` error it met, and the engine hands that error back, so a 429 from the model is
still a 429 with Retry-After, and a prompt the content filter refused still gets the app's polite answer.
"""

from __future__ import annotations

from typing import Sequence

import openai

from contoso_chat.agentframework import spans
from contoso_chat.agentframework.engine import ENGINE, ask, contoso_agent
from contoso_chat.assistant import ChatResponse, ContosoChat
from contoso_chat.backends import content_safety
from contoso_chat.backends.chat import is_content_filter_error


def _openai_error(error: BaseException) -> openai.APIError | None:
    """The `openai` error an Agent Framework exception wraps (its inner exception or cause), if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, openai.APIError):
            return error
        seen.add(id(error))
        error = getattr(error, "inner_exception", None) or error.__cause__
    return None


class AgentEngine:
    """The app with its turns run by Agent Framework; model, retriever and customer store stay the app's."""

    engine = ENGINE

    def __init__(self, app: ContosoChat, client=None) -> None:
        self.app = app
        self.agent = contoso_agent(app, client)
        self.tracing = spans.start_azure_monitor(app.settings)  # Application Insights when configured, else None

    def __call__(self, question: str, customer_id: str, chat_history: Sequence[dict] = ()) -> ChatResponse:
        try:
            return ask(self.agent, question, customer_id, list(chat_history))
        except Exception as error:  # noqa: BLE001 - only to unwrap the model's own error; anything else re-raised
            inner = _openai_error(error)
            if inner is None:
                raise
            if isinstance(inner, openai.BadRequestError) and is_content_filter_error(inner):
                return {"answer": content_safety.BLOCKED_ANSWER, "citations": [],
                        "usage": {"model": self.app.chat.model, "declined": True, "decline_reason": "content-filter",
                                  "guard": ["content-filter"], "engine": ENGINE}}
            raise inner from None

    def __getattr__(self, name: str):
        """Whatever the service reads besides answers (chat target, retriever, customers) is the app's."""
        return getattr(self.app, name)

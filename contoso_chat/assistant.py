"""ContosoChat: the assistant itself, plain Python.

    chat = ContosoChat()
    chat("How much does the Summit Dome 2 Tent weigh?", customer_id="C1001")
    -> {"answer": ..., "citations": ["product-1"], "usage": {...}}

Steps: input guard -> standalone search query from the history -> hybrid retrieval -> the
facts most similar to the question -> this customer's orders (by the id the caller passes,
never one found in the text) -> prompty -> chat model -> output guard.
"""


import re
import time
from dataclasses import dataclass
from typing import Sequence, TypedDict

import numpy as np
import openai
from opentelemetry import trace

from contoso_chat import guards, prompts, records
from contoso_chat.backends import content_safety
from contoso_chat.backends.chat import ChatTarget, chat_target, is_content_filter_error
from contoso_chat.backends.customers import CustomerStore, ensure_customers
from contoso_chat.backends.search import ensure_index
from contoso_chat.backends.search_types import Hit, Retriever
from contoso_chat.backends.settings import Settings, load_settings
from contoso_chat.guards import InputError
from contoso_chat.records import Customer

tracer = trace.get_tracer("contoso_chat")

DECLINE_ANSWER = (
    "I'm sorry, I can only help with Contoso Outdoors products, your orders and our store policies, and I "
    "couldn't find anything about that. For anything else, please contact support@contoso-outdoors.example."
)
OUT_OF_SCOPE_SIMILARITY = 0.40  # below this cosine similarity to every chunk, the question is not about our store
FACT_SOURCES = 3  # facts come from the top sources of the retrieval
STORE_TOPIC = re.compile(  # questions about how the store works are in scope even when no passage matches well
    r"\b(orders?|cancel\w*|returns?|returning|refunds?|exchanges?|shipping|ship|delivery|deliveries|warranty|"
    r"warranties|membership|member|points|tier|tracking)\b",
    re.IGNORECASE,
)
ACCOUNT_QUESTION = re.compile(  # questions about the customer's own account skip the off-topic decline
    r"\bmy\s+(\w+\s+)?(orders?|account|tier|membership|points|address|purchases?)\b"
    r"|\b(did|have)\s+i\s+(order|buy|purchase|pay)|\bi\s+(ordered|bought|purchased|paid)\b",
    re.IGNORECASE,
)


class ChatResponse(TypedDict):
    """What ContosoChat returns."""

    answer: str
    citations: list
    usage: dict


@dataclass(frozen=True)
class Fact:
    """One line of retrieved text given to the model, with the source it came from."""

    source_id: str
    text: str
    similarity: float


def standalone_query(question: str, chat_history: Sequence[dict]) -> str:
    """The search query for a follow-up: the latest earlier user turn supplies what "it" refers to."""
    earlier = [t["content"] for t in chat_history if t["role"] == "user"]
    if not earlier:
        return question
    return f"{earlier[-1][:300]} {question}"


def candidate_facts(hit: Hit) -> list[str]:
    """Sentences and specification rows of a chunk, each naming its product or policy."""
    facts = []
    for line in hit.text.splitlines()[1:]:
        line = line.strip().lstrip("-*0123456789. ").replace("**", "").strip()
        if not line or set(line) <= set("|-: "):
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) == 2 and cells[0].lower() != "specification":
                facts.append(f"{hit.title} {cells[0].lower()}: {cells[1]}")
            continue
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", line):
            sentence = sentence.strip()
            if len(sentence) < 12:
                continue
            facts.append(sentence if hit.title.lower() in sentence.lower() else f"{hit.title}: {sentence}")
    return facts


def order_lines(customer: Customer) -> list[dict]:
    """The customer's orders as the prompt shows them (product names, not ids)."""
    return [{"date": o.date, "quantity": o.quantity, "product": records.product_by_id(o.product_id).name,
             "total": f"${o.total:.2f}", "order_id": o.order_id} for o in customer.orders]


class ContosoChat:
    """The Contoso Outdoors support assistant: grounded answers with citations for one signed-in customer."""

    def __init__(self, settings: Settings | None = None, retriever: Retriever | None = None,
                 customers: CustomerStore | None = None, chat: ChatTarget | None = None,
                 prompty_path=prompts.DEFAULT_PROMPTY, use_retrieval: bool = True, top_k: int = 5,
                 max_facts: int = 6, decline_below: float | None = OUT_OF_SCOPE_SIMILARITY,
                 max_tokens: int | None = None, temperature: float = 0.0, seed: int = 42) -> None:
        self.settings = settings or load_settings()
        self.retriever = retriever or ensure_index(self.settings, log=lambda *_: None)
        self.customers = customers or ensure_customers(self.settings)
        self.chat = chat or chat_target(self.settings, log=lambda *_: None)
        self.prompty = prompts.load(prompty_path)
        self.use_retrieval = use_retrieval
        self.top_k = top_k
        self.max_facts = max_facts
        self.decline_below = decline_below
        self.max_tokens = max_tokens or int(self.prompty.parameters.get("max_tokens", 96))
        self.temperature = temperature
        self.seed = seed
        self.content_safety = content_safety.from_settings(self.settings)
        self._embedder = getattr(self.retriever, "embedder", None)
        self._private = None

    def private_details(self) -> dict[str, list[str]]:
        """Identifying strings per customer, read once (for the output guard)."""
        if self._private is None:
            self._private = self.customers.private_details()
        return self._private

    def select_facts(self, question: str, hits: Sequence[Hit]) -> list[Fact]:
        """The lines of the top sources most similar to the question, at most `max_facts`."""
        sources = list(dict.fromkeys(h.source_id for h in hits))[:FACT_SOURCES]
        pool = [(h.source_id, f) for h in hits if h.source_id in sources for f in candidate_facts(h)]
        pool = list(dict.fromkeys(pool))
        if not pool or self._embedder is None:
            return [Fact(s, t, 0.0) for s, t in pool[: self.max_facts]]
        vectors = np.asarray(_cached_vectors(self._embedder, tuple(t for _, t in pool)), dtype=np.float32)
        query = np.asarray(self._embedder.embed([question])[0], dtype=np.float32)
        similarities = vectors @ query
        order = sorted(range(len(pool)), key=lambda i: (-similarities[i], pool[i]))[: self.max_facts]
        return [Fact(pool[i][0], pool[i][1], round(float(similarities[i]), 3)) for i in order]

    def messages(self, question: str, customer: Customer, history: Sequence[dict], facts: Sequence[Fact]) -> list[dict]:
        """The chat messages the model receives, rendered from the prompty.

        The customer's name and tier are always there; the order list only for questions about the
        customer's own account, which keeps other prompts shorter (and faster on a CPU).
        """
        orders = order_lines(customer) if ACCOUNT_QUESTION.search(question) else []
        return prompts.render(
            self.prompty, question=question, history=list(history),
            documentation=[{"source_id": f.source_id, "text": guards.strip_invisible(f.text)} for f in facts],
            customer={"first_name": customer.first_name, "membership": customer.membership, "orders": orders},
        )

    def __call__(self, question: str, customer_id: str, chat_history: Sequence[dict] = ()) -> ChatResponse:
        """Answer one turn for the signed-in customer `customer_id` (one `contoso_chat` trace span)."""
        with tracer.start_as_current_span("contoso_chat") as span:
            reply = self._answer(question, customer_id, chat_history)
            span.set_attribute("answer.declined", reply["usage"]["declined"])
            span.set_attribute("answer.citations", reply["citations"])
            span.set_attribute("answer.guard", reply["usage"]["guard"])
            return reply

    def _answer(self, question: str, customer_id: str, chat_history: Sequence[dict]) -> ChatResponse:
        started = time.perf_counter()
        question, history = guards.check_input(question, chat_history, customer_id)
        with tracer.start_as_current_span("customer_lookup") as span:
            customer = self.customers.get(customer_id)
            span.set_attribute("customer.found", customer is not None)
        if customer is None:
            raise InputError("customer_id", "Unknown customer id; sign in again.")
        facts: list[Fact] = []
        retrieved: list[str] = []
        best_similarity = None
        retrieval_ms = 0.0
        if self.use_retrieval:
            with tracer.start_as_current_span("retrieve") as span:
                t0 = time.perf_counter()
                query = standalone_query(question, history)
                hits = self.retriever.search(query, k=self.top_k)
                retrieved = [h.source_id for h in hits]
                similarities = [h.similarity for h in hits if h.similarity is not None]
                best_similarity = max(similarities) if similarities else None
                facts = self.select_facts(query, hits)
                retrieval_ms = (time.perf_counter() - t0) * 1000
                span.set_attribute("retrieval.query", query)
                span.set_attribute("retrieval.sources", [h.source_id for h in hits])
            off_topic = best_similarity is not None and self.decline_below is not None and best_similarity < self.decline_below
            if off_topic and not ACCOUNT_QUESTION.search(question) and not STORE_TOPIC.search(question):
                return self._response(DECLINE_ANSWER, [], started, retrieval_ms, None, declined=True,
                                      best_similarity=best_similarity, retrieved=retrieved)
        if self.content_safety is not None:
            flagged = self.content_safety.blocked(question)
            if flagged:
                return self._response(content_safety.BLOCKED_ANSWER, [], started, retrieval_ms, None,
                                      guard=[f"content-safety:{c}" for c in flagged], retrieved=retrieved)
        with tracer.start_as_current_span("chat_model") as span:
            try:
                completion = self._complete(self.messages(question, customer, history, facts))
            except openai.BadRequestError as error:
                if not is_content_filter_error(error):
                    raise
                return self._response(content_safety.BLOCKED_ANSWER, [], started, retrieval_ms, None,
                                      guard=["content-filter"], retrieved=retrieved)
            if completion.choices[0].finish_reason == "content_filter":
                return self._response(content_safety.BLOCKED_ANSWER, [], started, retrieval_ms, completion.usage,
                                      guard=["content-filter"], retrieved=retrieved)
            usage = completion.usage
            span.set_attribute("llm.model", self.chat.model)
            span.set_attribute("llm.usage.prompt_tokens", getattr(usage, "prompt_tokens", 0) or 0)
            span.set_attribute("llm.usage.completion_tokens", getattr(usage, "completion_tokens", 0) or 0)
        checked = guards.check_output(completion.choices[0].message.content or "", customer_id, self.private_details())
        citations = [] if checked.withheld else list(dict.fromkeys(f.source_id for f in facts))
        return self._response(checked.answer, citations, started, retrieval_ms, usage,
                              guard=list(checked.reasons), best_similarity=best_similarity, retrieved=retrieved)

    def _complete(self, messages: list[dict]):
        """One chat completion; if the local model server went away, start it again and retry once."""
        def create():
            return self.chat.client.chat.completions.create(
                model=self.chat.model, messages=messages, temperature=self.temperature, seed=self.seed,
                max_tokens=self.max_tokens)
        try:
            return create()
        except openai.APIConnectionError:
            if self.chat.backend != "local":
                raise
            self.chat = chat_target(self.settings, log=lambda *_: None)
            return create()

    def _response(self, answer: str, citations: list[str], started: float, retrieval_ms: float, usage,
                  declined: bool = False, guard: list[str] | None = None,
                  best_similarity: float | None = None, retrieved: list[str] | None = None) -> ChatResponse:
        return ChatResponse(answer=answer, citations=citations, usage={
            "model": self.chat.model,
            "prompt_tokens": getattr(usage, "prompt_tokens", 0) or 0,
            "completion_tokens": getattr(usage, "completion_tokens", 0) or 0,
            "total_tokens": getattr(usage, "total_tokens", 0) or 0,
            "latency_s": round(time.perf_counter() - started, 3),
            "retrieval_ms": round(retrieval_ms, 1),
            "best_similarity": None if best_similarity is None else round(best_similarity, 3),
            "declined": declined,
            "guard": guard or [],
            "retrieved": retrieved or [],
        })


_fact_vectors: dict[tuple[str, str], tuple[float, ...]] = {}


def _cached_vectors(embedder, texts: tuple[str, ...]) -> list[tuple[float, ...]]:
    """Embeddings of fact lines, computed once per distinct line and embedding model."""
    missing = [t for t in dict.fromkeys(texts) if (embedder.name, t) not in _fact_vectors]
    if missing:
        if len(_fact_vectors) > 20000:
            _fact_vectors.clear()
        for text, vector in zip(missing, embedder.embed(missing)):
            _fact_vectors[(embedder.name, text)] = tuple(vector)
    return [_fact_vectors[(embedder.name, t)] for t in texts]

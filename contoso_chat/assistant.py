"""ContosoChat: the assistant itself, plain Python.

    chat = ContosoChat()
    chat("How much does the Summit Dome 2 Tent weigh?", customer_id="C1001")
    -> {"answer": ..., "citations": ["product-1"], "usage": {...}}

Steps: input guard -> standalone search query from the history -> hybrid retrieval -> the
facts most similar to the question (for each product a comparison names) -> a decline for products
the store does not carry -> this customer's orders (by the id the caller passes, never one found in
the text; only those the question is about) -> harm check -> prompty -> chat model -> output guard.
Which of these steps are on is measured, lever by lever, by `contoso_chat.evaluation.levers`.

The model cites the facts it used by their source ids, inline as `[product-1]` or in a JSON reply
(`citation_style`); the app keeps only cited ids that were among the facts shown. The model declines
by replying with the decline signal the prompt defines ("I don't know"); the app also declines
questions unlike anything in the store's documents, and answers its guards or the harm check
stop. Either way `usage["declined"]` says so and `usage["decline_reason"]` says why.
"""


import json
import re
import sys
import time
from dataclasses import dataclass
from typing import Literal, Sequence, TypedDict

import numpy as np
import openai
from opentelemetry import trace

from contoso_chat import catalog, guards, prompts, records
from contoso_chat.backends import content_safety
from contoso_chat.backends.chat import ChatTarget, chat_target, is_content_filter_error, json_response_format
from contoso_chat.backends.customers import CustomerStore, ensure_customers
from contoso_chat.backends.search import decline_threshold, ensure_decline_threshold, ensure_index
from contoso_chat.backends.search_types import Hit, Retriever
from contoso_chat.backends.settings import Settings, load_settings
from contoso_chat.guards import InputError
from contoso_chat.records import Customer

tracer = trace.get_tracer("contoso_chat")

DECLINE_ANSWER = (
    "I'm sorry, I can only help with Contoso Outdoors products, your orders and our store policies, and I "
    "couldn't find anything about that. For anything else, please contact support@contoso-outdoors.example."
)
NOT_CARRIED_ANSWER = (
    "I'm sorry, Contoso Outdoors doesn't sell that product, so I can't tell you about it. I can help with the "
    "products we do sell, your orders and our store policies."
)
FACT_SOURCES = 3  # facts come from the top sources of the retrieval
STORE_TOPIC = re.compile(  # questions about how the store works are in scope even when no passage matches well
    r"\b(orders?|cancel\w*|returns?|returning|refunds?|exchanges?|shipping|ship|delivery|deliveries|warranty|"
    r"warranties|membership|member|points|tier|tracking)\b",
    re.IGNORECASE,
)
CITATION_MARK = re.compile(r"\[\s*((?:product|policy)-[a-z0-9]+)\s*\]", re.IGNORECASE)  # "[XS-XXL]" is not a source id
DECLINE_SIGNALS = ("i don't know", "i do not know", "i dont know")  # the prompt's one-line way to decline
# a source mark where the figure should be ("The tent weighs [product-1]."): the reply has no answer in it
MARK_FOR_FIGURE = re.compile(
    r"\b(?:is|are|was|were|weighs?|costs?|measures?|lasts?|holds?|takes?|of|at|to|for|about|around)[ \t]*"
    r"(?:\[\s*(?:product|policy)-[a-z0-9]+\s*\][ \t,]*)+(?:[.!?]|$)", re.IGNORECASE)  # one mark or several
# the same reply read without its marks: a sentence that stops on the verb its figure should follow ("The Summit
# Dome 2 Tent weighs." when the mark came after the full stop, "weighs. [product-1]")
VERB_WITHOUT_FIGURE = re.compile(  # also the short forms: "It's." or "That's." alone says nothing
    r"\b(?:is|are|weighs|costs|measures|it['\u2019]s|that['\u2019]s)[ \t]*[.!](?=\s|$)", re.IGNORECASE)
CitationStyle = Literal["inline", "json"]
ACCOUNT_QUESTION = re.compile(  # questions about the customer's own account skip the off-topic decline
    r"\bmy\s+(?:[\w-]+\s+){0,4}(?:orders?|account|tier|membership|points|address|purchases?)\b"
    r"|\border\s+(?:number|id|total|date|history)\b|\b(?:cost|charged)\s+me\b"
    r"|\b(?:did|have)\s+i\s+(?:order|buy|purchase|pay|get)|\bi\s+(?:ordered|bought|purchased|paid)\b"
    r"|\b(?:the|those|that|these)\s+(?:[\w-]+\s+){0,4}i\s+(?:got|ordered|bought|purchased)\b",
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


@dataclass(frozen=True)
class ModelReply:
    """The model's answer read back: the text to show, the valid citations, what was dropped, a decline."""

    answer: str
    citations: list[str]
    invalid_citations: int
    declined: bool
    incomplete: bool = False  # a source mark stands where the figure should be: nothing to show


def standalone_query(question: str, chat_history: Sequence[dict]) -> str:
    """The search query for a follow-up: the latest earlier user turn supplies what "it" refers to."""
    earlier = [t["content"] for t in chat_history if t["role"] == "user"]
    if not earlier:
        return question
    return f"{earlier[-1][:300]} {question}"


def case_query(question: str, chat_history: Sequence) -> str:
    """The search query of an evaluation case, built as the app builds it (turns may be records or dicts)."""
    return standalone_query(question, [t if isinstance(t, dict) else t.model_dump() for t in chat_history])


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


MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")


def matching_order_lines(customer: Customer, question: str) -> list[dict]:
    """The order lines a question is about (the product it names or describes, or the month it gives), each with
    its order id to copy; all of them when none matches (say, "what did I order last?")."""
    lines = order_lines(customer)
    asked = question.lower()
    month = {f"{i:02d}" for i, name in enumerate(MONTHS, start=1) if re.search(rf"\b{name}\b", asked)}
    picked = [line for line, order in zip(lines, customer.orders)
              if catalog.mentions(question, records.product_by_id(order.product_id)) or order.date[5:7] in month]
    return picked or lines


def is_fact_line(text: str) -> bool:
    """False for lines that state nothing: a manual's questions ("How much does it weigh?") and headings
    ("What customers say about the X:", "The specifications are listed below.")."""
    bare = text.strip()
    return not (bare.endswith("?") or bare.endswith(":") or "listed below" in bare.lower())


SENTENCE_END = re.compile(r"[.!?](?:\s*\[[^\]]*\])*(?=\s|$)")


def complete_sentences(text: str) -> str:
    """A reply cut off by the token limit, up to its last complete sentence (the whole text when none ends)."""
    ends = list(SENTENCE_END.finditer(text))
    return text[:ends[-1].end()].strip() if ends else text.strip()


def is_decline(text: str) -> bool:
    """True when the model's whole answer is the decline signal, maybe in bold or after an apology ("I'm sorry, I
    don't know."); an answer that goes on to state facts is not."""
    bare = re.sub(r"[*_`]+", "", CITATION_MARK.sub("", text)).lower().replace("\u2019", "'")
    bare = re.sub(r"^\W*(?:(?:i'm|i am)\s+)?(?:sorry|unfortunately)\b\W*", "", bare.strip())
    return bare.strip().strip("\"'").rstrip(".!").strip() in DECLINE_SIGNALS


def read_model_reply(text: str, shown_sources: Sequence[str], style: CitationStyle) -> ModelReply:
    """The answer and citations from the model's reply: inline `[source-id]` marks, or JSON {answer, sources}."""
    if style == "json":
        try:
            data = json.loads(text, strict=False)  # llama.cpp's JSON grammar lets raw newlines into strings
            answer = str(data.get("answer", ""))
            cited = [str(s) for s in data.get("sources", []) if isinstance(s, str)]
        except (ValueError, AttributeError):
            answer, cited = text, []
    else:
        cited = [m.lower() for m in CITATION_MARK.findall(text)]
        answer = re.sub(r"[ \t]+([.,;:!?])", r"\1", CITATION_MARK.sub("", text))
        answer = re.sub(r"[ \t]{2,}", " ", answer).strip()
    valid = [c for c in dict.fromkeys(cited) if c in set(shown_sources)]
    invalid = sum(1 for c in cited if c not in set(shown_sources))
    incomplete = style == "inline" and bool(MARK_FOR_FIGURE.search(text) or VERB_WITHOUT_FIGURE.search(answer))
    return ModelReply(answer.strip(), valid, invalid, is_decline(answer), incomplete)


class ContosoChat:
    """The Contoso Outdoors support assistant: grounded answers with citations for one signed-in customer.

    Creating it reads settings, opens the search index and the customer store (locally it builds the
    index and loads the SQLite store from data/ when they are missing or out of date; on Azure it only
    opens them), and connects to the chat model (locally it starts or reuses the llama.cpp server).
    """

    def __init__(self, settings: Settings | None = None, retriever: Retriever | None = None,
                 customers: CustomerStore | None = None, chat: ChatTarget | None = None,
                 prompty_path=prompts.DEFAULT_PROMPTY, use_retrieval: bool = True, top_k: int = 5,
                 max_facts: int = 6, decline_below: float | None = None,
                 citation_style: CitationStyle = "inline", max_tokens: int | None = None,
                 temperature: float = 0.0, seed: int = 42, clean_facts: bool = False,
                 facts_per_product: bool = False, matched_orders: bool = False, catalog_check: bool = True,
                 concise: bool = False, answer_cache: dict | None = None) -> None:
        self.settings = settings or load_settings()
        self.retriever = retriever or ensure_index(self.settings, log=lambda *_: None)
        self.customers = customers or ensure_customers(self.settings)
        self.chat = chat or chat_target(self.settings, log=lambda *_: None)
        self.prompty = prompts.load(prompty_path)
        self.use_retrieval = use_retrieval
        self.top_k = top_k
        self.max_facts = max_facts
        self._embedder = getattr(self.retriever, "embedder", None)
        # below this cosine similarity to every chunk a question is not about the store: the value calibrated
        # for the embedding model on the dev split (contoso_chat.backends.search), unless one is given; a model
        # with none stored (an Azure embedding deployment) is calibrated on first start, never left without one
        self.decline_below = decline_below if decline_below is not None else \
            decline_threshold(getattr(self._embedder, "name", ""))
        if self.decline_below is None and self._embedder is not None:
            self.decline_below = ensure_decline_threshold(
                self.retriever, self._embedder.name, make_query=case_query,
                log=lambda message: print(message, file=sys.stderr))
        self.citation_style = citation_style
        self.max_tokens = max_tokens or int(self.prompty.parameters.get("max_tokens", 96))
        self.temperature = temperature
        self.seed = seed
        self.content_safety = content_safety.from_settings(self.settings, self._embedder)
        # the quality levers (contoso_chat.evaluation.levers measures each against the app without them; the
        # defaults are the ones kept): facts without the manuals' questions and headings; facts for each product a
        # comparison names; only the orders asked about, with their ids; a decline for products the store does not
        # carry (kept); replies that stop at a blank line and end on a full sentence
        self.clean_facts = clean_facts
        self.facts_per_product = facts_per_product
        self.matched_orders = matched_orders
        self.catalog_check = catalog_check
        self.concise = concise
        self.answer_cache = answer_cache  # replies by prompt and decoding settings, shared by variants
        self._private = None
        self._cache_hit = False

    def private_details(self) -> dict[str, list[str]]:
        """Identifying strings per customer, read once (for the output guard)."""
        if self._private is None:
            self._private = self.customers.private_details()
        return self._private

    def select_facts(self, question: str, hits: Sequence[Hit]) -> list[Fact]:
        """The lines of the top sources most similar to the question, at most `max_facts`."""
        sources = list(dict.fromkeys(h.source_id for h in hits))[:FACT_SOURCES]
        pool = [(h.source_id, f) for h in hits if h.source_id in sources for f in candidate_facts(h)]
        pool = list(dict.fromkeys(p for p in pool if not self.clean_facts or is_fact_line(p[1])))
        if not pool or self._embedder is None:
            return [Fact(s, t, 0.0) for s, t in pool[: self.max_facts]]
        vectors = np.asarray(_cached_vectors(self._embedder, tuple(t for _, t in pool)), dtype=np.float32)
        query = np.asarray(self._embedder.embed([question])[0], dtype=np.float32)
        similarities = vectors @ query
        order = sorted(range(len(pool)), key=lambda i: (-similarities[i], pool[i]))[: self.max_facts]
        return [Fact(pool[i][0], pool[i][1], round(float(similarities[i]), 3)) for i in order]

    def comparison_facts(self, query: str, named: Sequence[records.Product]) -> list[Fact]:
        """Facts for each product a question names, an equal share each (a comparison needs both sides)."""
        share = max(1, self.max_facts // len(named))
        facts: list[Fact] = []
        for product in named:
            hits = [h for h in self.retriever.search(f"{product.name}: {query}", k=self.top_k)
                    if h.source_id == product.source_id]
            facts += self.select_facts(query, hits)[:share]
        return facts

    def messages(self, question: str, customer: Customer, history: Sequence[dict], facts: Sequence[Fact]) -> list[dict]:
        """The chat messages the model receives, rendered from the prompty.

        The customer's name and tier are always there; the order list only for questions about the
        customer's own account, which keeps other prompts shorter (and faster on a CPU).
        """
        orders = []
        if ACCOUNT_QUESTION.search(question):
            orders = matching_order_lines(customer, question) if self.matched_orders else \
                [{k: v for k, v in line.items() if k != "order_id"} for line in order_lines(customer)]
        return prompts.render(
            self.prompty, question=question, history=list(history), citation_style=self.citation_style,
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
        turn = self.start_turn(question, customer_id, chat_history)
        early = self.retrieve(turn)
        if early is not None:
            return early
        messages = self.turn_messages(turn)
        with tracer.start_as_current_span("chat_model") as span:
            try:
                completion = self._complete(messages, sorted({f.source_id for f in turn["facts"]}))
            except openai.BadRequestError as error:
                if not is_content_filter_error(error):
                    raise
                return self._response(turn, content_safety.BLOCKED_ANSWER, [], None, declined="content-filter",
                                      guard=["content-filter"])
            usage = completion.usage
            span.set_attribute("llm.model", self.chat.model)
            span.set_attribute("llm.usage.prompt_tokens", getattr(usage, "prompt_tokens", 0) or 0)
            span.set_attribute("llm.usage.completion_tokens", getattr(usage, "completion_tokens", 0) or 0)
        turn["cached"] = self._cache_hit
        choice = completion.choices[0]
        return self.finish(turn, choice.message.content or "", usage, choice.finish_reason)

    # The steps of one turn, in order. The flex flow runs them through __call__; another engine (the Agent
    # Framework workflow in contoso_chat.agentframework) runs the same steps, so both answer alike.

    def start_turn(self, question: str, customer_id: str, chat_history: Sequence[dict] = ()) -> dict:
        """Step 1, the input guard: check the question and history, find the signed-in customer; a new turn."""
        started = time.perf_counter()
        question, history = guards.check_input(question, chat_history, customer_id)
        with tracer.start_as_current_span("customer_lookup") as span:
            customer = self.customers.get(customer_id)
            span.set_attribute("customer.found", customer is not None)
        if customer is None:
            raise InputError("customer_id", "Unknown customer id; sign in again.")
        return {"started": started, "retrieval_ms": 0.0, "best_similarity": None, "retrieved": [], "shown": [],
                "question": question, "history": history, "customer": customer, "customer_id": customer_id,
                "facts": []}

    def retrieve(self, turn: dict) -> ChatResponse | None:
        """Step 2: retrieval and fact selection into the turn; the app's decline when the question must not reach
        the model (off-topic, a product the store does not carry, the harm check), else None."""
        question, history = turn["question"], turn["history"]
        if self.use_retrieval:
            with tracer.start_as_current_span("retrieve") as span:
                t0 = time.perf_counter()
                query = standalone_query(question, history)
                hits = self.retriever.search(query, k=self.top_k)
                turn["retrieved"] = [h.source_id for h in hits]
                similarities = [h.similarity for h in hits if h.similarity is not None]
                turn["best_similarity"] = max(similarities) if similarities else None
                named = catalog.named_products(query) if self.facts_per_product else []
                turn["facts"] = self.comparison_facts(query, named) if len(named) > 1 else self.select_facts(query, hits)
                turn["retrieval_ms"] = (time.perf_counter() - t0) * 1000
                span.set_attribute("retrieval.query", query)
                span.set_attribute("retrieval.sources", turn["retrieved"])
            best = turn["best_similarity"]
            off_topic = best is not None and self.decline_below is not None and best < self.decline_below
            if off_topic and not ACCOUNT_QUESTION.search(question) and not STORE_TOPIC.search(question):
                return self._response(turn, DECLINE_ANSWER, [], None, declined="off-topic")
        if self.catalog_check and catalog.not_carried(question) and not ACCOUNT_QUESTION.search(question):
            return self._response(turn, NOT_CARRIED_ANSWER, [], None, declined="not-carried")
        flagged = self.content_safety.blocked(question) if self.content_safety is not None else []
        if flagged:
            return self._response(turn, content_safety.BLOCKED_ANSWER, [], None, declined="harm-check",
                                  guard=[f"{self.content_safety.name}:{c}" for c in flagged])
        return None

    def turn_messages(self, turn: dict) -> list[dict]:
        """Step 3's prompt: the messages the model reads for this turn (kept in the turn for the metrics)."""
        messages = self.messages(turn["question"], turn["customer"], turn["history"], turn["facts"])
        turn["messages"] = messages
        turn["shown"] = [m["content"] for m in messages]  # everything the model read: unsupported claims check it
        return messages

    def finish(self, turn: dict, model_reply: str, usage, finish_reason: str | None = None) -> ChatResponse:
        """Step 4, the output guard: read the model's reply (citations, its own decline, a cut-off figure), then
        withhold other customers' data, the rules and harmful text; the turn's final response."""
        if finish_reason == "content_filter":
            return self._response(turn, content_safety.BLOCKED_ANSWER, [], usage,
                                  declined="content-filter", guard=["content-filter"])
        turn["model_reply"] = model_reply
        customer_id, customer, facts = turn["customer_id"], turn["customer"], turn["facts"]
        if self.concise and self.citation_style == "inline" and finish_reason == "length":
            turn["model_reply"] = complete_sentences(turn["model_reply"])
        reply = read_model_reply(turn["model_reply"], [f.source_id for f in facts], self.citation_style)
        if reply.declined or reply.incomplete:
            return self._response(turn, DECLINE_ANSWER, [], usage, declined="incomplete" if reply.incomplete else "model",
                                  invalid_citations=reply.invalid_citations)
        policy = guards.OutputPolicy(customer_id, self.private_details(), frozenset(o.order_id for o in customer.orders),
                                     prompts.confidential_rules(turn["messages"]))
        checked = guards.check_output(reply.answer, policy)
        harmful = self.content_safety.blocked(checked.answer) if self.content_safety and not checked.withheld else []
        if harmful:
            return self._response(turn, content_safety.BLOCKED_ANSWER, [], usage, declined="harm-check",
                                  guard=[f"{self.content_safety.name}:{c}:answer" for c in harmful],
                                  invalid_citations=reply.invalid_citations)
        return self._response(turn, checked.answer, [] if checked.withheld else reply.citations, usage,
                              declined="output-guard" if checked.withheld else None, guard=list(checked.reasons),
                              invalid_citations=reply.invalid_citations)

    def _complete(self, messages: list[dict], source_ids: Sequence[str]):
        """One chat completion; if the local model server went away, start it again and retry once."""
        extra = {}
        if self.citation_style == "json":
            schema = {"type": "object", "additionalProperties": False, "required": ["answer", "sources"],
                      "properties": {"answer": {"type": "string"},
                                     "sources": {"type": "array", "items": {"type": "string",
                                                                            "enum": list(source_ids) or ["none"]}}}}
            extra["response_format"] = json_response_format(self.chat.backend, schema, "answer")

        if self.concise and self.citation_style == "inline":  # a blank line may sit inside a JSON reply
            extra["stop"] = ["\n\n"]
        key = json.dumps([self.chat.model, messages, self.temperature, self.seed, self.max_tokens, extra], sort_keys=True)
        self._cache_hit = self.answer_cache is not None and key in self.answer_cache
        if self._cache_hit:
            return self.answer_cache[key]

        def create():
            return self.chat.client.chat.completions.create(
                model=self.chat.model, messages=messages, temperature=self.temperature, seed=self.seed,
                max_tokens=self.max_tokens, **extra)
        try:
            completion = create()
        except openai.APIConnectionError:
            if self.chat.backend != "local":
                raise
            self.chat = chat_target(self.settings, log=lambda *_: None)
            completion = create()
        if self.answer_cache is not None:
            self.answer_cache[key] = completion
        return completion

    def _response(self, turn: dict, answer: str, citations: list[str], usage, declined: str | None = None,
                  guard: list[str] | None = None, invalid_citations: int = 0) -> ChatResponse:
        best = turn["best_similarity"]
        return ChatResponse(answer=answer, citations=citations, usage={
            "model": self.chat.model,
            "prompt_tokens": getattr(usage, "prompt_tokens", 0) or 0,
            "completion_tokens": getattr(usage, "completion_tokens", 0) or 0,
            "total_tokens": getattr(usage, "total_tokens", 0) or 0,
            "latency_s": round(time.perf_counter() - turn["started"], 3),
            "retrieval_ms": round(turn["retrieval_ms"], 1),
            "best_similarity": None if best is None else round(best, 3),
            "declined": declined is not None,
            "decline_reason": declined,
            "guard": guard or [],
            "retrieved": turn["retrieved"],
            "invalid_citations": invalid_citations,
            "cached": turn.get("cached", False),  # the reply was reused from an identical earlier prompt
            "shown": turn["shown"],
            "model_reply": turn.get("model_reply", ""),  # the reply as the model wrote it, citation marks included
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

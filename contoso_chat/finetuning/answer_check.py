"""Does the exported model end its answers where they should? Probe questions, asked through the app's own turn
steps and answered by llama.cpp on the exported GGUF file, read back by the app as it reads every reply.

A fine-tuned model once answered "The Summit Dome 2 Tent weighs [product-1].": the source mark stood where the
figure should be, and with the mark removed the customer read "The Summit Dome 2 Tent weighs." The habit came from
training answers that repeated the question ("The {attr} of the {product} is {value} [source]."): asked for
something whose answer is a sentence, not a value (washing instructions, a warranty, a policy), the model repeated the
question and went straight to the mark; the training answers now copy the fact line shown instead (training_data).
The app declines such a reply (`ModelReply.incomplete`), so a customer never reads a cut answer, but the model's
answer is lost. The check counts both: replies with the habit (a figure to bring
down) and final answers that end cut short (must be none). `make finetune` records them in build/finetune/run.json.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from contoso_chat import records
from contoso_chat.assistant import ContosoChat, read_model_reply

Message = dict[str, str]
# Asks the app answers from manual and policy sentences (the kind that came back as "... is [product-20].") and a
# few figure asks; products of both splits, so the test split's products, which training never saw, are included.
PRODUCT_PROBES = (
    "What are the washing instructions for the {product}?",
    "How should I store the {product}?",
    "What is the warranty on the {product}?",
    "How much does the {product} weigh?",
)
POLICY_PROBES = (
    "What is the policy for late or lost packages?",
    "What is the policy for returning used items?",
    "What is the policy on cancelling an order?",
    "What is the warranty policy?",
)
PRODUCTS = (1, 8, 9, 20)  # two test-split products (1, 8) and two dev ones (9, 20), each asked every product probe
PROBE_CUSTOMER = "C1004"


# What a reader sees when an answer stops where its figure or sentence should be: the last word before the full stop
# is a verb or a word that needs what follows ("The tent weighs.", "The policy for late packages is."). Kept apart
# from the app's own reading of the reply (assistant.MARK_FOR_FIGURE), which this check scores.
DANGLING_END = re.compile(r"\b(?:is|are|was|were|weighs?|costs?|measures?|lasts?|holds?|takes?|of|at|to|for|about|"
                          r"around|the|a|an|and|with|by)\s*[.!?]\s*$", re.IGNORECASE)


def probes_count() -> int:
    return len(PRODUCTS) * len(PRODUCT_PROBES) + len(POLICY_PROBES)


@dataclass(frozen=True)
class CutOff:
    """The probes asked; the replies whose source mark stands where the answer should be (the model's habit); the
    answers the customer would have read cut short after the app's own reading (what must never happen)."""

    probes: int
    replies: list[dict]
    shown_cut: list[dict]

    @property
    def count(self) -> int:
        return len(self.replies)

    def as_record(self) -> dict:
        return {"probes": self.probes, "cut_off": self.count, "replies": self.replies[:5],
                "shown_cut_short": len(self.shown_cut), "shown": self.shown_cut[:5]}


def probe_turns(app: ContosoChat) -> list[tuple[str, dict, list[Message]]]:
    """Each probe's question, the app's turn for it (input guard and retrieval done) and the messages it sends."""
    questions = [q.format(product=records.product_by_id(p).name) for p in PRODUCTS for q in PRODUCT_PROBES]
    probes = []
    for question in [*questions, *POLICY_PROBES]:
        turn = app.start_turn(question, PROBE_CUSTOMER)
        if app.retrieve(turn) is not None:
            raise ValueError(f"The app declines the probe {question!r} before the model sees it; pick another probe.")
        probes.append((question, turn, app.turn_messages(turn)))
    return probes


def cut_off_replies(answer: Callable[[list[Message]], str], app: ContosoChat, probes) -> CutOff:
    """Ask every probe with `answer` (messages -> the model's reply), read each reply as the app does (citations,
    its own decline, the output guard), and keep the replies with a mark where the answer should be and the final
    answers that end cut short."""
    replies, shown = [], []
    for question, turn, messages in probes:
        result = answer(messages)  # the reply, or (reply, finish_reason) as the server gives them
        reply, finish_reason = result if isinstance(result, tuple) else (result, None)
        if read_model_reply(reply, [f.source_id for f in turn["facts"]], "inline").incomplete:
            replies.append({"question": question, "reply": reply})
        final = app.finish(dict(turn), reply, None, finish_reason)["answer"]
        if DANGLING_END.search(final):
            shown.append({"question": question, "reply": reply, "answer": final})
    return CutOff(len(probes), replies, shown)


def llama_cpp_answerer(gguf_path: Path, app: ContosoChat) -> tuple[Callable, Callable[[], None]]:
    """Answer messages with llama.cpp on a GGUF file with the app's decoding settings (temperature, seed, token
    limit, and its blank-line stop when the app asks for concise replies); returns the answer function, which gives
    (reply, finish_reason), and the one that frees the model."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf_path), n_ctx=2048, n_threads=2, seed=app.seed, verbose=False)
    stop = ["\n\n"] if app.concise and app.citation_style == "inline" else None

    def answer(messages: Sequence[Message]) -> tuple[str, str | None]:
        result = llm.create_chat_completion(messages=list(messages), temperature=app.temperature,
                                            max_tokens=app.max_tokens, stop=stop, seed=app.seed)
        choice = result["choices"][0]
        return choice["message"]["content"] or "", choice.get("finish_reason")

    return answer, llm.close


def check_exported_model(gguf_path: Path, app: ContosoChat | None = None) -> CutOff:
    """The cut-off check on an exported model file."""
    app = app or ContosoChat()
    answer, close = llama_cpp_answerer(gguf_path, app)
    try:
        return cut_off_replies(answer, app, probe_turns(app))
    finally:
        close()

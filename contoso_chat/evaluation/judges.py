"""LLM judges: a model scores each answer 1-5 for groundedness, relevance, coherence and fluency.

Local model: short rubrics sent through the openai SDK with a JSON schema (llama.cpp turns it into a
grammar), so every reply is a score and a reason: nothing goes unparsed. Azure OpenAI or OpenAI:
azure-ai-evaluation's built-in quality evaluators, whose replies can fail to parse and are counted.
A judge is a model too: `agreement` measures it against a deterministic label of the same property.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from contoso_chat.backends.chat import ChatTarget, json_response_format
from contoso_chat.evaluation.intervals import Interval, bootstrap_interval

JUDGES = ("groundedness", "relevance", "coherence", "fluency")
PASS_SCORE = 3  # azure-ai-evaluation's default threshold on its 1-5 scale

RUBRICS = {
    "groundedness": ("Rate how well the ANSWER is supported by the FACTS. 5: every number, name and claim in the "
                     "answer appears in the facts. 3: mostly supported, one detail is not in the facts. 1: the answer "
                     "states numbers or claims that the facts do not contain or that contradict them. An answer that "
                     "says it does not know is supported (5)."),
    "relevance": ("Rate how well the ANSWER addresses the QUESTION. 5: it answers exactly what was asked. 3: related "
                  "but incomplete or partly off the point. 1: it does not address the question."),
    "coherence": ("Rate how logically the ANSWER holds together. 5: clear and consistent. 3: understandable with some "
                  "gaps. 1: contradictory or confused."),
    "fluency": ("Rate the language of the ANSWER. 5: correct, natural English. 3: understandable with errors. 1: "
                "broken or hard to read."),
}
SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
                   "reason": {"type": "string", "maxLength": 60}},
    "required": ["score", "reason"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Verdict:
    """One judge's reading of one answer; `score` is None when the reply could not be parsed."""

    judge: str
    score: int | None
    reason: str


def judge_messages(judge: str, question: str, answer: str, facts: str) -> list[dict]:
    """The chat messages for one judge: the rubric, then only what that property needs."""
    parts = [f"QUESTION: {question}"] if judge in ("relevance", "coherence") else []
    if judge == "groundedness":
        parts = [f"FACTS:\n{facts or '(no facts)'}"]
    parts.append(f"ANSWER: {answer}")
    return [{"role": "system", "content": "You grade answers of a customer-support assistant. " + RUBRICS[judge]
             + " Reply as JSON with a score from 1 to 5 and a one-sentence reason."},
            {"role": "user", "content": "\n\n".join(parts)}]


def parse(judge: str, text: str) -> Verdict:
    """A verdict from the judge's reply; score None when it is not JSON with an integer score from 1 to 5."""
    try:
        reply = json.loads(text, strict=False)  # llama.cpp's JSON grammar lets raw newlines into strings
        score = reply["score"]
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise ValueError(score)
        return Verdict(judge, score, str(reply.get("reason", ""))[:300])
    except (ValueError, KeyError, TypeError):
        return Verdict(judge, None, text[:300])


REPLY_TOKENS = SCHEMA["properties"]["reason"]["maxLength"] + 24  # a reason of one-character tokens still ends


def judge_answer(target: ChatTarget, judge: str, question: str, answer: str, facts: str,
                 max_tokens: int = REPLY_TOKENS) -> Verdict:
    """Ask the chat model to judge one answer, with the reply constrained to the verdict's JSON schema."""
    reply = target.client.chat.completions.create(
        model=target.model, messages=judge_messages(judge, question, answer, facts), temperature=0, seed=42,
        max_tokens=max_tokens, response_format=json_response_format(target.backend, SCHEMA, "verdict"))
    return parse(judge, reply.choices[0].message.content or "")


def agreement(judge_scores: Sequence[int | None], grounded_labels: Sequence[bool], seed: int = 42) -> dict:
    """How often the judge's pass/fail (score >= 3) matches the label, with a bootstrap interval, next to
    the agreement of a judge that always says 'pass' (the base rate a useless judge gets for free)."""
    pairs = [(score >= PASS_SCORE, label) for score, label in zip(judge_scores, grounded_labels) if score is not None]
    if not pairs:
        return {"cases": 0, "agreement": None, "always_pass_agreement": None}
    matches = np.array([judged == label for judged, label in pairs], dtype=float)
    always = float(np.mean([label for _, label in pairs]))
    interval: Interval = bootstrap_interval(matches, seed=seed)
    return {"cases": len(pairs), "agreement": interval.as_dict(), "always_pass_agreement": round(always, 4),
            "judge_pass_rate": round(float(np.mean([judged for judged, _ in pairs])), 4)}

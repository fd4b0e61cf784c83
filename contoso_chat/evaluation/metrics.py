"""Deterministic answer metrics: key facts, refusals, citations and retrieval ranks.

These need no model, so they are fast, repeatable and cheap enough for every pull request.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable, Sequence

REFUSAL_MARKERS = (  # "I'm sorry" alone is not one: the small model opens answers with "I'm sorry for any confusion"
    "i can only help", "i can't help", "i cannot help", "i can not help", "i do not know", "i don't know",
    "i couldn't find", "i could not find", "can't share", "cannot share", "not able to help", "unable to help",
    "i can't assist", "i cannot assist", "i'm not able to", "i can't provide", "i cannot provide",
    "don't have information", "do not have information", "don't have any information",
)


def normalize(text: str) -> str:
    """Lower case, unified dashes, quotes, spaces and degree signs; '$249.00' reads as '$249'."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2212", "-").replace("\u2013", "-").replace("\u2014", "-")
    text = text.replace("\u2019", "'").replace("\u00a0", " ")
    text = re.sub(r"(\$\d[\d,]*)\.00\b", r"\1", text)
    text = re.sub(r"(\d),(\d{3})\b", r"\1\2", text)
    text = re.sub(r"\s*°\s*", " °", text)
    text = re.sub(r"(\d)\s*(kg|g|cm|mm|m|km|l|w|lm|mah|h)\b", r"\1 \2", text)
    return re.sub(r"\s+", " ", text).strip()


def fact_found(fact: str, answer: str) -> bool:
    """True when the key fact appears in the answer, after normalizing both."""
    return normalize(fact) in normalize(answer)


def keyfact_score(answer: str, key_facts: Sequence[str]) -> float:
    """Share of key facts the answer states (1.0 when there are none to state)."""
    if not key_facts:
        return 1.0
    return sum(fact_found(f, answer) for f in key_facts) / len(key_facts)


def is_refusal(answer: str) -> bool:
    """True when the answer declines instead of answering."""
    lowered = normalize(answer)
    return any(marker in lowered for marker in REFUSAL_MARKERS)


def refusal_correct(answer: str, category: str) -> bool:
    """Out-of-scope questions must be declined; every other question must not be."""
    return is_refusal(answer) == (category == "out-of-scope")


def citation_scores(citations: Sequence[str], expected: Sequence[str]) -> tuple[float, float]:
    """(precision, recall) of the cited source ids against the expected ones; 1.0 where nothing is expected."""
    cited, wanted = set(citations), set(expected)
    if not wanted:
        return (1.0, 1.0)
    precision = len(cited & wanted) / len(cited) if cited else 0.0
    recall = len(cited & wanted) / len(wanted)
    return precision, recall


def recall_at_k(retrieved_sources: Sequence[str], expected: Sequence[str], k: int) -> float:
    """Share of expected sources among the first k distinct retrieved sources."""
    top = list(dict.fromkeys(retrieved_sources))[:k]
    return sum(s in top for s in expected) / len(expected) if expected else 1.0


def reciprocal_rank(retrieved_sources: Sequence[str], expected: Iterable[str]) -> float:
    """1 / rank of the first expected source among the distinct retrieved sources (0 if none)."""
    wanted = set(expected)
    for rank, source in enumerate(dict.fromkeys(retrieved_sources), start=1):
        if source in wanted:
            return 1.0 / rank
    return 0.0

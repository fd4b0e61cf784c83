"""What every search backend shares: the `Retriever` protocol, the `Hit` it returns, search modes, the keyword query."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol, Sequence

from contoso_chat.chunking import Chunk

Mode = Literal["hybrid", "vector", "keyword"]
MODES: tuple[Mode, ...] = ("keyword", "vector", "hybrid")


@dataclass(frozen=True)
class Hit(Chunk):
    """A retrieved chunk with its scores: `score` orders results; `similarity` is the cosine to the query."""

    score: float = 0.0
    similarity: float | None = None


class Retriever(Protocol):
    """Anything that finds chunks for a question."""

    def search(self, query: str, k: int = 5, mode: Mode = "hybrid") -> list[Hit]:
        ...


class Embedder(Protocol):
    """Anything that turns texts into vectors."""

    name: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        ...


def keyword_query(text: str) -> str:
    """The words of a question, without characters the full-text query parser treats as syntax."""
    return " ".join(re.findall(r"[\w°%$.-]+", text)).strip() or "*"

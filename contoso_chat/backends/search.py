"""The search index for the configured backend (local LanceDB, or Azure AI Search opened read-only),
and the out-of-scope decline threshold per embedding model with its calibration."""

from __future__ import annotations

from typing import Callable, Iterable, Protocol, Sequence

import numpy as np

from contoso_chat.backends.search_types import Retriever
from contoso_chat.backends.settings import Settings

# Cosine similarity below which a question matches nothing in the store's documents, per embedding model.
# Calibrated with `calibrate_decline_threshold` on the evaluation dev split; a model missing here has no
# calibrated value yet, and the app then does not decline on similarity (see `decline_threshold`).
DECLINE_THRESHOLDS: dict[str, float] = {
    "all-MiniLM-L6-v2": 0.277,
}


QueryMaker = Callable[[str, Sequence[dict]], str]


class DeclineCase(Protocol):
    """An evaluation case as calibration reads it."""

    question: str
    category: str
    chat_history: Sequence[dict]


def ensure_index(settings: Settings, rebuild: bool = False, log=print) -> Retriever:
    """The retriever for the configured search backend. Locally the index is built if needed; on Azure it
    is only opened (loading it is provisioning: `python -m contoso_chat.azure.data_load`)."""
    if settings.search == "azure":
        from contoso_chat.backends.azure_search import open_azure_index

        return open_azure_index(settings)
    from contoso_chat.backends.lancedb_search import local_index

    return local_index(settings, rebuild=rebuild, log=log)


def decline_threshold(embedding_model: str) -> float | None:
    """The calibrated decline threshold for an embedding model, or None when it has not been calibrated."""
    return DECLINE_THRESHOLDS.get(embedding_model)


def question_alone(question: str, chat_history: Sequence[dict]) -> str:
    """The search query of a case when no rewrite is given: its question."""
    return question


def best_similarities(retriever: Retriever, cases: Iterable[DeclineCase], k: int = 5,
                      make_query: QueryMaker = question_alone) -> list[float]:
    """For each case, the highest cosine similarity between its search query and the retrieved chunks."""
    best = []
    for case in cases:
        hits = retriever.search(make_query(case.question, list(case.chat_history)), k=k)
        similarities = [h.similarity for h in hits if h.similarity is not None]
        if not similarities:
            raise ValueError("The retriever returned no similarity; calibrate with a vector or hybrid search.")
        best.append(max(similarities))
    return best


def best_threshold(similarities: Sequence[float], out_of_scope: Sequence[bool]) -> float:
    """The threshold that classifies the most cases right (decline when below it); ties go to the widest gap."""
    values = np.asarray(similarities, dtype=float)
    labels = np.asarray(out_of_scope, dtype=bool)
    points = np.unique(values)
    candidates = np.concatenate(([points[0] - 1e-3], (points[:-1] + points[1:]) / 2, [points[-1] + 1e-3]))
    correct = np.array([np.sum((values < t) == labels) for t in candidates])
    best = np.flatnonzero(correct == correct.max())
    gaps = np.array([np.min(np.abs(values - candidates[i])) for i in best])
    return round(float(candidates[best[int(np.argmax(gaps))]]), 3)


def calibrate_decline_threshold(retriever: Retriever, cases: Sequence[DeclineCase], k: int = 5,
                                make_query: QueryMaker = question_alone) -> float:
    """The decline threshold that maximises correct declines on these cases (out-of-scope vs answerable).
    Run it on the dev split for each embedding model, with the app's own query rewrite as `make_query`
    (`contoso_chat.assistant.standalone_query`), and put the result in DECLINE_THRESHOLDS."""
    labels = [case.category == "out-of-scope" for case in cases]
    if all(labels) or not any(labels):
        raise ValueError("Calibration needs both out-of-scope and answerable cases.")
    return best_threshold(best_similarities(retriever, cases, k=k, make_query=make_query), labels)

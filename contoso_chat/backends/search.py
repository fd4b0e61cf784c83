"""The search index for the configured backend (local LanceDB, or Azure AI Search opened read-only),
and the out-of-scope decline threshold per embedding model with its calibration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np

from contoso_chat.backends.search_types import Retriever
from contoso_chat.backends.settings import Settings
from contoso_chat.paths import build_dir

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


def stored_thresholds_path() -> Path:
    """Where thresholds calibrated at start-up are kept, per embedding model (a git-ignored build file)."""
    return build_dir() / "decline-thresholds.json"


def _stored_thresholds() -> dict[str, float]:
    path = stored_thresholds_path()
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in stored.items() if isinstance(v, (int, float))} if isinstance(stored, dict) else {}


def decline_threshold(embedding_model: str) -> float | None:
    """The calibrated decline threshold for an embedding model (shipped, else calibrated here at start-up),
    or None when it has not been calibrated."""
    shipped = DECLINE_THRESHOLDS.get(embedding_model)
    return shipped if shipped is not None else _stored_thresholds().get(embedding_model)


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


def ensure_decline_threshold(retriever: Retriever, embedding_model: str, make_query: QueryMaker = question_alone,
                             log: Callable[[str], None] = print) -> float:
    """The decline threshold for this embedding model; when none is stored, calibrate one on the dev split
    (one search per case), store it under the model's name and say so.

    The whole split is used: on samples of 45 to 135 dev cases the best threshold for the local model moved
    from 0.277 to between 0.468 and 0.561, because questions about products the store does not sell look
    like answerable ones.
    """
    known = decline_threshold(embedding_model)
    if known is not None:
        return known
    from contoso_chat import records

    dev = records.qa_cases(split="dev")
    log(f"No decline threshold is stored for embedding model {embedding_model!r}: calibrating one on "
        f"{len(dev)} dev cases ({len(dev)} searches) ...")
    threshold = calibrate_decline_threshold(retriever, dev, make_query=make_query)
    path = stored_thresholds_path()
    path.write_text(json.dumps({**_stored_thresholds(), embedding_model: threshold}, indent=1) + "\n")
    log(f"Decline threshold for {embedding_model!r}: {threshold:.3f}, stored in {path.name} (delete the file to "
        "calibrate again).")
    return threshold

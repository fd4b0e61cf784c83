"""The harm check on questions and answers: Azure AI Content Safety, or a local stand-in.

With AZURE_CONTENT_SAFETY_ENDPOINT set, Azure AI Content Safety (through its Python SDK) rates each
question before the model sees it and each answer before the user does; an Azure OpenAI
content-filter result (see `contoso_chat.backends.chat.is_content_filter_error`) ends in the same
polite answer. Without it, `LocalHarmCheck` stands in: a small embedding classifier that compares the
text with short descriptions of harmful requests per category. It is a stand-in, not a content filter:
it knows only the harms it was given descriptions of, and its threshold was tuned on the red team's
dev split (measured in the operations notebook on the test split).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from contoso_chat.backends.azure_credentials import azure_credential
from contoso_chat.backends.embeddings import LOCAL_EMBEDDING_MODEL
from contoso_chat.backends.settings import Settings

CATEGORIES = ("Hate", "SelfHarm", "Sexual", "Violence")
LOCAL_THRESHOLD = 0.586  # cosine similarity; tuned on the red team's dev split with tune_threshold (notebook 07)
HARM_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "Violence": (
        "how to make a bomb or an explosive device", "turn gas canisters into a bomb",
        "how to build a weapon such as a flamethrower", "make napalm or a burning gel that sticks to people",
        "how to hurt, injure or kill a person", "how to poison someone without them noticing",
        "what to put in someone's food or drink to make them sick", "which plants or mushrooms could poison someone",
        "how to start a wildfire that spreads fast",
    ),
    "SelfHarm": ("how to hurt myself", "ways to kill myself", "how to end my life", "how much of a drug is a lethal overdose"),
    "Sexual": ("write explicit sexual content", "describe a sexual act in detail"),
    "Hate": ("write insults about people of a race or religion", "explain why a group of people is inferior"),
    "Crime": (
        "how to break into a car without the key", "how to pick the lock of someone else's door or shed",
        "write a keylogger or malware to spy on someone's computer", "write a phishing email that steals passwords",
        "how to steal something without getting caught",
    ),
}
BLOCKED_ANSWER = (
    "I'm sorry, I can't help with that request. I can answer questions about Contoso Outdoors products, "
    "store policies and your orders."
)


class AzureContentSafety:
    """Azure AI Content Safety's text analysis: severity per harm category, blocked at `threshold` or above."""

    name = "azure-content-safety"

    def __init__(self, client, threshold: int = 4) -> None:
        self.client = client
        self.threshold = threshold

    def analyze(self, text: str) -> dict[str, int]:
        """Severity per category (0, 2, 4 or 6)."""
        from azure.ai.contentsafety.models import AnalyzeTextOptions, AnalyzeTextOutputType

        result = self.client.analyze_text(AnalyzeTextOptions(
            text=text[:10000], categories=list(CATEGORIES), output_type=AnalyzeTextOutputType.FOUR_SEVERITY_LEVELS))
        return {str(item.category): int(item.severity or 0) for item in result.categories_analysis}

    def blocked(self, text: str) -> list[str]:
        """The categories at or above the threshold (empty when the text may pass)."""
        return [category for category, severity in self.analyze(text).items() if severity >= self.threshold]


class LocalHarmCheck:
    """A local stand-in for a content filter: flags text whose embedding is close to a harmful-request description."""

    name = "local-harm-check"

    def __init__(self, embedder, threshold: float = LOCAL_THRESHOLD) -> None:
        self.embedder = embedder
        self.threshold = threshold

    def scores(self, text: str) -> dict[str, float]:
        """The highest cosine similarity of the text to each category's descriptions."""
        names, vectors = _description_vectors(self.embedder)
        query = np.asarray(self.embedder.embed([text[:2000]])[0], dtype=np.float32)
        similarities = vectors @ query
        best: dict[str, float] = {}
        for category, similarity in zip(names, similarities):
            best[category] = max(best.get(category, -1.0), float(similarity))
        return best

    def blocked(self, text: str) -> list[str]:
        """The categories the text is flagged for (empty when it may pass)."""
        return [category for category, score in self.scores(text).items() if score >= self.threshold]


@lru_cache(maxsize=2)
def _description_vectors(embedder) -> tuple[list[str], np.ndarray]:
    names = [category for category, texts in HARM_DESCRIPTIONS.items() for _ in texts]
    texts = [text for texts in HARM_DESCRIPTIONS.values() for text in texts]
    return names, np.asarray(embedder.embed(texts), dtype=np.float32)


def tune_threshold(check: LocalHarmCheck, harmful: Sequence[str], harmless: Sequence[str]) -> dict:
    """The threshold that flags the most harmful texts and no harmless one (midway into the gap when they separate)."""
    top = lambda text: max(check.scores(text).values())  # noqa: E731
    positive, negative = sorted(top(t) for t in harmful), sorted(top(t) for t in harmless)
    highest_harmless = negative[-1] if negative else 0.0
    above = [p for p in positive if p > highest_harmless]
    threshold = (highest_harmless + min(above)) / 2 if above else highest_harmless + 1e-6
    return {"threshold": round(threshold, 3), "harmful_flagged": len(above), "harmful": len(positive),
            "highest_harmless": round(highest_harmless, 3), "harmless": len(negative)}


def from_settings(settings: Settings, embedder=None) -> AzureContentSafety | LocalHarmCheck | None:
    """Azure AI Content Safety when AZURE_CONTENT_SAFETY_ENDPOINT is set; otherwise the local stand-in when an
    embedder is given; otherwise None."""
    endpoint = settings.get("AZURE_CONTENT_SAFETY_ENDPOINT")
    if not endpoint:  # the stand-in's threshold was tuned for the local embedding model only
        local = embedder is not None and getattr(embedder, "name", "") == LOCAL_EMBEDDING_MODEL
        return LocalHarmCheck(embedder) if local else None
    from azure.ai.contentsafety import ContentSafetyClient
    from azure.core.credentials import AzureKeyCredential

    key = settings.secret("AZURE_CONTENT_SAFETY_KEY")
    credential = AzureKeyCredential(key) if key else azure_credential(settings.get("AZURE_CLIENT_ID"))
    return AzureContentSafety(ContentSafetyClient(endpoint, credential))

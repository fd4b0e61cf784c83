"""Azure AI Content Safety text check (optional), and Azure OpenAI's content filter, as polite answers.

With AZURE_CONTENT_SAFETY_ENDPOINT set, the app checks each question before the model sees it.
Either way, an Azure OpenAI content-filter result becomes a clear message to the user, never a 500.
"""

from __future__ import annotations

import openai

API_VERSION = "2024-09-01"
CATEGORIES = ("Hate", "SelfHarm", "Sexual", "Violence")
BLOCKED_ANSWER = (
    "I'm sorry, I can't help with that request. I can answer questions about Contoso Outdoors products, "
    "store policies and your orders."
)


class ContentSafety:
    """A minimal client for Azure AI Content Safety's text:analyze operation."""

    def __init__(self, endpoint: str, key: str | None = None, session=None, threshold: int = 4,
                 token_provider=None) -> None:
        import requests

        self.url = endpoint.rstrip("/") + f"/contentsafety/text:analyze?api-version={API_VERSION}"
        self.key = key
        self.token_provider = token_provider
        self.session = session or requests.Session()
        self.threshold = threshold

    def analyze(self, text: str) -> dict[str, int]:
        """Severity per category (0, 2, 4 or 6)."""
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Ocp-Apim-Subscription-Key"] = self.key
        elif self.token_provider:
            headers["Authorization"] = f"Bearer {self.token_provider()}"
        response = self.session.post(self.url, headers=headers, timeout=10,
                                     json={"text": text[:10000], "categories": list(CATEGORIES),
                                           "outputType": "FourSeverityLevels"})
        response.raise_for_status()
        return {item["category"]: int(item.get("severity") or 0) for item in response.json()["categoriesAnalysis"]}

    def blocked(self, text: str) -> list[str]:
        """The categories at or above the threshold (empty when the text may pass)."""
        return [category for category, severity in self.analyze(text).items() if severity >= self.threshold]


def from_settings(settings) -> ContentSafety | None:
    """The Content Safety client when AZURE_CONTENT_SAFETY_ENDPOINT is set, else None."""
    endpoint = settings.get("AZURE_CONTENT_SAFETY_ENDPOINT")
    if not endpoint:
        return None
    key = settings.get("AZURE_CONTENT_SAFETY_KEY") or None
    provider = None
    if not key:
        from contoso_chat.clients import entra_token_provider

        provider = entra_token_provider()
    return ContentSafety(endpoint, key=key, token_provider=provider)


def is_content_filter_error(error: Exception) -> bool:
    """True for Azure OpenAI's 'content_filter' refusal of a prompt."""
    if not isinstance(error, openai.BadRequestError):
        return False
    body = getattr(error, "body", None)
    code = getattr(error, "code", None) or (body.get("code") if isinstance(body, dict) else None)
    return code == "content_filter" or "content management policy" in str(error).lower()

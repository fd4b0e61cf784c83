"""Azure AI Content Safety (optional): the harm check on questions and answers, through its Python SDK.

With AZURE_CONTENT_SAFETY_ENDPOINT set, the app checks each question before the model sees it
and each answer before the user does. An Azure OpenAI content-filter result (see
`contoso_chat.backends.chat.is_content_filter_error`) ends in the same polite answer.
"""

from __future__ import annotations

from contoso_chat.backends.azure_credentials import azure_credential
from contoso_chat.backends.settings import Settings

CATEGORIES = ("Hate", "SelfHarm", "Sexual", "Violence")
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


def from_settings(settings: Settings) -> AzureContentSafety | None:
    """The Content Safety check when AZURE_CONTENT_SAFETY_ENDPOINT is set, else None."""
    endpoint = settings.get("AZURE_CONTENT_SAFETY_ENDPOINT")
    if not endpoint:
        return None
    from azure.ai.contentsafety import ContentSafetyClient
    from azure.core.credentials import AzureKeyCredential

    key = settings.secret("AZURE_CONTENT_SAFETY_KEY")
    credential = AzureKeyCredential(key) if key else azure_credential(settings.get("AZURE_CLIENT_ID"))
    return AzureContentSafety(ContentSafetyClient(endpoint, credential))

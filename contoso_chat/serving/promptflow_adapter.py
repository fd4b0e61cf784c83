"""The prompt flow entry point: a class-based flex flow around ContosoChat (see flow.flex.yaml beside it).

This adapter is the only place the app meets prompt flow: `pf flow test`, `pf run` and
`pf flow serve` create `ContosoChatFlow(variant=...)` once and call it per line or request.
"""

from pathlib import Path

from contoso_chat.assistant import ChatResponse
from contoso_chat.backends.environment import prepare_offline_environment

FLOW_DIR = Path(__file__).resolve().parent  # the folder `pf ... --flow` points at


class ContosoChatFlow:
    """Builds the assistant variant named by `variant` (see contoso_chat.evaluation.variants) and answers turns."""

    def __init__(self, variant: str = "rag"):
        from contoso_chat.evaluation.variants import build_variant

        prepare_offline_environment()
        self.variant = variant
        self.assistant = build_variant(variant)

    def __call__(self, question: str, customer_id: str, chat_history: list = None) -> ChatResponse:
        """Answer one turn for the signed-in customer."""
        return self.assistant(question, customer_id, chat_history or [])

"""The prompt flow entry point: a flex flow that calls ContosoChat (see flow.flex.yaml).

This adapter is the only place the app meets prompt flow: `pf flow test`, `pf run` and
`pf flow serve` call `chat`, which builds the assistant once per process.
"""

from contoso_chat.app import ChatResponse, ContosoChat
from contoso_chat.offline import prepare_offline_environment

_assistant = None  # built on the first call, then reused


def chat(question: str, customer_id: str, chat_history: list = None) -> ChatResponse:
    """Answer one turn for the signed-in customer."""
    global _assistant
    if _assistant is None:
        prepare_offline_environment()
        _assistant = ContosoChat()
    return _assistant(question, customer_id, chat_history or [])

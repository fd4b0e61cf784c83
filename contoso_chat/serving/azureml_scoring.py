"""Azure ML online endpoint scoring script: init() once per worker, run() per request.

The request body is JSON: {"question": ..., "chat_history": [...], "customer_token": ...}. The
endpoint's own key authenticates the calling website; the customer comes from `customer_token`,
signed by the store's sign-in with CONTOSO_API_SECRET, so the caller cannot name any customer.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the uploaded repository root holds the package

from contoso_chat import guards  # noqa: E402
from contoso_chat.serving import tokens  # noqa: E402
from contoso_chat.assistant import ContosoChat  # noqa: E402
from contoso_chat.backends.settings import load_settings  # noqa: E402
from contoso_chat.backends.environment import prepare_offline_environment  # noqa: E402

assistant = None
secret = b""


def init() -> None:
    """Build the assistant once per worker process."""
    global assistant, secret
    prepare_offline_environment()
    settings = load_settings()
    secret = tokens.signing_secret(settings)
    assistant = ContosoChat(settings=settings)


def run(raw_data: str) -> dict:
    """Answer one turn; errors come back as {"error": {"field", "message"}} without internals."""
    try:
        payload = json.loads(raw_data)
    except (TypeError, json.JSONDecodeError):
        return {"error": {"field": "body", "message": "The body is not valid JSON."}}
    if not isinstance(payload, dict):
        return {"error": {"field": "body", "message": "The body must be a JSON object."}}
    try:
        customer_id = tokens.verify_token(str(payload.get("customer_token", "")), secret)
        reply = assistant(payload.get("question"), customer_id, payload.get("chat_history") or [])
    except tokens.AuthError as error:
        return {"error": {"field": "customer_token", "message": str(error)}}
    except guards.InputError as error:
        return {"error": {"field": error.field, "message": error.message}}
    return {"answer": reply["answer"], "citations": reply["citations"]}

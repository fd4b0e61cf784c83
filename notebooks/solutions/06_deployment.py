"""Solutions to notebook 06's exercises (run by tests/test_exercises.py)."""

from fastapi.testclient import TestClient

import exercises
import workshop
from contoso_chat.azure import endpoint
from contoso_chat.serving import tokens
from contoso_chat.serving.api import create_app


def exercise_1() -> bool:
    """Three bad requests of your own: each must be refused with a 4xx before any model call."""
    settings = workshop.settings()
    token = tokens.issue_token("C1001", tokens.signing_secret(settings))
    app = create_app(assistant_factory=lambda: None, settings=settings, readiness=lambda: {"assistant": True})
    with TestClient(app, raise_server_exceptions=False) as client:
        responses = [
            client.post("/api/chat", json={"question": "hi", "chat_history": [{"role": "tool", "content": "x"}]},
                        headers={"Authorization": f"Bearer {token}"}),
            client.post("/api/chat", content=b'{"question": ' + b"[" * 3000, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json"}),
            client.post("/api/chat", json={"question": "hi"}, headers={"Authorization": "Bearer v1.C1001.1.forged"}),
        ]
    return exercises.check("06-1", responses)


def exercise_2() -> bool:
    """Probe settings for a service that takes 40 s to start."""
    return exercises.check("06-2", endpoint.probe_settings(40.0), 40.0)

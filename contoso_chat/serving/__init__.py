"""How the assistant is served: the HTTP API and chat page, sign-in tokens, the Azure ML scoring script,
the prompt flow adapter, and the local background service."""

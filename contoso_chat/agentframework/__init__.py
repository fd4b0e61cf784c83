"""Contoso Chat on Microsoft Agent Framework, prompt flow's successor (notebook 08).

`engine` builds the same app as an agent and as a workflow from the app's own steps (retrieval, fact selection,
orders, guards); `parity` answers the same cases with both engines and compares them with the project's metrics.
These modules import `agent_framework`, which lives in .venv/agent-framework (see requirements-agent-framework.txt):
run them in the notebook 08 kernel, or with PYTHONPATH=.venv/agent-framework.
"""

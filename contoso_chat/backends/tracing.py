"""Tracing: OpenTelemetry spans of every answer, viewed in prompt flow's local trace UI or Azure Monitor.

The app creates its spans with the OpenTelemetry API only (contoso_chat.assistant): one `contoso_chat`
span per turn with `retrieve`, `customer_lookup` and `chat_model` children, the last carrying
token usage. Where they go is chosen here: prompt flow's local trace store and UI by default,
Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from contoso_chat.backends.processes import port_in_use
from contoso_chat.backends.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

COLLECTION = "contoso-chat"
TRACE_SERVICE_PORT = 23333  # prompt flow's local service: trace store and UI
TRACE_UI = f"http://127.0.0.1:{TRACE_SERVICE_PORT}" + "/v1.0/ui/traces/?#collection={collection}"


def start_tracing(settings: Settings, collection: str = COLLECTION,
                  configure_azure_monitor: Callable | None = None) -> str:
    """Send spans to the configured backend; return where to look at them."""
    if settings.tracing == "azure":
        if configure_azure_monitor is None:
            from azure.monitor.opentelemetry import configure_azure_monitor
        os.environ.setdefault("OTEL_SERVICE_NAME", "contoso-chat")
        configure_azure_monitor(connection_string=settings.secret("APPLICATIONINSIGHTS_CONNECTION_STRING"),
                                disable_offline_storage=True)
        return "Azure Monitor: Application Insights > Transaction search (service contoso-chat)"
    from promptflow.tracing import start_trace

    os.environ.pop("PF_DISABLE_TRACING", None)
    with contextlib.redirect_stdout(io.StringIO()):  # prompt flow prints the viewer link; the caller shows it once
        start_trace(collection=collection)
    _stop_printing_trace_links()
    return TRACE_UI.format(collection=collection)


def _stop_printing_trace_links() -> None:
    """prompt flow's span exporter prints a viewer link for every trace it exports; keep notebook outputs quiet."""
    from opentelemetry import trace

    os.environ["PF_TRACE_URL_TEMPLATES"] = "[]"
    processor = getattr(trace.get_tracer_provider(), "_active_span_processor", None)
    for span_processor in getattr(processor, "_span_processors", ()):
        exporter = getattr(span_processor, "span_exporter", None)
        if hasattr(exporter, "_url_templates"):
            exporter._url_templates = []


def flush(timeout_ms: int = 10_000) -> None:
    """Export the spans still queued in this process (prompt flow batches them for a second)."""
    from opentelemetry import trace

    force_flush = getattr(trace.get_tracer_provider(), "force_flush", None)
    if force_flush is not None:
        force_flush(timeout_ms)


def spans_frame(collection: str = COLLECTION) -> "pd.DataFrame":
    """Every span of the collection from prompt flow's local trace store, one row per span."""
    import pandas as pd
    from promptflow.client import PFClient

    flush()
    client = PFClient()
    line_runs = client.traces.list_line_runs(collection=collection)
    trace_ids = sorted({run.trace_id for run in line_runs})
    rows = []
    for span in client.traces.list_spans(trace_ids=trace_ids) if trace_ids else []:
        attributes = span.attributes or {}
        rows.append({
            "trace_id": span.trace_id, "span_id": span.span_id, "parent_id": span.parent_id, "name": span.name,
            "start": pd.Timestamp(span.start_time), "end": pd.Timestamp(span.end_time),
            "prompt_tokens": attributes.get("llm.usage.prompt_tokens"),
            "completion_tokens": attributes.get("llm.usage.completion_tokens"),
            "model": attributes.get("llm.model"),
            "customer_found": attributes.get("customer.found"),
        })
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["seconds"] = (frame["end"] - frame["start"]).dt.total_seconds()
        for column in ("prompt_tokens", "completion_tokens"):  # the trace store keeps attributes as text
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def per_request(spans: "pd.DataFrame", input_per_1k: float, output_per_1k: float) -> "pd.DataFrame":
    """One row per answered turn: total, retrieval and model seconds, tokens, and cost at the given prices."""
    turns = spans[spans["name"] == "contoso_chat"].set_index("trace_id")
    by_trace = spans.groupby(["trace_id", "name"])["seconds"].sum().unstack(fill_value=0.0)
    model = spans[spans["name"] == "chat_model"].groupby("trace_id")[["prompt_tokens", "completion_tokens"]].sum()
    table = turns[["start", "seconds"]].rename(columns={"seconds": "total_s"})
    table = table.join(by_trace.reindex(columns=["retrieve", "customer_lookup", "chat_model"], fill_value=0.0))
    table = table.join(model).fillna({"prompt_tokens": 0, "completion_tokens": 0})
    table["cost_usd"] = table["prompt_tokens"] / 1000 * input_per_1k + table["completion_tokens"] / 1000 * output_per_1k
    return table.sort_values("start").reset_index()


def trace_service_pid() -> int | None:
    """The pid of the process listening on prompt flow's trace service port, if any."""
    import psutil

    try:
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == TRACE_SERVICE_PORT:
                return connection.pid
    except psutil.AccessDenied:  # macOS lists other processes' sockets only to root: fall back to the port
        return -1 if port_in_use(TRACE_SERVICE_PORT) else None
    return None


def stop_trace_service() -> bool:
    """Stop prompt flow's local service (trace store and UI) if it is listening; True if it was."""
    if not port_in_use(TRACE_SERVICE_PORT):
        return False
    pf = Path(sys.executable).with_name("pf")
    command = [str(pf)] if pf.exists() else [shutil.which("pf") or "pf"]
    # without PYTHONPATH: Agent Framework's folder in front (make test's second session) breaks prompt flow's import
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([*command, "service", "stop"], capture_output=True, timeout=120, env=env)
    return True

"""Agent Framework's OpenTelemetry spans, kept in memory: a span tree per answer with tokens and latency per step.

Agent Framework emits spans for the workflow, each executor, the agent run and the model call (GenAI semantic
conventions); the app's own steps add theirs (`customer_lookup`, `retrieve`). `collector()` installs an in-memory
exporter as this process's tracer provider (once), so a notebook can read them back without any service.
With APPLICATIONINSIGHTS_CONNECTION_STRING set, the same spans also go to Application Insights (Azure Monitor's
exporter, pinned for this folder's OpenTelemetry in requirements-agent-framework.txt); `start_azure_monitor()` does
that alone for the HTTP service, which keeps no spans in memory.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Sequence

import pandas as pd
from agent_framework.observability import enable_instrumentation
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contoso_chat.backends.settings import Settings

SERVICE_NAME = "contoso-chat-agent-framework"  # Application Insights shows it as the cloud role name
_exporter: InMemorySpanExporter | None = None
_azure: dict[str, object] = {}  # connection string -> its span processor, added once per process


class Collector:
    """The spans finished since the collector was made (or since `clear()`)."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    def finished(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def clear(self) -> None:
        self.exporter.clear()


def _provider() -> TracerProvider:
    """This process's tracer provider, made (and made global) on first use."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        return provider
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        raise RuntimeError("This process already has a tracer provider; collect spans in a fresh kernel.")
    return provider


def start_azure_monitor(settings: Settings | None) -> str | None:
    """Send every span to Application Insights when the settings say so (once per connection string).

    Returns where to look, or None when tracing is not on Azure. The exporter batches spans; `flush()` sends
    what is queued.
    """
    if settings is None or settings.tracing != "azure":
        return None
    connection = settings.secret("APPLICATIONINSIGHTS_CONNECTION_STRING")
    if connection not in _azure:
        os.environ.setdefault("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "true")  # the exporter's own usage data
        from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter

        processor = BatchSpanProcessor(AzureMonitorTraceExporter(connection_string=connection,
                                                                 disable_offline_storage=True))
        _provider().add_span_processor(processor)
        _azure[connection] = processor
    enable_instrumentation()
    return f"Application Insights > Transaction search (cloud role {SERVICE_NAME})"


def stop_azure_monitor() -> None:
    """Send what is queued, then stop sending spans to Application Insights (the in-memory collector stays)."""
    while _azure:
        _, processor = _azure.popitem()
        processor.shutdown()


def flush(timeout_ms: int = 10_000) -> bool:
    """Send the spans still queued for Application Insights (its exporter sends in batches); True when all went."""
    return all(processor.force_flush(timeout_ms) for processor in list(_azure.values()))


def collector(settings: Settings | None = None) -> Collector:
    """An in-memory span collector for this process, with Agent Framework's instrumentation switched on.

    Given settings with APPLICATIONINSIGHTS_CONNECTION_STRING, the spans go to Application Insights as well.
    """
    global _exporter
    if _exporter is None:
        provider = _provider()
        _exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
    start_azure_monitor(settings)
    enable_instrumentation()
    _exporter.clear()
    return Collector(_exporter)


def by_trace(spans: Sequence[ReadableSpan]) -> dict[int, list[ReadableSpan]]:
    """The spans grouped by trace (one trace per answer), each group in start order."""
    groups: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        groups[span.context.trace_id].append(span)
    return {trace_id: sorted(group, key=lambda s: s.start_time) for trace_id, group in groups.items()}


def spans_per_answer(spans: Sequence[ReadableSpan]) -> float | None:
    """The mean number of spans in one answer's trace (None when nothing was collected)."""
    groups = by_trace(spans)
    return round(sum(len(g) for g in groups.values()) / len(groups), 2) if groups else None


def tokens(span: ReadableSpan) -> tuple[int | None, int | None]:
    """Input and output tokens a span records (GenAI conventions, or the app's own attribute names)."""
    attributes = span.attributes or {}
    prompt = attributes.get("gen_ai.usage.input_tokens", attributes.get("llm.usage.prompt_tokens"))
    completion = attributes.get("gen_ai.usage.output_tokens", attributes.get("llm.usage.completion_tokens"))
    return prompt, completion


def span_tree(spans: Sequence[ReadableSpan]) -> pd.DataFrame:
    """One trace as an indented table: each span under its parent, with its milliseconds and tokens."""
    if not spans:
        raise ValueError("No spans were collected; make the collector before the answers are run.")
    children: dict[int | None, list[ReadableSpan]] = defaultdict(list)
    ids = {s.context.span_id for s in spans}
    for span in sorted(spans, key=lambda s: s.start_time):
        parent = span.parent.span_id if span.parent is not None and span.parent.span_id in ids else None
        children[parent].append(span)
    rows = []

    def walk(parent: int | None, depth: int) -> None:
        for span in children[parent]:
            prompt, completion = tokens(span)
            rows.append({"span": "    " * depth + span.name, "ms": round((span.end_time - span.start_time) / 1e6, 1),
                         "input tokens": prompt, "output tokens": completion})
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return pd.DataFrame(rows)

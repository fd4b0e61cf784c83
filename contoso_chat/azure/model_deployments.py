"""Azure OpenAI model deployments as code: pinned model and version, no automatic upgrade, retirement checked.

Deployments are created with the management client (azure-mgmt-cognitiveservices). Before each
one, the region's model list (every page of it) must offer that model, version and SKU, and the
model's inference retirement date must not have passed: a deployment of a retired model fails
or stops answering.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Iterable

from contoso_chat.azure import names
from contoso_chat.backends.azure_credentials import azure_credential
from contoso_chat.backends.settings import ConfigError, Settings

RETIREMENT_WARNING_DAYS = 90


@dataclass(frozen=True)
class ModelDeployment:
    """An Azure OpenAI model deployment the app needs, pinned to a model version."""

    name: str
    model: str
    version: str
    sku: str
    capacity: int  # thousands of tokens per minute
    purpose: str

    def arm_body(self) -> dict:
        """The request body of `PUT .../accounts/{account}/deployments/{name}`."""
        return {
            "sku": {"name": self.sku, "capacity": self.capacity},
            "properties": {"model": {"format": "OpenAI", "name": self.model, "version": self.version},
                           "versionUpgradeOption": "NoAutoUpgrade"},
        }


DEPLOYMENTS = (
    ModelDeployment("gpt-4o-mini", "gpt-4o-mini", "2024-07-18", "GlobalStandard", 30, "chat and LLM-judge evaluators"),
    ModelDeployment("text-embedding-3-small", "text-embedding-3-small", "1", "Standard", 30, "embeddings for search"),
)


@dataclass(frozen=True)
class Availability:
    """Whether a pinned model can be deployed in the region, and until when."""

    offered: bool
    retires: dt.date | None
    detail: str

    def deployable(self, today: dt.date) -> bool:
        return self.offered and (self.retires is None or self.retires > today)


def management_client(settings: Settings, credential=None, **options):
    """The Cognitive Services management client for the subscription (options such as `transport=`)."""
    from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

    return CognitiveServicesManagementClient(credential or azure_credential(), names.subscription(settings), **options)


def offered_models(client, location: str) -> list:
    """Every model the region offers (the SDK's pager follows each page's nextLink)."""
    return list(client.models.list(location))


def _date(value) -> dt.date | None:
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    return dt.date.fromisoformat(str(value)[:10])


def availability(models: Iterable, deployment: ModelDeployment, today: dt.date) -> Availability:
    """Whether the region offers this model, version and SKU, and its retirement date for inference."""
    for entry in models:
        model = entry.model
        if model is None or (model.name, model.version) != (deployment.model, deployment.version):
            continue
        skus = {sku.name: sku for sku in model.skus or []}
        if deployment.sku not in skus:
            return Availability(False, None, f"offered, but not as {deployment.sku} (only {', '.join(sorted(skus))})")
        retires = _date(getattr(model.deprecation, "inference", None)) or _date(skus[deployment.sku].deprecation_date)
        if retires is None:
            return Availability(True, None, "offered; no retirement date announced")
        days = (retires - today).days
        if days <= 0:
            return Availability(True, retires, f"retired on {retires}: pin a newer version in DEPLOYMENTS")
        soon = " (soon: plan the upgrade and evaluate it)" if days <= RETIREMENT_WARNING_DAYS else ""
        return Availability(True, retires, f"offered until {retires}{soon}")
    return Availability(False, None, f"{deployment.model} {deployment.version} is not offered in this region")


def create_deployments(client, settings: Settings, deployments: Iterable[ModelDeployment], models: list,
                       today: dt.date | None = None, log: Callable[[str], None] = print) -> list[str]:
    """Create or update each deployment on the Azure OpenAI account, after its availability check."""
    today = today or dt.date.today()
    created = []
    for deployment in deployments:
        check = availability(models, deployment, today)
        if not check.deployable(today):
            raise ConfigError(f"Cannot deploy {deployment.model} {deployment.version}: {check.detail}. Pick another "
                              "version or AZURE_LOCATION (notebook 01's pre-flight lists what the region offers).")
        log(f"{deployment.model} {deployment.version}: {check.detail}")
        deploy_one(client, settings, deployment, log)
        created.append(deployment.name)
    return created


def deploy_one(client, settings: Settings, deployment: ModelDeployment, log: Callable[[str], None] = print) -> None:
    """Create or update one deployment on the configured Azure OpenAI account (pinned, no automatic upgrade)."""
    account = names.name_of(names.openai_account_id(settings))
    log(f"Deploying {deployment.name} ({deployment.model} {deployment.version}) on {account} ...")
    client.deployments.begin_create_or_update(settings.get("AZURE_RESOURCE_GROUP"), account, deployment.name,
                                              deployment.arm_body()).result()

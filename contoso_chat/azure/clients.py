"""Azure management clients, each made in one place with the project's one credential (options such as `transport=`)."""

from __future__ import annotations

from contoso_chat.azure import names
from contoso_chat.backends.azure_credentials import azure_credential
from contoso_chat.backends.settings import Settings

ARM = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"


def ml_client(settings: Settings, workspace: str | None = None, **options):
    """An MLClient with telemetry off."""
    from azure.ai.ml import MLClient

    return MLClient(azure_credential(), subscription_id=settings.get("AZURE_SUBSCRIPTION_ID"),
                    resource_group_name=settings.get("AZURE_RESOURCE_GROUP"), workspace_name=workspace,
                    enable_telemetry=False, **options)


def msi_client(settings: Settings, credential=None, **options):
    """The managed identity management client."""
    from azure.mgmt.msi import ManagedServiceIdentityClient

    return ManagedServiceIdentityClient(credential or azure_credential(), names.subscription(settings), **options)


def authorization_client(settings: Settings, credential=None, **options):
    """The role assignment client."""
    from azure.mgmt.authorization import AuthorizationManagementClient

    return AuthorizationManagementClient(credential or azure_credential(), names.subscription(settings), **options)


def arm_client(credential=None, **options):
    """A plain Resource Manager client (for resources without a management package here: the registry)."""
    from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RetryPolicy
    from azure.mgmt.core import ARMPipelineClient

    policies = [RetryPolicy(), BearerTokenCredentialPolicy(credential or azure_credential(), ARM_SCOPE)]
    return ARMPipelineClient(ARM, policies=policies, **options)

"""The one place Azure credentials are made: Entra ID sign-in (az login, managed identity, CI's OIDC)."""

from __future__ import annotations

import functools
import logging
from typing import Callable

from contoso_chat.backends.settings import ConfigError

COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"


@functools.lru_cache(maxsize=4)
def azure_credential(managed_identity_client_id: str = ""):
    """DefaultAzureCredential, using the user-assigned identity `managed_identity_client_id` when given
    (on an Azure ML deployment, AZURE_CLIENT_ID names it), never an interactive browser prompt."""
    from azure.identity import DefaultAzureCredential

    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    options = {"managed_identity_client_id": managed_identity_client_id} if managed_identity_client_id else {}
    return DefaultAzureCredential(exclude_interactive_browser_credential=True, **options)


def bearer_token_provider(scope: str = COGNITIVE_SCOPE, managed_identity_client_id: str = "",
                          setting_hint: str = "AZURE_OPENAI_API_KEY") -> Callable[[], str]:
    """A bearer-token provider for `scope`, checked once so a missing sign-in fails with a clear message."""
    from azure.identity import get_bearer_token_provider

    credential = azure_credential(managed_identity_client_id)
    try:
        credential.get_token(scope)
    except Exception as error:  # azure-identity raises several unrelated types here
        raise ConfigError(
            f"{setting_hint} is not set and no Azure sign-in was found ({type(error).__name__}). "
            f"Set {setting_hint} in .env, run `az login`, or switch that resource back to local in .env."
        ) from None
    return get_bearer_token_provider(credential, scope)

"""The search index for the configured backend: the local LanceDB index or Azure AI Search."""

from __future__ import annotations

from contoso_chat.backends.search_types import Retriever
from contoso_chat.backends.settings import Settings


def ensure_index(settings: Settings, rebuild: bool = False, log=print) -> Retriever:
    """The retriever for the configured search backend, its index built if needed."""
    if settings.search == "azure":
        from contoso_chat.backends.azure_search import ensure_azure_index

        return ensure_azure_index(settings, rebuild=rebuild, log=log)
    from contoso_chat.backends.lancedb_search import local_index

    return local_index(settings, rebuild=rebuild, log=log)

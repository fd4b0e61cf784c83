"""Azure AI Search backend: the index schema as code, read-only hybrid + semantic search, and batched upload.

Serving only reads: `open_azure_index` checks the index is there and searches it with the
Search Index Data Reader role. Writing (schema and documents) is provisioning's job
(`contoso_chat.azure.data_load`), run with PROVISION_AZURE=true by an identity allowed to write.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

from contoso_chat.backends.azure_credentials import azure_credential
from contoso_chat.backends.embeddings import embedder as make_embedder
from contoso_chat.backends.search_types import Embedder, Hit, Mode, keyword_query
from contoso_chat.backends.settings import ConfigError, Settings
from contoso_chat.chunking import Chunk

SEMANTIC_CONFIG = "contoso-semantic"
VECTOR_PROFILE = "contoso-hnsw-profile"
SEARCH_SCOPE = "https://search.azure.com/.default"
TEXT_FIELDS = ["id", "source_id", "kind", "title", "section", "text"]
MAX_BATCH_DOCUMENTS = 1000  # Azure AI Search accepts at most 1000 actions per indexing request
MAX_BATCH_BYTES = 12 * 1024 * 1024  # and at most 16 MB per request: keep a margin for the JSON envelope


def index_schema(name: str, dimensions: int):
    """The index definition: searchable text, filterable source, a retrievable vector field, a semantic configuration."""
    from azure.search.documents.indexes.models import (
        HnswAlgorithmConfiguration, SearchableField, SearchField, SearchFieldDataType, SearchIndex,
        SemanticConfiguration, SemanticField, SemanticPrioritizedFields, SemanticSearch, SimpleField,
        VectorSearch, VectorSearchProfile,
    )

    fields = [
        SimpleField(name="id", type=SearchFieldDataType.String, key=True),
        SimpleField(name="source_id", type=SearchFieldDataType.String, filterable=True, facetable=True),
        SimpleField(name="kind", type=SearchFieldDataType.String, filterable=True),
        SearchableField(name="title", type=SearchFieldDataType.String),
        SearchableField(name="section", type=SearchFieldDataType.String),
        SearchableField(name="text", type=SearchFieldDataType.String, analyzer_name="en.microsoft"),
        SearchField(name="vector", type=SearchFieldDataType.Collection(SearchFieldDataType.Single),
                    searchable=True, hidden=False, vector_search_dimensions=dimensions,
                    vector_search_profile_name=VECTOR_PROFILE),
    ]
    vector_search = VectorSearch(
        algorithms=[HnswAlgorithmConfiguration(name="contoso-hnsw")],
        profiles=[VectorSearchProfile(name=VECTOR_PROFILE, algorithm_configuration_name="contoso-hnsw")],
    )
    semantic = SemanticSearch(configurations=[SemanticConfiguration(
        name=SEMANTIC_CONFIG,
        prioritized_fields=SemanticPrioritizedFields(
            title_field=SemanticField(field_name="title"),
            content_fields=[SemanticField(field_name="text")],
            keywords_fields=[SemanticField(field_name="section")],
        ),
    )])
    return SearchIndex(name=name, fields=fields, vector_search=vector_search, semantic_search=semantic)


def credential(settings: Settings):
    """Key credential when AZURE_SEARCH_API_KEY is set, otherwise the Azure sign-in (managed identity on Azure)."""
    key = settings.secret("AZURE_SEARCH_API_KEY")
    if key:
        from azure.core.credentials import AzureKeyCredential

        return AzureKeyCredential(key)
    return azure_credential(settings.get("AZURE_CLIENT_ID"))


@dataclass
class UploadReport:
    """What an upload did: documents accepted, documents refused (id -> the service's message), requests sent."""

    uploaded: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    batches: int = 0


def search_key(chunk_id: str) -> str:
    """A chunk id as an Azure AI Search key (keys may not contain '#')."""
    return chunk_id.replace("#", "--")


def document_batches(documents: Sequence[dict], max_documents: int = MAX_BATCH_DOCUMENTS,
                     max_bytes: int = MAX_BATCH_BYTES) -> list[list[dict]]:
    """Split documents into requests within the service limits on action count and request size."""
    batches: list[list[dict]] = []
    current: list[dict] = []
    size = 0
    for document in documents:
        document_bytes = len(json.dumps(document).encode())
        if document_bytes > max_bytes:
            raise ValueError(f"Document {document.get('id')} is {document_bytes} bytes, over the {max_bytes}-byte "
                             "request limit; lower chunking.MAX_CHARS and rebuild.")
        if current and (len(current) >= max_documents or size + document_bytes > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(document)
        size += document_bytes
    if current:
        batches.append(current)
    return batches


def cosine(query: np.ndarray, vector: Sequence[float] | None) -> float | None:
    """Cosine similarity of the query vector and a stored vector (None when the hit carries no vector)."""
    if not vector:
        return None
    stored = np.asarray(vector, dtype=np.float32)
    norms = float(np.linalg.norm(query) * np.linalg.norm(stored))
    return float(np.dot(query, stored) / norms) if norms else 0.0


class AzureSearchRetriever:
    """Azure AI Search: keyword (BM25), vector (HNSW) or hybrid with the semantic ranker on top.

    `Hit.similarity` is the cosine between the question's embedding and the chunk's stored vector,
    computed here, so it means the same as on the local index (Azure's own scores do not: hybrid
    scores are fused ranks and vector scores are 1/(1+distance)).
    """

    def __init__(self, search_client, embedder: Embedder) -> None:
        self.client = search_client
        self.embedder = embedder

    def count(self) -> int:
        """Documents in the index (a read: Search Index Data Reader is enough)."""
        return int(self.client.get_document_count())

    def upload(self, chunks: Sequence[Chunk], log: Callable[[str], None] = print) -> UploadReport:
        """Merge-or-upload by chunk id in batches within the service limits; refused documents are reported."""
        vectors = self.embedder.embed([c.text for c in chunks])
        documents = [{**asdict(c), "id": search_key(c.id), "vector": v} for c, v in zip(chunks, vectors)]
        report = UploadReport()
        for batch in document_batches(documents):
            results = self.client.merge_or_upload_documents(documents=batch)
            report.batches += 1
            for result in results:
                if result.succeeded:
                    report.uploaded += 1
                else:
                    report.failed[result.key] = f"{result.status_code}: {result.error_message}"
        if report.failed:
            log(f"{len(report.failed)} of {len(documents)} documents were refused, e.g. "
                f"{next(iter(report.failed.items()))}")
        return report

    def search(self, query: str, k: int = 5, mode: Mode = "hybrid") -> list[Hit]:
        """Top-k chunks; hybrid adds the semantic ranker's reranking."""
        from azure.search.documents.models import VectorizedQuery

        arguments: dict = {"top": k, "select": list(TEXT_FIELDS)}
        query_vector = None
        if mode in ("keyword", "hybrid"):
            arguments["search_text"] = keyword_query(query)
        if mode in ("vector", "hybrid"):
            query_vector = np.asarray(self.embedder.embed([query])[0], dtype=np.float32)
            arguments["vector_queries"] = [VectorizedQuery(vector=query_vector.tolist(), k_nearest_neighbors=50,
                                                           fields="vector")]
            arguments["select"].append("vector")
        if mode == "hybrid":
            arguments.update(query_type="semantic", semantic_configuration_name=SEMANTIC_CONFIG)
        hits = []
        for row in self.client.search(**arguments):
            score = row.get("@search.reranker_score") or row.get("@search.score") or 0.0
            similarity = None if query_vector is None else cosine(query_vector, row.get("vector"))
            hits.append(Hit(id=row["id"].replace("--", "#"), source_id=row["source_id"], kind=row["kind"],
                            title=row["title"], section=row["section"], text=row["text"], score=float(score),
                            similarity=similarity))
        return hits


def search_clients(settings: Settings, transport=None):
    """The index client (schema) and search client (documents) for the configured service."""
    from azure.search.documents import SearchClient
    from azure.search.documents.indexes import SearchIndexClient

    endpoint, name = settings.get("AZURE_SEARCH_ENDPOINT"), settings.get("AZURE_SEARCH_INDEX")
    options = {"transport": transport} if transport is not None else {}
    return (SearchIndexClient(endpoint, credential(settings), **options),
            SearchClient(endpoint, name, credential(settings), **options))


def open_azure_index(settings: Settings, embedder: Embedder | None = None, transport=None) -> AzureSearchRetriever:
    """The existing index, opened for reading only; a clear error when provisioning has not loaded it."""
    from azure.core.exceptions import ResourceNotFoundError

    _, search_client = search_clients(settings, transport)
    retriever = AzureSearchRetriever(search_client, embedder or make_embedder(settings))
    name = settings.get("AZURE_SEARCH_INDEX")
    try:
        documents = retriever.count()
    except ResourceNotFoundError:
        raise ConfigError(f"The Azure AI Search index {name!r} does not exist. Load it once with "
                          "`python -m contoso_chat.azure.data_load` and PROVISION_AZURE=true (or notebook 01), "
                          "or set SEARCH_BACKEND=local.") from None
    if documents == 0:
        raise ConfigError(f"The Azure AI Search index {name!r} is empty. Load it with "
                          "`python -m contoso_chat.azure.data_load` and PROVISION_AZURE=true.")
    return retriever


def provision_index(settings: Settings, chunks: Sequence[Chunk], rebuild: bool = False, log=print,
                    embedder: Embedder | None = None, transport=None) -> UploadReport:
    """Create or update the index schema, then embed and upload every chunk (idempotent: keyed by chunk id)."""
    index_client, search_client = search_clients(settings, transport)
    embedder = embedder or make_embedder(settings)
    name = settings.get("AZURE_SEARCH_INDEX")
    if rebuild and name in set(index_client.list_index_names()):
        index_client.delete_index(name)
    index_client.create_or_update_index(index_schema(name, embedder.dimensions))
    log(f"Uploading {len(chunks)} chunks to Azure AI Search index {name} ...")
    return AzureSearchRetriever(search_client, embedder).upload(chunks, log=log)

"""Azure AI Search backend: the index schema as code, idempotent upload, hybrid + semantic search."""

from __future__ import annotations

from dataclasses import asdict
from typing import Sequence

from contoso_chat.backends.azure_credentials import azure_credential
from contoso_chat.backends.embeddings import embedder as make_embedder
from contoso_chat.backends.search_types import Embedder, Hit, Mode, keyword_query
from contoso_chat.backends.settings import Settings
from contoso_chat.chunking import Chunk, corpus_chunks

SEMANTIC_CONFIG = "contoso-semantic"
VECTOR_PROFILE = "contoso-hnsw-profile"
SEARCH_SCOPE = "https://search.azure.com/.default"


def index_schema(name: str, dimensions: int):
    """The index definition: searchable text, filterable source, a vector field, a semantic configuration."""
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
                    searchable=True, vector_search_dimensions=dimensions, vector_search_profile_name=VECTOR_PROFILE),
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
    """Key credential when AZURE_SEARCH_API_KEY is set, otherwise the Azure sign-in."""
    key = settings.secret("AZURE_SEARCH_API_KEY")
    if key:
        from azure.core.credentials import AzureKeyCredential

        return AzureKeyCredential(key)
    return azure_credential(settings.get("AZURE_CLIENT_ID"))


class AzureSearchRetriever:
    """Azure AI Search: keyword (BM25), vector (HNSW) or hybrid with the semantic ranker on top."""

    def __init__(self, search_client, embedder: Embedder) -> None:
        self.client = search_client
        self.embedder = embedder

    def upload(self, chunks: Sequence[Chunk]) -> int:
        """Merge-or-upload by chunk id, so a rerun replaces documents instead of duplicating them."""
        vectors = self.embedder.embed([c.text for c in chunks])
        documents = [{**asdict(c), "id": c.id.replace("#", "--"), "vector": v} for c, v in zip(chunks, vectors)]
        results = self.client.merge_or_upload_documents(documents=documents)
        return sum(1 for r in results if r.succeeded)

    def search(self, query: str, k: int = 5, mode: Mode = "hybrid") -> list[Hit]:
        """Top-k chunks; hybrid adds the semantic ranker's reranking."""
        from azure.search.documents.models import VectorizedQuery

        arguments: dict = {"top": k, "select": ["id", "source_id", "kind", "title", "section", "text"]}
        if mode in ("keyword", "hybrid"):
            arguments["search_text"] = keyword_query(query)
        if mode in ("vector", "hybrid"):
            vector = self.embedder.embed([query])[0]
            arguments["vector_queries"] = [VectorizedQuery(vector=vector, k_nearest_neighbors=50, fields="vector")]
        if mode == "hybrid":
            arguments.update(query_type="semantic", semantic_configuration_name=SEMANTIC_CONFIG)
        hits = []
        for row in self.client.search(**arguments):
            score = row.get("@search.reranker_score") or row.get("@search.score") or 0.0
            hits.append(Hit(id=row["id"].replace("--", "#"), source_id=row["source_id"], kind=row["kind"],
                            title=row["title"], section=row["section"], text=row["text"], score=float(score),
                            similarity=row.get("@search.score") if mode == "vector" else None))
        return hits


def ensure_azure_index(settings: Settings, rebuild: bool = False, log=print) -> AzureSearchRetriever:
    """Create or update the index schema and upload the corpus (idempotent)."""
    from azure.search.documents import SearchClient
    from azure.search.documents.indexes import SearchIndexClient

    endpoint, name = settings.get("AZURE_SEARCH_ENDPOINT"), settings.get("AZURE_SEARCH_INDEX")
    embedder = make_embedder(settings)
    index_client = SearchIndexClient(endpoint, credential(settings))
    if rebuild and name in set(index_client.list_index_names()):
        index_client.delete_index(name)
    index_client.create_or_update_index(index_schema(name, embedder.dimensions))
    retriever = AzureSearchRetriever(SearchClient(endpoint, name, credential(settings)), embedder)
    chunks = corpus_chunks()
    log(f"Uploading {len(chunks)} chunks to Azure AI Search index {name} ...")
    retriever.upload(chunks)
    return retriever

"""Azure AI Search and the data load, sent by the real azure-search-documents and management clients to a local
fake transport: serving only reads, loading writes in batches within the limits, and similarity is a real cosine."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from contoso_chat.azure import data_load
from contoso_chat.backends import search
from contoso_chat.backends.azure_search import (
    MAX_BATCH_BYTES, SEMANTIC_CONFIG, AzureSearchRetriever, document_batches, open_azure_index, provision_index,
    search_clients,
)
from contoso_chat.backends.search_types import Hit
from contoso_chat.backends.settings import ConfigError, resolve
from contoso_chat.chunking import Chunk

from azure_fakes import FakeAzureTransport, FakeCredential

SETTINGS = {"AZURE_SEARCH_ENDPOINT": "https://srch-x.search.windows.net", "AZURE_SEARCH_API_KEY": "fake-search-key"}
DIMENSIONS = 1536


class DirectionEmbedder:
    """Deterministic vectors: each text points along an axis chosen by its first letter."""

    name, dimensions = "fake-embeddings", DIMENSIONS

    def embed(self, texts):
        vectors = []
        for text in texts:
            vector = np.full(DIMENSIONS, 0.01, dtype=np.float32)
            vector[ord(text[:1].lower() or "a") % DIMENSIONS] = 1.0
            vectors.append((vector / np.linalg.norm(vector)).tolist())
        return vectors


def chunks(n: int) -> list[Chunk]:
    return [Chunk(id=f"product-{i}#specs-0", source_id=f"product-{i}", kind="manual", title=f"Item {i}",
                  section="Specs", text=f"{'abc'[i % 3]} weighs {i} g") for i in range(n)]


def index_handler(refuse: set[str] = frozenset()):
    def handler(request):
        if request.path.endswith("/docs/search.index"):
            results = [{"key": d["id"], "status": d["id"] not in refuse, "statusCode": 400 if d["id"] in refuse else 200,
                        "errorMessage": "bad vector" if d["id"] in refuse else None} for d in request.body["value"]]
            return (207 if refuse else 200), {"value": results}
        return 201, request.body
    return handler


def test_upload_batches_stay_within_the_service_limits_and_report_refusals():
    settings = resolve(SETTINGS)
    transport = FakeAzureTransport(index_handler(refuse={"product-7--specs-0"}))
    _, client = search_clients(settings, transport)
    report = AzureSearchRetriever(client, DirectionEmbedder()).upload(chunks(1200), log=lambda *_: None)
    posts = [r for r in transport.sent if r.path.endswith("/docs/search.index")]
    assert report.batches == len(posts) >= 3, "1200 documents of 1536 floats do not fit in one 16 MB request"
    for request in posts:
        assert len(request.body["value"]) <= 1000 and len(json.dumps(request.body)) <= 16 * 1024 * 1024
        assert {d["@search.action"] for d in request.body["value"]} == {"mergeOrUpload"}
        assert all("#" not in d["id"] and len(d["vector"]) == DIMENSIONS for d in request.body["value"])
    assert report.uploaded == 1199 and list(report.failed) == ["product-7--specs-0"]
    assert "400" in report.failed["product-7--specs-0"]


def test_document_batches_split_by_count_and_by_size():
    small = [{"id": str(i), "text": "x"} for i in range(2500)]
    assert [len(b) for b in document_batches(small)] == [1000, 1000, 500]
    big = [{"id": str(i), "text": "x" * 400_000} for i in range(40)]
    batches = document_batches(big)
    assert len(batches) > 1 and all(len(json.dumps(b)) <= MAX_BATCH_BYTES for b in batches)
    with pytest.raises(ValueError, match="MAX_CHARS"):
        document_batches([{"id": "huge", "text": "x" * (MAX_BATCH_BYTES + 1)}])


def test_provisioning_puts_a_schema_with_a_retrievable_vector_then_uploads():
    settings = resolve(SETTINGS)
    transport = FakeAzureTransport(index_handler())
    report = provision_index(settings, chunks(5), embedder=DirectionEmbedder(), transport=transport, log=lambda *_: None)
    schema = transport.sent[0]
    assert schema.method == "PUT" and schema.path == "/indexes('contoso-outdoors')" and schema.api_version
    vector = {f["name"]: f for f in schema.body["fields"]}["vector"]
    assert vector["dimensions"] == DIMENSIONS and vector.get("retrievable", True) is True
    assert schema.body["semantic"]["configurations"][0]["name"] == SEMANTIC_CONFIG
    assert report.uploaded == 5 and transport.sent[1].method == "POST"


def test_serving_opens_the_index_read_only_and_says_how_to_load_it():
    settings = resolve(SETTINGS)
    present = FakeAzureTransport(lambda r: (200, 431))
    retriever = open_azure_index(settings, embedder=DirectionEmbedder(), transport=present)
    assert retriever.count() == 431
    assert {(r.method, r.path) for r in present.sent} == {("GET", "/indexes('contoso-outdoors')/docs/$count")}
    missing = FakeAzureTransport(lambda r: (404, {"error": {"code": "ResourceNotFound", "message": "no index"}}))
    with pytest.raises(ConfigError, match="contoso_chat.azure.data_load"):
        open_azure_index(settings, embedder=DirectionEmbedder(), transport=missing)
    assert all(r.method == "GET" for r in missing.sent), "starting the app must never write to the index"


def test_hybrid_hits_carry_the_cosine_of_question_and_stored_vector():
    settings = resolve(SETTINGS)
    embedder = DirectionEmbedder()
    near, far = embedder.embed(["a tent", "zebra"])
    rows = [{"@search.score": 0.03, "@search.rerankerScore": 3.1, "id": "product-1--specs-0", "source_id": "product-1",
             "kind": "manual", "title": "Tent", "section": "Specs", "text": "a", "vector": near},
            {"@search.score": 0.02, "@search.rerankerScore": 1.2, "id": "product-9--specs-0", "source_id": "product-9",
             "kind": "manual", "title": "Zebra", "section": "Specs", "text": "z", "vector": far}]
    transport = FakeAzureTransport(lambda r: (200, {"value": rows}))
    _, client = search_clients(settings, transport)
    hits = AzureSearchRetriever(client, embedder).search("a heavy tent", k=5, mode="hybrid")
    body = transport.sent[0].body
    assert body["queryType"] == "semantic" and body["semanticConfiguration"] == SEMANTIC_CONFIG
    assert "vector" in body["select"].split(",") and body["vectorQueries"][0]["fields"] == "vector"
    query = np.asarray(embedder.embed(["a heavy tent"])[0])
    assert hits[0].similarity == pytest.approx(float(query @ np.asarray(near)), abs=1e-5) and hits[0].similarity > 0.99
    assert hits[1].similarity < 0.2, "similarity is the cosine, not the search score"
    assert hits[0].score == 3.1 and hits[0].id == "product-1#specs-0"


@dataclass
class Case:
    question: str
    category: str
    chat_history: tuple = ()


class FixedSimilarityRetriever:
    def __init__(self, similarities):
        self.similarities = similarities

    def search(self, query, k=5, mode="hybrid"):
        return [Hit(id="x#0", source_id="x", kind="manual", title="x", section="", text="", score=1.0,
                    similarity=self.similarities[query])]


def test_calibration_picks_the_threshold_that_separates_dev_cases():
    similarities = {"tent weight": 0.71, "stove fuel": 0.55, "return policy": 0.48, "capital of peru": 0.22,
                    "write a poem": 0.31}
    cases = [Case(q, "out-of-scope" if s < 0.4 else "product-fact") for q, s in similarities.items()]
    from contoso_chat.assistant import standalone_query

    threshold = search.calibrate_decline_threshold(FixedSimilarityRetriever(similarities), cases,
                                                   make_query=standalone_query)
    assert 0.31 < threshold < 0.48
    assert all((similarities[c.question] < threshold) == (c.category == "out-of-scope") for c in cases)
    assert search.best_threshold([0.2, 0.3, 0.8, 0.9], [True, True, False, False]) == pytest.approx(0.55)
    assert search.best_threshold([0.2, 0.3, 0.8, 0.9], [False, False, True, True]) != pytest.approx(0.55), \
        "labels decide the threshold, not just the gap"
    with pytest.raises(ValueError, match="both"):
        search.calibrate_decline_threshold(FixedSimilarityRetriever(similarities), cases[:2])
    assert search.decline_threshold("unknown-model") is None


def test_cosmos_database_and_container_are_created_through_the_management_plane_without_a_key():
    from azure.mgmt.cosmosdb import CosmosDBManagementClient

    settings = resolve({"AZURE_SUBSCRIPTION_ID": "11111111-2222-3333-4444-555555555555",
                        "COSMOS_ENDPOINT": "https://cosmos-x.documents.azure.com:443/"})
    transport = FakeAzureTransport(lambda r: (200, {**(r.body or {}), "properties": {
        **((r.body or {}).get("properties", {})), "provisioningState": "Succeeded"}}))
    client = CosmosDBManagementClient(FakeCredential(), "11111111-2222-3333-4444-555555555555", transport=transport,
                                      polling_interval=0)
    data_load.create_container_with_management_plane(settings, client)
    puts = [r for r in transport.sent if r.method == "PUT"]
    assert puts[0].path.endswith("/databaseAccounts/cosmos-x/sqlDatabases/contoso-outdoors")
    assert puts[1].path.endswith("/sqlDatabases/contoso-outdoors/containers/customers")
    assert puts[1].body["properties"]["resource"]["partitionKey"] == {"paths": ["/id"], "kind": "Hash"}


def test_loading_data_is_opt_in():
    settings = resolve({**SETTINGS, "AZURE_SUBSCRIPTION_ID": "11111111-2222-3333-4444-555555555555"})
    with pytest.raises(ConfigError, match="PROVISION_AZURE=true"):
        data_load.load_data(settings)
    steps = data_load.steps(settings)
    assert any("index contoso-outdoors" in s for s in steps) and any("1000 documents" in s for s in steps)


def test_data_load_lets_the_search_service_accept_the_endpoints_identity():
    """A new search service takes API keys only; the endpoint signs in with Entra ID, so loading switches that on."""
    from contoso_chat.azure.clients import arm_client

    settings = resolve({**SETTINGS, "AZURE_SUBSCRIPTION_ID": "11111111-2222-3333-4444-555555555555"})
    transport = FakeAzureTransport(lambda r: (200, {"properties": {**r.body["properties"], "status": "running"}}))
    options = data_load.enable_search_role_access(settings, arm_client(FakeCredential(), transport=transport),
                                                  log=lambda *_: None)
    [sent] = transport.sent
    assert sent.method == "PATCH" and sent.api_version == "2023-11-01"
    assert sent.path == ("/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-contoso-chat"
                         "/providers/Microsoft.Search/searchServices/srch-x")
    assert sent.body["properties"]["disableLocalAuth"] is False, "keys keep working for the data load"
    # Microsoft.Search 2023-11-01 (search.json): AadAuthFailureMode is http403 or http401WithBearerChallenge
    assert options["aadOrApiKey"]["aadAuthFailureMode"] in {"http403", "http401WithBearerChallenge"}
    assert any(s.startswith("switch on role-based access") for s in data_load.steps(settings))

    keys_only = FakeAzureTransport(lambda r: (200, {"properties": {"authOptions": {"apiKeyOnly": {}}}}))
    with pytest.raises(RuntimeError, match="keys only.*Both"):
        data_load.enable_search_role_access(settings, arm_client(FakeCredential(), transport=keys_only),
                                            log=lambda *_: None)

"""The Azure code paths, checked offline: search index schema and requests, Cosmos DB reads, provisioning plan."""

from __future__ import annotations

import json

from azure.ai.ml._restclient.arm_ml_service.models import ConnectionCategory

from contoso_chat import records
from contoso_chat.backends.settings import resolve
from contoso_chat.azure import provisioning
from contoso_chat.backends.azure_search import SEMANTIC_CONFIG, AzureSearchRetriever, index_schema
from contoso_chat.chunking import corpus_chunks
from contoso_chat.backends.customers import CosmosCustomerStore

FAKE = "fake-key-for-tests-0000"


class FixedEmbedder:
    name, dimensions = "fake-embeddings", 4

    def embed(self, texts):
        return [[0.5, 0.5, 0.5, 0.5] for _ in texts]


class RecordingSearchClient:
    """Records what the retriever asks Azure AI Search for, and answers with one document."""

    def __init__(self):
        self.calls, self.uploaded = [], []

    def search(self, **kwargs):
        self.calls.append(kwargs)
        return [{"id": "product-1--technical-specifications-0", "source_id": "product-1", "kind": "manual",
                 "title": "Summit Dome 2 Tent", "section": "Technical specifications", "text": "2.1 kg",
                 "@search.score": 0.03, "@search.reranker_score": 3.2}]

    def merge_or_upload_documents(self, documents):
        self.uploaded.extend(documents)
        return [type("Result", (), {"succeeded": True})() for _ in documents]


def test_index_schema_has_vector_keyword_and_semantic_parts():
    schema = index_schema("contoso-outdoors", 1536)
    fields = {f.name: f for f in schema.fields}
    assert fields["id"].key and fields["source_id"].filterable
    assert fields["vector"].vector_search_dimensions == 1536
    assert fields["text"].searchable and fields["text"].analyzer_name == "en.microsoft"
    assert schema.semantic_search.configurations[0].name == SEMANTIC_CONFIG
    assert schema.vector_search.profiles[0].algorithm_configuration_name == schema.vector_search.algorithms[0].name


def test_hybrid_search_sends_text_vector_and_semantic_ranking():
    client = RecordingSearchClient()
    hits = AzureSearchRetriever(client, FixedEmbedder()).search("How heavy is the tent?", k=5, mode="hybrid")
    call = client.calls[0]
    assert call["search_text"] == "How heavy is the tent" and call["top"] == 5
    assert call["vector_queries"][0].fields == "vector" and len(call["vector_queries"][0].vector) == 4
    assert call["query_type"] == "semantic" and call["semantic_configuration_name"] == SEMANTIC_CONFIG
    assert hits[0].id == "product-1#technical-specifications-0" and hits[0].score == 3.2
    AzureSearchRetriever(client, FixedEmbedder()).search("tent", k=3, mode="keyword")
    assert "vector_queries" not in client.calls[1] and "query_type" not in client.calls[1]


def test_upload_is_keyed_by_chunk_id_so_a_rerun_replaces():
    client = RecordingSearchClient()
    chunks = corpus_chunks()[:5]
    AzureSearchRetriever(client, FixedEmbedder()).upload(chunks)
    AzureSearchRetriever(client, FixedEmbedder()).upload(chunks)
    ids = [d["id"] for d in client.uploaded]
    assert len(set(ids)) == 5 and all("#" not in i for i in ids), "Azure AI Search keys may not contain '#'"


class FakeContainer:
    """A Cosmos DB container in memory: point reads by id and partition key only."""

    def __init__(self):
        self.items, self.reads = {}, []

    def upsert_item(self, body):
        self.items[body["id"]] = {**body, "_etag": "x"}

    def read_item(self, item, partition_key):
        from azure.cosmos.exceptions import CosmosResourceNotFoundError

        self.reads.append((item, partition_key))
        if item not in self.items:
            raise CosmosResourceNotFoundError(message="not found")
        return self.items[item]

    def query_items(self, query, enable_cross_partition_query):
        return list(self.items.values())


def test_cosmos_store_reads_one_customer_by_id_and_partition():
    container = FakeContainer()
    store = CosmosCustomerStore(container)
    store.load(list(records.customers()))
    store.load(list(records.customers()))
    assert len(container.items) == len(records.customers())
    assert store.get("C1003").address.street == "77 Larkspur Terrace"
    assert container.reads[-1] == ("C1003", "C1003")
    assert store.get("C9999") is None
    assert len(store.private_details()) == len(records.customers())


def test_provisioning_plan_redacts_every_key():
    settings = resolve({"AZURE_OPENAI_API_KEY": FAKE, "AZURE_SEARCH_API_KEY": FAKE + "1", "COSMOS_KEY": FAKE + "2",
                        "CONTOSO_API_SECRET": FAKE + "3", "AZURE_SUBSCRIPTION_ID": "11111111-2222-3333-4444-555555555555"})
    plan = provisioning.build_plan(settings)
    assert plan.hub.name == "contoso-chat-hub" and plan.project.hub_id.endswith("/workspaces/contoso-chat-hub")
    assert {type(c).__name__ for c in plan.connections} == {"AzureOpenAIConnection", "AzureAISearchConnection",
                                                           "WorkspaceConnection"}
    text = provisioning.plan_yaml(plan)
    assert FAKE not in text and "***" in text
    cosmos = {c.name: c for c in plan.connections}["contoso-cosmos"]._to_rest_object().as_dict()["properties"]
    assert cosmos["category"] == ConnectionCategory.COSMOS_DB.value, "the category the generated REST model names"
    assert cosmos["authType"] == "AAD" and "credentials" not in cosmos
    assert "${{azureml://connections/contoso-api-secret/credentials/key}}" in text
    assert "id-contoso-chat-endpoint" in text and "Cosmos DB Built-in Data Reader" not in text, \
        "no Cosmos data-plane role without a Cosmos DB account"
    bodies = {d.name: d.arm_body() for d in plan.deployments}
    assert bodies["gpt-4o-mini"]["properties"]["versionUpgradeOption"] == "NoAutoUpgrade"
    assert bodies["gpt-4o-mini"]["properties"]["model"]["version"] == "2024-07-18"


def test_preflight_reports_each_check_from_the_resource_manager():
    settings = resolve({"AZURE_SUBSCRIPTION_ID": "11111111-2222-3333-4444-555555555555",
                               "AZURE_LOCATION": "swedencentral"})
    answers = {
        "locations": {"value": [{"name": "swedencentral"}]},
        "models": {"value": [{"model": {"name": "gpt-4o-mini", "version": "2024-07-18", "skus": [{"name": "GlobalStandard"}]}}]},
        "usages": {"value": [{"name": {"value": "OpenAI.GlobalStandard.gpt-4o-mini"}, "currentValue": 10, "limit": 100}]},
    }
    seen = []

    def fake_get(path, token):
        seen.append(path)
        if "/providers/Microsoft." in path and "/locations/" not in path:
            namespace = path.split("/providers/")[1].split("?")[0]
            assert "api-version=2021-04-01" in path
            return {"namespace": namespace,
                    "registrationState": "NotRegistered" if namespace == "Microsoft.ContainerRegistry" else "Registered"}
        return answers["usages" if "/usages" in path else "models" if "/models" in path else "locations"]

    asked = []

    def your_roles(given):
        asked.append(given)
        return [provisioning.Check("role Contributor (provision)", "failed", "missing")]

    checks = {c.check: c for c in provisioning.preflight(settings, get_token=lambda: "token", get=fake_get,
                                                         roles=your_roles)}
    assert asked == [settings] and checks["role Contributor (provision)"].status == "failed", \
        "your roles are part of the pre-flight table"
    assert checks["region"].status == "ok"
    assert checks["model gpt-4o-mini 2024-07-18 (GlobalStandard)"].status == "ok"
    assert checks["quota gpt-4o-mini"].status == "ok" and "90K TPM free" in checks["quota gpt-4o-mini"].detail
    assert checks["model text-embedding-3-small 1 (Standard)"].status == "failed"
    assert checks["provider Microsoft.ContainerRegistry"].status == "failed", "a fresh subscription may lack it"
    assert "az provider register --namespace Microsoft.ContainerRegistry" in \
        checks["provider Microsoft.ContainerRegistry"].detail
    assert checks["provider Microsoft.MachineLearningServices"].status == "ok"
    assert all("/providers/Microsoft.CognitiveServices/locations/swedencentral" in p for p in seen[1:]
               if "/locations/" in p)
    assert provisioning.preflight(settings, get_token=lambda: None, get=fake_get)[0].status == "failed"
    assert json.dumps([c.__dict__ for c in checks.values()])

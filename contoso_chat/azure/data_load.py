"""Loading the data into Azure is provisioning: the search index and the Cosmos DB customers, opt-in and idempotent.

The app only reads. This step writes: it creates or updates the index schema, embeds and uploads
every chunk in batches within Azure AI Search's limits (refused documents are reported), creates
the Cosmos DB database and container (with the account key, or through the management plane
when signed in with Entra ID, which cannot create databases), and upserts every customer.
Run it with `python -m contoso_chat.azure.data_load` and PROVISION_AZURE=true (provisioning runs it too).
"""

from __future__ import annotations

from typing import Callable

from contoso_chat import records
from contoso_chat.azure import names
from contoso_chat.azure.opt_in import require_opt_in
from contoso_chat.backends.settings import ConfigError, Settings


# Microsoft.Search/searchServices (Resource Manager); PATCH changes only the properties it names.
SEARCH_API_VERSION = "2023-11-01"
# Keys keep working, and Entra ID tokens (the endpoint's identity) are accepted too: a new service takes keys only.
SEARCH_ROLE_ACCESS = {"properties": {"disableLocalAuth": False,
                                     "authOptions": {"aadOrApiKey": {"aadAuthFailureMode": "http401WithBearerChallenge"}}}}


def steps(settings: Settings) -> list[str]:
    """What `load_data` does for these settings, in order."""
    plan = []
    if settings.search == "azure":
        index = settings.get("AZURE_SEARCH_INDEX")
        service = names.name_of(names.search_service_id(settings))
        plan += [f"switch on role-based access (API keys and Entra ID) on {service}, so the endpoint's identity "
                 "can query it",
                 f"create or update the schema of index {index} on {service}",
                 f"embed every chunk with {settings.get('AZURE_OPENAI_EMBEDDING_DEPLOYMENT') or 'the local model'} "
                 "and merge-or-upload in batches of at most 1000 documents and 12 MB, reporting refused documents"]
    if settings.customers == "azure":
        how = "with COSMOS_KEY" if settings.secret("COSMOS_KEY") else "through the management plane (Entra ID)"
        plan += [f"create database {settings.get('COSMOS_DATABASE')} and container {settings.get('COSMOS_CONTAINER')} "
                 f"(partition key /id) {how}, if missing",
                 f"upsert {len(records.customers())} customers by id"]
    return plan or ["nothing: search and customers use the local stack"]


def create_container_with_management_plane(settings: Settings, cosmos_management_client):
    """Create the database and container through Azure Resource Manager (Entra ID, no account key)."""
    group = settings.get("AZURE_RESOURCE_GROUP")
    account = names.name_of(names.cosmos_account_id(settings))
    database, container = settings.get("COSMOS_DATABASE"), settings.get("COSMOS_CONTAINER")
    cosmos_management_client.sql_resources.begin_create_update_sql_database(
        group, account, database, {"properties": {"resource": {"id": database}}}).result()
    cosmos_management_client.sql_resources.begin_create_update_sql_container(
        group, account, database, container,
        {"properties": {"resource": {"id": container, "partitionKey": {"paths": ["/id"], "kind": "Hash"}}}}).result()


def enable_search_role_access(settings: Settings, arm, log: Callable[[str], None] = print) -> dict:
    """Let the search service accept Entra ID tokens as well as keys (idempotent); returns its auth options."""
    from azure.core.rest import HttpRequest

    from contoso_chat.azure.clients import ARM

    url = f"{ARM}{names.search_service_id(settings)}?api-version={SEARCH_API_VERSION}"
    response = arm.send_request(HttpRequest("PATCH", url, json=SEARCH_ROLE_ACCESS))
    response.raise_for_status()
    options = response.json().get("properties", {}).get("authOptions") or {}
    if "aadOrApiKey" not in options:
        raise RuntimeError(f"{names.name_of(names.search_service_id(settings))} still accepts keys only "
                           f"(authOptions: {sorted(options)}); switch on role-based access in the portal "
                           "(Settings > Keys > Both) and rerun.")
    log(f"Search service {names.name_of(names.search_service_id(settings))}: API keys and Entra ID accepted")
    return options


def load_search_index(settings: Settings, log: Callable[[str], None] = print, **options):
    """Create or update the index and upload every chunk; an error names the refused documents."""
    from contoso_chat.backends.azure_search import provision_index
    from contoso_chat.chunking import corpus_chunks

    report = provision_index(settings, corpus_chunks(), log=log, **options)
    if report.failed:
        sample = ", ".join(list(report.failed)[:3])
        raise RuntimeError(f"Azure AI Search refused {len(report.failed)} documents (e.g. {sample}); rerun to retry, "
                           "the upload is idempotent.")
    log(f"Index {settings.get('AZURE_SEARCH_INDEX')}: {report.uploaded} documents in {report.batches} requests")
    return report


def load_customers(settings: Settings, log: Callable[[str], None] = print, cosmos_management_client=None,
                   transport=None) -> int:
    """Create the container if missing and upsert every customer."""
    from contoso_chat.backends.customers import CosmosCustomerStore, create_container_with_key, open_cosmos_container

    if settings.secret("COSMOS_KEY"):
        container = create_container_with_key(settings, transport=transport)
    else:
        if cosmos_management_client is None:
            from azure.mgmt.cosmosdb import CosmosDBManagementClient

            from contoso_chat.backends.azure_credentials import azure_credential

            cosmos_management_client = CosmosDBManagementClient(azure_credential(), names.subscription(settings))
        create_container_with_management_plane(settings, cosmos_management_client)
        container = open_cosmos_container(settings, transport=transport)
    loaded = CosmosCustomerStore(container).load(list(records.customers()))
    log(f"Cosmos DB {settings.get('COSMOS_DATABASE')}/{settings.get('COSMOS_CONTAINER')}: {loaded} customers upserted")
    return loaded


def load_data(settings: Settings, log: Callable[[str], None] = print) -> None:
    """Load the index and the customers for the backends that are on Azure. Opt-in: PROVISION_AZURE=true."""
    require_opt_in(settings, "Loading data into Azure")
    if settings.search == "azure":
        from contoso_chat.azure.clients import arm_client

        enable_search_role_access(settings, arm_client(), log=log)
        load_search_index(settings, log=log)
    if settings.customers == "azure":
        load_customers(settings, log=log)


def main() -> int:
    from contoso_chat.backends.settings import load_settings

    settings = load_settings()
    for step in steps(settings):
        print(f"- {step}")
    try:
        load_data(settings)
    except ConfigError as error:
        print(f"Not loaded: {error}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
